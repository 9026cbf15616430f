import assert from "node:assert/strict";
import { MemoryTransport } from "../src/broker/memory.ts";
import type { ResultMessage } from "../src/broker/messages.ts";
import { trialMessage } from "../src/coordinator/sweep.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { loadSpec } from "../src/spec/load.ts";
import { ARCHITECTURES, ModelSchema, type TrialConfig } from "../src/spec/schema.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { checkTrialLimits, DEFAULT_LIMITS, resolveLimits, trialCost } from "../src/worker/limits.ts";
import { runWorker } from "../src/worker/worker.ts";
import { ROOT, tinySpec } from "./_fixtures.ts";

const tiny = () => expandTrials(tinySpec("limits", 1))[0]!;
const withModel = (cfg: TrialConfig, model: Partial<TrialConfig["model"]>, dataset?: TrialConfig["dataset"]) => ({
  ...cfg,
  dataset: dataset ?? cfg.dataset,
  model: { ...cfg.model, ...model },
});

/** Peak resident memory of this process (Linux), else the current one. */
function peakRss(): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) * 1024;
  } catch {
    return Deno.memoryUsage().rss;
  }
}

Deno.test("limits - a forged 50000×50000 network is refused at once, never built; a tiny trial still runs", async () => {
  const transport = new MemoryTransport();
  const ok = tiny();
  const forged = { ...ok, id: "f0f0f0f0f0f0f0f0", config: withModel(ok.config, { widths: [50000, 50000] }) };
  const results: { r: ResultMessage; at: number }[] = [];
  const sub = await transport.consumeResults(
    ok.sweepId,
    (r) => Promise.resolve(void results.push({ r, at: Date.now() })),
  );
  await transport.publishTrial(trialMessage(forged, 3, "secret"));
  await transport.publishTrial(trialMessage(ok, 3, "secret"));
  const lines: string[] = [];
  const rss0 = peakRss(), t0 = Date.now();
  const summary = await runWorker({ transport, backend: "js", maxTrials: 2, log: (l) => lines.push(l) });
  await sub.stop();
  await transport.close();
  assert.deepEqual(summary, { done: 1, failed: 1, released: 0, cancelled: 0 });
  const refused = results.find((x) => x.r.trial_id === forged.id)!;
  assert.equal(refused.r.status, "failed");
  assert.equal(refused.r.failure, "refused");
  assert.equal(refused.r.attempt, 1);
  assert.match(
    refused.r.error!,
    /^refused: the network has 2,503,400,000 weights, over .* limit of 200,000,000 \(--max-weights\)$/,
  );
  assert.ok(refused.at - t0 < 1000, `refused after ${refused.at - t0} ms`);
  const grew = peakRss() - rss0;
  assert.ok(grew < 200e6, `peak RSS grew by ${(grew / 1e6).toFixed(0)} MB (the frozen weights alone are 10 GB)`);
  assert.ok(lines.some((l) => l.includes(`trial ${forged.id}: refused:`)), lines.join("\n"));
  assert.equal(results.find((x) => x.r.trial_id === ok.id)?.r.status, "done");
});

