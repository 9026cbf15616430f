// Issue 15 item 2: the plan read by index yields exactly the trials (ids, parameters, seeds, order) of a
// straightforward expansion, finds each by its id, and finds no other id.
import assert from "node:assert/strict";
import { parseSpec } from "../src/spec/load.ts";
import {
  expandTrials,
  gridPoints,
  keysFor,
  type ParamSet,
  samplePoint,
  sweepIdOf,
  sweepMethods,
  trialIdOf,
} from "../src/spec/expand.ts";
import { Plan } from "../src/spec/plan.ts";
import type { SweepSpec } from "../src/spec/schema.ts";
import { sha256Hex } from "../src/util/hash.ts";
import { Rng, RNG_STREAMS } from "../src/util/rng.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { dryRun } from "../src/cli/dry_run.ts";
import { forgedResult, readResults, tinySpecText } from "./_fixtures.ts";

/** The reference: every set of parameters listed, crossed with the seeds, a repeated id dropped. */
function reference(spec: SweepSpec): { id: string; params: ParamSet; seed: number }[] {
  const methodSwept = spec.parameters["method"] !== undefined;
  const methods = sweepMethods(spec);
  const sets: ParamSet[] = [];
  if (spec.search.strategy === "grid") {
    for (const m of methods) {
      let ms: ParamSet[] = [methodSwept ? { method: m } : {}];
      for (const [name, key] of keysFor(spec, m)) {
        const pts = gridPoints(spec.parameters[key]!);
        ms = ms.flatMap((s) => pts.map((v) => ({ ...s, [name]: v })));
      }
      sets.push(...ms);
    }
  } else {
    const rng = new Rng(spec.search.seed, RNG_STREAMS.randomSearch);
    for (let i = 0; i < spec.search.samples!; i++) {
      const m = methods[rng.int(methods.length)]!;
      const s: ParamSet = methodSwept ? { method: m } : {};
      for (const [name, key] of keysFor(spec, m)) s[name] = samplePoint(spec.parameters[key]!, rng);
      sets.push(s);
    }
  }
  const sweepId = sweepIdOf(spec), seen = new Set<string>(), out = [];
  for (const params of sets) {
    for (const seed of spec.seeds) {
      const id = trialIdOf(sweepId, params, seed);
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ id, params, seed });
    }
  }
  return out;
}

/** The plan of `text` against the reference: same trials in the same order (key order too), each found by id. */
function assertSameAsReference(text: string): Plan {
  const spec = parseSpec(text);
  const ref = reference(spec), plan = Plan.of(spec), listed = expandTrials(spec);
  assert.equal(plan.size, ref.length);
  assert.equal(listed.length, ref.length);
  const sweepId = sweepIdOf(spec);
  for (let i = 0; i < ref.length; i++) {
    const t = plan.at(i);
    // JSON text: the parameters' key order too (sweep.json and the reports write them as they are)
    assert.equal(JSON.stringify({ id: t.id, params: t.params, seed: t.seed }), JSON.stringify(ref[i]));
    assert.equal(t.sweepId, sweepId);
    assert.equal(plan.idAt(i), ref[i]!.id);
    assert.equal(JSON.stringify(plan.paramsAt(i)), JSON.stringify(ref[i]!.params));
    assert.equal(plan.seedAt(i), ref[i]!.seed);
    assert.equal(plan.groupAt(i), listed[i]!.config.method.name);
    assert.equal(plan.indexOf(ref[i]!.id), i);
    assert.deepEqual(t.config, listed[i]!.config);
  }
  assert.deepEqual([...plan.ids()], ref.map((r) => r.id));
  assert.equal(plan.fingerprint, sha256Hex(ref.map((r) => r.id + "\n").join("")).slice(0, 16));
  return plan;
}

Deno.test("plan - grid: several methods, scoped parameters, value lists and ranges, several seeds", () => {
  const plan = assertSameAsReference(`name: g
parameters:
  method: {values: [gates, edge-popup, dense]}
  lambda: {min: 1.0e-6, max: 1.0e-3, scale: log, count: 4}
  penalty: {values: [sum, mean]}
  k: {values: [0.1, 0.3, 0.5]}
  edge-popup.lr: {values: [0.1, 0.2]}
  epochs: {values: [1, 2]}
seeds: [3, 0, 7]
`);
  assert.equal(plan.size, (4 * 2 * 2 + 3 * 2 * 2 + 2) * 3);
});

Deno.test("plan - grid: points that round to the same value are one trial, as in the listed expansion", () => {
  // 6 significant digits: 1, 1.00000025, 1.0000005, ... round to 1 or 1.000001
  const plan = assertSameAsReference(`name: r
parameters:
  lambda: {min: 1, max: 1.000001, count: 5}
  lr: {values: [0.1, 0.2]}
seeds: [0, 1]
`);
  assert.ok(plan.size < 5 * 2 * 2, `expected repeats dropped, got ${plan.size}`);
});

