import assert from "node:assert/strict";
import { createBlasEngine } from "../src/engine/blas.ts";
import { loadKernels } from "../src/engine/native.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import type { TrialConfig } from "../src/spec/schema.ts";
import { packKey, runTrial, runTrials, TrialStopped } from "../src/train/trial.ts";
import type { TrialMetrics } from "../src/train/result.ts";
import { runWorker } from "../src/worker/worker.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { readResults } from "./_fixtures.ts";

/** Five trials that share network, data and seed: every method, its own settings, one with fewer epochs. */
function packableTrials(): TrialConfig[] {
  const spec = parseSpec(`version: 1
name: packable
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: signed_constant}
parameters:
  method: {values: [gates, hard-concrete, cs, edge-popup, dense]}
  lambda: {values: [0.001]}
  cs.lambda: {values: [1.0e-5]}
  k: {values: [0.5]}
training: {epochs: 3, batch_size: 64}
`);
  const cfgs = expandTrials(spec).map((t) => t.config);
  cfgs[3] = { ...cfgs[3]!, training: { ...cfgs[3]!.training, epochs: 2 } };
  return cfgs;
}

/** What must not change when a trial is packed: everything but the timings. */
const outcome = (m: TrialMetrics) => ({
  accuracy: m.accuracy,
  soft_accuracy: m.soft_accuracy,
  sparsity: m.sparsity,
  ticket: m.ticket?.sha256 ?? null,
  curve: m.loss_curve,
  layers: m.layers,
  steps: m.steps,
});

async function engine() {
  const e = createBlasEngine(1);
  e.kernels = (await loadKernels()).kernels;
  return e;
}

Deno.test("packing - K packed trials give exactly the results of K separate runs (same seeds, same backend)", async () => {
  const cfgs = packableTrials();
  assert.equal(new Set(cfgs.map(packKey)).size, 1);
  const alone: TrialMetrics[] = [];
  for (const cfg of cfgs) alone.push(await runTrial(cfg, await engine()));
  const packed = await Promise.all(runTrials(cfgs.map((cfg) => ({ cfg })), await engine()));
  packed.forEach((m, i) => assert.deepEqual(outcome(m), outcome(alone[i]!), cfgs[i]!.method.name));
  // 461 training samples (512 less the 51 of the validation split): 7 batches of 64 per epoch
  assert.equal(packed[3]!.steps, 14, "the 2-epoch trial stopped at its own end");
  assert.equal(packed[0]!.steps, 21);
});

Deno.test("packing - a trial stopped or failing inside a pack ends alone; the others finish unchanged", async () => {
  const cfgs = packableTrials().slice(0, 3);
  const ref = await runTrial(cfgs[2]!, await engine());
  let polls = 0;
  const runs = runTrials([
    { cfg: cfgs[0]!, hooks: { progressEveryMs: 0, shouldStop: () => ++polls > 3 } },
    {
      cfg: cfgs[1]!,
      hooks: {
        progressEveryMs: 0,
        onProgress: ({ step }) => {
          if (step === 5) throw new Error("heartbeat failed");
        },
      },
    },
    { cfg: cfgs[2]! },
  ], await engine());
  const [stopped, failed, last] = await Promise.allSettled(runs) as [
    PromiseRejectedResult,
    PromiseRejectedResult,
    PromiseFulfilledResult<TrialMetrics>,
  ];
  assert.ok(stopped.status === "rejected" && stopped.reason instanceof TrialStopped);
  assert.ok(failed.status === "rejected" && /heartbeat failed/.test(String(failed.reason)));
  assert.equal(last.status, "fulfilled");
  assert.deepEqual(outcome(last.value), outcome(ref));
});

Deno.test("packing - trials that do not share network, data and seed are refused as a pack", () => {
  const [a, b] = packableTrials();
  assert.throws(
    () => runTrials([{ cfg: a! }, { cfg: { ...b!, seed: 1 } }], { name: "x", device: "x", gemm() {}, close() {} }),
    /packed trials must share dataset, model, seed and batch size/,
  );
});

Deno.test("packing - a worker with --pack 4 runs a sweep's compatible trials together, each recorded once", async () => {
  const runs = await Deno.makeTempDir();
  try {
    const transport = new MemoryTransport();
    const lines: string[] = [];
    const text = `version: 1
name: packed-sweep
dataset: {name: synthetic, train: 256, test: 128}
model: {widths: [16], init: signed_constant}
parameters:
  lambda: {values: [1.0e-4, 1.0e-3, 1.0e-2, 3.0e-2, 0.1, 0.3]}
seeds: [0, 1]
training: {epochs: 2, batch_size: 64}
backend: blas
`;
    const ac = new AbortController();
    const worker = runWorker({ transport, pack: 4, signal: ac.signal, log: (l) => lines.push(l) });
    const result = await runSweep({
      spec: parseSpec(text),
      specText: text,
      specFile: "s.yaml",
      transport,
      runsDir: runs,
      log: () => {},
    });
    ac.abort();
    const summary = await worker;
    assert.equal(summary.done, 12);
    const rows = await readResults(result.runDir);
    assert.equal(rows.length, 12);
    assert.equal(new Set(rows.map((r) => r.trial_id)).size, 12);
    const packs = lines.filter((l) => l.startsWith("packed "));
    assert.ok(packs.length >= 2, lines.join("\n"));
    // a pack never mixes seeds: the trials each packed line names all have one seed (by the plan)
    const seedOf = new Map(expandTrials(parseSpec(text)).map((t) => [t.id, t.seed]));
    for (const p of packs) {
      const ids = /^packed ([2-4]) trials: (.*)$/.exec(p)!;
      assert.ok(ids, p);
      const seeds = ids[2]!.split(", ").map((id) => seedOf.get(id));
      assert.equal(seeds.length, Number(ids[1]), p);
      assert.ok(seeds.every((s) => s !== undefined), `${p}: a trial not in the plan`);
      assert.equal(new Set(seeds).size, 1, `${p}: seeds ${seeds.join(", ")}`);
    }
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});