Deno.test("limits - the weight counts are the builder's for every architecture, on every input shape", () => {
  const base = tiny().config;
  const shapes: [TrialConfig["dataset"], number[], number][] = [
    [base.dataset, [8, 8, 1], 4],
    [{ name: "cifar10", path: "/nonexistent", split_seed: 0, augment: false }, [32, 32, 3], 10],
  ];
  const SOME = {
    mlp: ["fc2"],
    conv2: ["conv*"],
    conv4: ["fc*"],
    conv6: ["conv6"],
    resnet20: ["stage2*", "fc"],
    vit: ["*qkv", "head"],
    custom: ["*conv*", "fc2"],
  };
  // custom: a convolution, a residual with a projection shortcut, pooling, two linear layers (canonical form)
  const { layers, blocks } = ModelSchema.parse({
    architecture: "custom",
    blocks: {
      b: [{ conv2d: { channels: 12, stride: 2 } }, "batch_norm"],
      p: [{ conv2d: { channels: 12, kernel: 1, stride: 2 } }],
    },
    layers: [
      { conv2d: 8 },
      "relu",
      { residual: { block: "b", shortcut: "p" } },
      "max_pool",
      "flatten",
      { linear: 16 },
      "relu",
      {
        linear: "classes",
      },
    ],
  });
  const readme: Record<string, number> = { conv2: 4_300_992, conv4: 2_425_024, conv6: 2_261_184, resnet20: 268_336 };
  for (const architecture of ARCHITECTURES) {
    for (const [dataset, shape, classes] of shapes) {
      for (const masked of [["*"], SOME[architecture]]) {
        const custom = architecture === "custom" ? { layers, blocks } : {};
        const cfg = withModel(base, { architecture, masked, widths: [300, 100], ...custom }, dataset);
        const what = `${architecture} on ${shape.join("×")}, masked ${masked}`;
        const net = buildNet(cfg.model, shape, classes, createJsEngine());
        const cost = trialCost(cfg);
        assert.deepEqual(cost.inputShape, shape, what);
        assert.deepEqual(
          cost.tensors.map((t) => [t.name, t.shape, t.masked]),
          net.params.map((p) => [p.name, p.shape, p.masked]),
          what,
        );
        assert.equal(cost.weights, net.params.reduce((n, p) => n + p.w.length, 0), what);
        assert.equal(cost.maskedWeights, net.maskedParams.reduce((n, p) => n + p.w.length, 0), what);
        if (shape[2] === 3 && masked[0] === "*" && readme[architecture]) {
          assert.equal(cost.weights, readme[architecture]);
        }
      }
    }
  }
  // LeNet-300-100 on MNIST: the README's 266,200 weights
  assert.equal(
    trialCost(withModel(base, { widths: [300, 100] }, { name: "mnist", split_seed: 0, augment: false })).weights,
    266_200,
  );
});

Deno.test("limits - steps and memory: one clear reason each; the defaults pass the shipped sweeps", async () => {
  const cfg = tiny().config; // 512 samples, 51 of them held out for validation, in batches of 64: 7 steps an epoch
  assert.equal(trialCost(cfg).steps, 7 * cfg.training.epochs);
  // a ticket too large for a result message is refused before training (3000×3000 masked: 1.5 MB of base64)
  assert.match(
    checkTrialLimits(withModel(cfg, { widths: [3000, 3000] }), DEFAULT_LIMITS, 1e12)!,
    /^refused: its ticket of 9,\d{3},\d{3} masked weights would be 2 MB in its result, over the broker's 1 MB message limit/,
  );
  const long = { ...cfg, training: { ...cfg.training, epochs: 125_000_000_000 } };
  assert.equal(
    checkTrialLimits(long, DEFAULT_LIMITS, 1e12),
    "refused: 8.75e11 training steps is over this worker's limit of 1e9 (--max-steps)",
  );
  assert.match(
    checkTrialLimits(withModel(cfg, { widths: [1000, 1000] }), DEFAULT_LIMITS, 10e6)!,
    /^refused: it needs about [0-9]+ MB, over 80% of this machine's free memory \(10 MB\)$/,
  );
  assert.match(
    checkTrialLimits(cfg, resolveLimits({ maxWeights: 1000, maxSteps: undefined }), 1e12)!,
    /limit of 1,000 \(--max-weights\)/,
  );
  assert.equal(checkTrialLimits(cfg, resolveLimits({}), 1e12), null);
  // every trial of the shipped sweeps, on a machine with 2 GB free; the bench's Conv-4 on CIFAR-10 with 4 GB
  for (const f of ["quickstart", "mnist-fc-methods"]) {
    for (const t of expandTrials(await loadSpec(`${ROOT}sweeps/${f}.yaml`))) {
      assert.equal(checkTrialLimits(t.config, DEFAULT_LIMITS, 2e9), null, `${f}: ${t.id}`);
    }
  }
  const cifar = { name: "cifar10" as const, path: "/data", split_seed: 0, augment: false };
  assert.equal(checkTrialLimits(withModel(cfg, { architecture: "conv4" }, cifar), DEFAULT_LIMITS, 4e9), null);
});