Deno.test("plan - random: method draws, value lists whose repeats are dropped, ranges, several seeds", () => {
  const plan = assertSameAsReference(`name: r
search: {strategy: random, samples: 200, seed: 5}
parameters:
  method: {values: [gates, edge-popup]}
  lambda: {values: [1.0e-6, 1.0e-5, 1.0e-4]}
  penalty: {values: [sum, mean]}
  k: {min: 0.1, max: 0.9}
  edge-popup.lr: {min: 0.01, max: 0.1, scale: log}
seeds: [0, 1]
`);
  assert.ok(plan.size < 200 * 2, `expected repeats dropped, got ${plan.size}`);
  const values = assertSameAsReference(`name: v
search: {strategy: random, samples: 50, seed: 1}
parameters:
  lambda: {values: [1.0e-6, 1.0e-5]}
  penalty: {values: [sum, mean]}
seeds: [0, 1, 2]
`);
  assert.equal(values.size, 2 * 2 * 3);
});

Deno.test("plan - --dry-run counts the plan's trials, repeated draws dropped", async () => {
  const spec = parseSpec(`version: 1
name: dry-repeats
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  lambda: {values: [1.0e-4, 1.0e-3]}
search: {strategy: random, samples: 9, seed: 1}
training: {epochs: 1, batch_size: 64, lr: 0.05}
`);
  const dir = await Deno.makeTempDir(), out: string[] = [];
  try {
    await dryRun(spec, `${dir}/none`, (l) => out.push(l));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // 9 draws from 2 values: 2 trials (it said 9, then listed 2)
  assert.match(out[0]!, /: 2 trials \(9 samples × 1 seed; 7 repeated points dropped\)/);
});

Deno.test("plan - an id not in the plan is not found (forged, another sweep's, another case)", () => {
  const text = "name: f\nparameters:\n  lambda: {values: [1.0e-6, 1.0e-5]}\nseeds: [0, 1]\n";
  const plan = Plan.of(parseSpec(text)), other = Plan.of(parseSpec(text.replace("name: f", "name: h")));
  const id = plan.idAt(0);
  for (const forged of [...other.ids(), id.toUpperCase(), id.slice(0, 11), `${id}0`, "0".repeat(12), "", "x"]) {
    assert.equal(plan.indexOf(forged), -1, forged);
    assert.equal(plan.has(forged), false);
  }
  assert.equal(plan.get(id)!.id, id);
  // a plan read from a stored list finds the list's ids
  const listed = Plan.fromList(plan.spec, plan.sweepId, [...plan]);
  assert.deepEqual([...listed.ids()], [...plan.ids()]);
  assert.equal(listed.fingerprint, plan.fingerprint);
  assert.equal(listed.indexOf(plan.idAt(3)), 3);
  assert.deepEqual([listed.paramsAt(3), listed.seedAt(3), listed.groupAt(3)], [
    plan.paramsAt(3),
    plan.seedAt(3),
    "gates",
  ]);
  assert.equal(listed.indexOf(other.idAt(0)), -1);
});

Deno.test("plan - the coordinator records each planned trial once and ignores a result whose id is not in the plan", async () => {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const text = tinySpecText("plan-ids", 3), spec = parseSpec(text);
  const other = Plan.of(parseSpec(tinySpecText("plan-ids-other", 3))); // ids of the same form, another plan's
  const lines: string[] = [];
  try {
    const sweep = runSweep({
      spec,
      specText: text,
      specFile: "s.yaml",
      runsDir: runs,
      transport,
      log: (l) => lines.push(l),
    });
    const answer = async (trialId: string, claim: string) =>
      await transport.publishResult({ ...forgedResult(sweepIdOf(spec), trialId), error: "answered", claim });
    for (let n = 0; n < 3; n++) {
      const d = (await transport.pullTrial(5000))!;
      await d.ack();
      // before each real result: one for an id of no trial of the plan, carrying this trial's claim
      await answer(other.idAt(n), d.trial.claim);
      await answer(d.trial.trial_id, d.trial.claim);
    }
    const outcome = await sweep;
    assert.ok(outcome.complete);
    const ids = (await readResults(outcome.runDir)).map((r) => r.trial_id);
    assert.deepEqual(ids.sort(), [...Plan.of(spec).ids()].sort());
    for (let n = 0; n < 3; n++) {
      assert.ok(lines.includes(`ignored a result for unknown trial ${other.idAt(n)}`), lines.join("\n"));
    }
  } finally {
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
});
