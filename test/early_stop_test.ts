// Early stopping of dominated trials (spec `early_stop`): the decision, the spec, the wire schema, and a trial
// stopped by a real worker process over a real nats-server, recorded once as `stopped` and never run again.
import assert from "node:assert/strict";
import {
  dominatesBy,
  RungBoard,
  RungLog,
  rungPointOf,
  RUNGS_FILE,
  RUNGS_REJECTED_FILE,
} from "../src/coordinator/early_stop.ts";
import { earlyStopOf, rungEpochs } from "../src/spec/schema.ts";
import { parseSpec } from "../src/spec/load.ts";
import { ControlMessageSchema, ResultMessageSchema } from "../src/broker/messages.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { runWorker } from "../src/worker/worker.ts";
import { type RungReport, runTrial } from "../src/train/trial.ts";
import { fakeMetrics, madeResult, tinySpecText } from "./_fixtures.ts";
import { cluster, recorded, startCoordinator } from "./_cluster.ts";
import { expandTrials, sweepIdOf } from "../src/spec/expand.ts";
import { combineReports, computeCurve } from "../src/report/data.ts";
import { computeTable } from "../src/report/tables.ts";
import { buildReportData } from "../src/report/mod.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";

const pt = (trialId: string, sparsity: number, valAccuracy: number) => ({ trialId, sparsity, valAccuracy });

Deno.test("early stop - a point dominated by the margin at the same rung is stopped, naming the trial that beat it", () => {
  const b = new RungBoard(0.01);
  assert.deepEqual(b.report("gates", 0, pt("a", 0.5, 0.9)), { stop: false });
  assert.deepEqual(b.report("gates", 0, pt("b", 0.3, 0.7)), { stop: true, by: pt("a", 0.5, 0.9) });
  // exactly the margin on both axes counts
  assert.equal(b.report("gates", 0, pt("c", 0.49, 0.89)).stop, true);
});

Deno.test("early stop - within the margin on both axes, or a trade-off, the trial continues", () => {
  const b = new RungBoard(0.01);
  b.report("gates", 0, pt("a", 0.5, 0.9));
  assert.equal(b.report("gates", 0, pt("b", 0.495, 0.895)).stop, false); // worse by less than the margin on both
  assert.equal(b.report("gates", 0, pt("c", 0.6, 0.2)).stop, false); // sparser: a trade-off, not dominated
  assert.equal(b.report("gates", 0, pt("d", 0.51, 0.5)).stop, false); // sparser by a little: still a trade-off
  assert.equal(b.report("gates", 0, pt("e", 0.5, 0.89)).stop, true); // as sparse, a margin less accurate
  assert.equal(b.report("gates", 0, pt("f", 0.49, 0.9)).stop, true); // as accurate, a margin less sparse
  assert.equal(dominatesBy(pt("x", 0.5, 0.9), pt("y", 0.5, 0.9), 0), false); // equal points never dominate
  assert.equal(dominatesBy(pt("x", 0.5, 0.91), pt("y", 0.5, 0.9), 0), true); // margin 0: better on one axis
});

Deno.test("early stop - with ladders, a trial is stopped only when every one of its tickets is beaten", () => {
  const ladder = (...p: [number, number][]) => p.map(([sparsity, valAccuracy]) => ({ sparsity, valAccuracy }));
  const b = new RungBoard(0.01);
  // a's own ticket is at 0.5 sparsity; its cuts reach 0.9 at 0.7
  b.report("gates", 0, { ...pt("a", 0.5, 0.9), ladder: ladder([0.7, 0.85], [0.9, 0.7]) });
  // b's own ticket is beaten, but its sparsest cut (0.95 at 0.5) is sparser than anything a reached: it goes on
  assert.equal(b.report("gates", 0, { ...pt("b", 0.4, 0.8), ladder: ladder([0.8, 0.6], [0.95, 0.5]) }).stop, false);
  // c's own ticket and cuts are all beaten by a's cuts (or b's): stopped, naming who beat its own ticket first
  const c = b.report("gates", 0, { ...pt("c", 0.45, 0.85), ladder: ladder([0.85, 0.6], [0.93, 0.45]) });
  assert.deepEqual(c.stop && c.by.trialId, "a");
  // a cut that only ties another trial's cut is not beaten: the trial goes on
  assert.equal(b.report("gates", 0, { ...pt("d", 0.45, 0.85), ladder: ladder([0.9, 0.7]) }).stop, false);
  // the own ticket alone decides when a trial has no ladder
  assert.equal(b.report("gates", 0, pt("e", 0.7, 0.8)).stop, true);
});

Deno.test("early stop - rungs.jsonl: replayed in order on resume, torn and foreign lines set aside", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const line = (trial_id: string, sparsity: number, val_accuracy: number) => ({
      v: 1 as const,
      trial_id,
      group: "gates",
      rung: 0,
      epoch: 1,
      sparsity,
      val_accuracy,
    });
    const log = await RungLog.open(dir, () => true);
    await log.append(line("a", 0.5, 0.9));
    await log.append({ ...line("b", 0.2, 0.5), ladder: [{ sparsity: 0.4, val_accuracy: 0.6 }] });
    await Deno.writeTextFile(`${dir}/${RUNGS_FILE}`, JSON.stringify(line("zz", 0.9, 0.99)) + "\n", { append: true });
    await Deno.writeTextFile(`${dir}/${RUNGS_FILE}`, '{"v":1,"trial_id":"c","gr', { append: true });
    const again = await RungLog.open(dir, (id) => id !== "zz");
    assert.deepEqual(again.lines.map((l) => l.trial_id), ["a", "b"]);
    assert.deepEqual(again.setAside.map((x) => [x.line, x.reason.split(" ")[0]]), [[3, "trial"], [4, "torn"]]);
    assert.match(await Deno.readTextFile(`${dir}/${RUNGS_REJECTED_FILE}`), /"line":4/);
    assert.equal((await Deno.readTextFile(`${dir}/${RUNGS_FILE}`)).trim().split("\n").length, 2);
    // the board rebuilt from the file judges the next report as the first board did: c is beaten by a
    const board = new RungBoard(0.01);
    for (const l of again.lines) board.report(l.group, l.rung, rungPointOf(l));
    const c = board.report("gates", 0, pt("c", 0.3, 0.6));
    assert.equal(c.stop && c.by.trialId, "a");
    assert.equal(new RungBoard(0.01).report("gates", 0, pt("c", 0.3, 0.6)).stop, false); // an empty board would not
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("early stop - a rung report carries the trial's ladder at that epoch, sparser than its own ticket", async () => {
  const [t] = expandTrials(parseSpec(tinySpecText("rl", 1, "tickets: {cuts: 6}\n", 2)));
  const reports: RungReport[] = [];
  const m = await runTrial(t!.config, createJsEngine(), { rungs: [1], onRung: (r) => reports.push(r) });
  assert.equal(reports.length, 1);
  const [r] = reports;
  assert.equal(r!.epoch, 1);
  assert.ok(r!.ladder && r!.ladder.length >= 3 && r!.ladder.length <= 6, JSON.stringify(r));
  for (const [i, c] of r!.ladder!.entries()) {
    assert.ok(c.sparsity > (i ? r!.ladder![i - 1]!.sparsity : r!.sparsity), JSON.stringify(r));
    assert.ok(c.val_accuracy >= 0 && c.val_accuracy <= 1);
  }
  // reporting does not disturb training: the trial ends as it does without the hook
  const plain = await runTrial(t!.config, createJsEngine());
  assert.equal(m.ticket!.sha256, plain.ticket!.sha256);
});

Deno.test("early stop - a rung report without the trial's claim (forged by any client) is not judged", async () => {
  const runsDir = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, backend: "js", signal: ac.signal });
  try {
    const text = tinySpecText("forge", 2, "early_stop: {rungs: [0.5], margin: 0.01}\ntickets: {cuts: 0}\n", 40);
    const spec = parseSpec(text);
    const [first, second] = expandTrials(spec);
    const lines: string[] = [];
    const outcome = await runSweep({
      spec,
      specText: text,
      specFile: "s.yaml",
      runsDir,
      transport,
      log: (l) => {
        lines.push(l);
        if (!/published \d+ trials/.test(l)) return;
        // before the first trial reaches its rung: the second "reports" a perfect ticket there
        transport.publishProgress({
          v: 1,
          sweep_id: sweepIdOf(spec),
          trial_id: second!.id,
          worker: "mallory",
          host: "x",
          step: 1,
          total_steps: 1,
          loss: null,
          attempt: 1,
          rung: { epoch: 20, sparsity: 1, val_accuracy: 1, claim: "0".repeat(32) },
        });
      },
    });
    assert.ok(outcome.complete, lines.join("\n"));
    assert.match(lines.join("\n"), new RegExp(`ignored a rung report for trial ${second!.id} from x/mallory`));
    const rows = await recorded(outcome.runDir);
    assert.equal(rows.find((r) => r.trial_id === first!.id)?.status, "done", JSON.stringify(rows));
    const kept = (await Deno.readTextFile(`${outcome.runDir}/${RUNGS_FILE}`)).trim().split("\n");
    assert.ok(
      kept.every((l) => JSON.parse(l).val_accuracy !== 1 || JSON.parse(l).sparsity !== 1),
      "the forged report was kept for a resume",
    );
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("early stop - no decision across rungs, method groups, or against the trial's own earlier report", () => {
  const b = new RungBoard(0.01);
  b.report("gates", 0, pt("a", 0.9, 0.99));
  assert.equal(b.report("gates", 1, pt("b", 0.1, 0.1)).stop, false); // another rung
  assert.equal(b.report("cs", 0, pt("c", 0.1, 0.1)).stop, false); // another method group
  assert.equal(b.report("gates", 0, pt("a", 0.1, 0.1)).stop, false); // its own redelivered attempt
  // the same reports in the same order give the same decisions
  const again = new RungBoard(0.01);
  const seq = [pt("p", 0.4, 0.8), pt("q", 0.2, 0.6), pt("r", 0.5, 0.5), pt("s", 0.1, 0.4)];
  const run = (board: RungBoard) => seq.map((p) => board.report("g", 0, p).stop);
  assert.deepEqual(run(new RungBoard(0.01)), run(again));
  assert.deepEqual(run(new RungBoard(0.01)), [false, true, false, true]);
});

Deno.test("early stop - spec: off for grid and random, on for adaptive with defaults, false turns it off, located errors", () => {
  const grid = parseSpec(tinySpecText("g", 2));
  assert.equal(earlyStopOf(grid), null);
  assert.equal(grid.early_stop, undefined); // the parsed spec (and the sweep id) unchanged without the field
  const gridOn = parseSpec(tinySpecText("g", 2, "early_stop: {rungs: [0.2, 0.6], margin: 0.02}\n"));
  assert.deepEqual(earlyStopOf(gridOn), { rungs: [0.2, 0.6], margin: 0.02 });
  const adaptive = "search: {strategy: adaptive, budget: 4}\n";
  const text = tinySpecText("a", 2, adaptive).replace(/count: \d+/, "");
  assert.deepEqual(earlyStopOf(parseSpec(text)), { rungs: [0.25, 0.5], margin: 0.01 });
  assert.equal(earlyStopOf(parseSpec(text + "early_stop: false\n")), null);
  assert.throws(() => parseSpec(tinySpecText("e", 2, "early_stop: {rungs: [0.5, 0.25]}\n")), /early_stop\.rungs\.1/);
  assert.throws(() => parseSpec(tinySpecText("e", 2, "early_stop: {rungs: [1.5]}\n")), /early_stop\.rungs\.0/);
  assert.throws(() => parseSpec(tinySpecText("e", 2, "early_stop: {margin: -1}\n")), /early_stop\.margin/);
  assert.throws(() => parseSpec(tinySpecText("e", 2, "early_stop: {rung: [0.5]}\n")), /early_stop/);
});

Deno.test("early stop - rung epochs: rounded, at least 1, below the last epoch, repeats dropped", () => {
  assert.deepEqual(rungEpochs([0.25, 0.5], 8), [{ index: 0, epoch: 2 }, { index: 1, epoch: 4 }]);
  assert.deepEqual(rungEpochs([0.25, 0.5], 2), [{ index: 0, epoch: 1 }]);
  assert.deepEqual(rungEpochs([0.25, 0.5], 1), []);
  assert.deepEqual(rungEpochs([0.1, 0.2, 0.9], 3), [{ index: 0, epoch: 1 }]); // 0.2 → 1 again, 0.9 → 3 = the last
});

Deno.test("early stop - wire: stopped results carry metrics.stopped, old results without it still load, stop_trial names a trial", () => {
  const metrics = fakeMetrics(0.5, 0.5, { steps: 10 });
  const base = {
    v: 1,
    sweep_id: "s",
    trial_id: "t",
    attempt: 1,
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: "2026-01-01T00:00:00Z",
    claim: "c",
  };
  // a done result from before validation, ladders and early stopping
  assert.ok(ResultMessageSchema.safeParse({ ...base, status: "done", metrics }).success);
  const stopped = { epochs: 2.5, planned_epochs: 8, rung_epoch: 2 };
  assert.ok(ResultMessageSchema.safeParse({ ...base, status: "stopped", metrics: { ...metrics, stopped } }).success);
  assert.ok(!ResultMessageSchema.safeParse({ ...base, status: "stopped", metrics }).success);
  assert.ok(!ResultMessageSchema.safeParse({ ...base, status: "stopped" }).success);
  assert.ok(!ResultMessageSchema.safeParse({ ...base, status: "done", metrics: { ...metrics, stopped } }).success);
  const ctl = { v: 1, sweep_id: "s", at: "now" };
  assert.ok(ControlMessageSchema.safeParse({ ...ctl, action: "stop_trial", trial_id: "t" }).success);
  assert.ok(!ControlMessageSchema.safeParse({ ...ctl, action: "stop_trial" }).success);
  assert.ok(!ControlMessageSchema.safeParse({ ...ctl, action: "cancel", trial_id: "t" }).success);
  assert.ok(ControlMessageSchema.safeParse({ ...ctl, action: "cancel" }).success);
});

Deno.test("early stop - a dominated trial is stopped by a real worker process, recorded once as stopped, and not run again on --resume", async () => {
  const c = await cluster(0);
  try {
    await c.addWorkers(1, ["--pack", "1"]);
    // two trials, queued in this order: lr 0.05 learns (its rung point is sparser and more accurate), lr 1e-6
    // barely moves; the second reaches the rung (epoch 50 of 200) after the first and is stopped there
    // one ticket per trial (no ladder: a barely trained trial's random-looking cuts can reach sparsities the good
    // one's do not, and then it is rightly kept; ladders are judged in the unit tests above)
    const text = tinySpecText("es", 1, "early_stop: {rungs: [0.25], margin: 0.01}\ntickets: {cuts: 0}\n", 200).replace(
      /parameters:\n.*\n/,
      "parameters:\n  lr: {values: [0.05, 0.000001]}\n  lambda: {values: [0.003]}\n",
    );
    const path = `${c.dir}/es.yaml`;
    await Deno.writeTextFile(path, text);
    const spec = parseSpec(text);
    const [good, bad] = expandTrials(spec);
    assert.equal(good!.params.lr, 0.05);
    const runDir = `${c.dir}/runs/${sweepIdOf(spec)}`;
    const run = async (args: string[], log: string) => {
      const p = startCoordinator([...args, "--reconcile", "2"], c.server, log);
      const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
      const st = await p.status;
      clearTimeout(timer);
      const out = await Deno.readTextFile(log);
      assert.equal(st.code, 0, out);
      return out;
    };
    const first = await run([path, "--runs", `${c.dir}/runs`], `${c.dir}/first.log`);
    assert.match(first, new RegExp(`stopping trial ${bad!.id} at rung 0 \\(epoch 50\\)`), first);
    const lines = await recorded(runDir);
    assert.deepEqual(lines.map((l) => l.trial_id).sort(), [good!.id, bad!.id].sort(), JSON.stringify(lines));
    // both rung reports kept for a resumed coordinator, in the order they were judged
    const rungs = (await Deno.readTextFile(`${runDir}/${RUNGS_FILE}`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rungs.map((l) => [l.trial_id, l.rung, l.epoch]), [[good!.id, 0, 50], [bad!.id, 0, 50]]);
    const byId = new Map(lines.map((l) => [l.trial_id, l as typeof l & { metrics?: Record<string, unknown> }]));
    assert.equal(byId.get(good!.id)!.status, "done");
    const stoppedLine = byId.get(bad!.id)!;
    assert.equal(stoppedLine.status, "stopped");
    const st = stoppedLine.metrics!.stopped as { epochs: number; planned_epochs: number; rung_epoch: number };
    assert.equal(st.planned_epochs, 200);
    assert.equal(st.rung_epoch, 50);
    assert.ok(st.epochs >= 50 && st.epochs < 200, JSON.stringify(st));
    assert.equal(typeof stoppedLine.metrics!.val_accuracy, "number");
    const report = await Deno.readTextFile(`${runDir}/report.md`);
    assert.match(report, /1 stopped early/);
    assert.match(report, /## Stopped early/);
    // the report's front holds the done trial's tickets only
    const pareto = JSON.parse(await Deno.readTextFile(`${runDir}/pareto.json`));
    assert.ok(pareto.tickets.every((t: { trial_id: string }) => t.trial_id !== bad!.id));
    assert.equal(pareto.counts.stopped, 1);
    // hypervolume against compute: the done trial's 200 epochs, then the stopped one's partial epochs
    assert.match(report, /### Hypervolume against compute/);
    const steps = pareto.compute[0].steps as { trials: number; trial_epochs: number; hypervolume: number }[];
    assert.equal(steps.length, 2);
    assert.equal(steps.at(-1)!.trial_epochs, 200 + st.epochs);
    assert.equal(steps[1]!.hypervolume, steps[0]!.hypervolume); // a stopped trial adds no point
    const second = await run(["--resume", runDir], `${c.dir}/second.log`);
    assert.match(second, /2\/2 trials already recorded/, second);
    assert.doesNotMatch(second, /published \d+ trial/, second); // nothing queued again: the stopped trial has its outcome
    assert.deepEqual(await recorded(runDir), lines);
  } finally {
    await c.close();
  }
});

Deno.test("report - hypervolume against compute: trial-epochs in recording order, stopped trials count their partial epochs, side by side in a comparison", () => {
  const trials = expandTrials(parseSpec(tinySpecText("hvc", 3, "", 4)));
  const result = (i: number, status: "done" | "stopped" | "failed", sparsity: number, val: number): RecordedResult =>
    madeResult(trials[i]!, status, sparsity, val, val);
  const results = [result(2, "done", 0.5, 0.8), result(0, "stopped", 0.9, 0.9), result(1, "failed", 0, 0)];
  const c = computeCurve("a", trials, results, "validation");
  assert.deepEqual(c.steps.map((s) => [s.trials, s.trial_epochs]), [[1, 4], [2, 5.5], [3, 5.5]]);
  assert.ok(Math.abs(c.steps[0]!.hypervolume - 0.4) < 1e-9, String(c.steps[0]!.hypervolume)); // (0.5 × 0.8)
  assert.equal(c.steps[1]!.hypervolume, c.steps[0]!.hypervolume); // the stopped trial's partial point is on no front
  const t = computeTable([c], 4)!;
  assert.deepEqual(t.head, ["trial-epochs ≤", "trials recorded", "validation hypervolume"]);
  assert.deepEqual(t.rows.map((r) => r.slice(0, 2)), [["1.38", "0"], ["2.75", "0"], ["4.13", "1"], ["5.5", "3"]]);
  const a = buildReportData("s1", "first", trials, results, "");
  const b = buildReportData("s2", "second", trials, results.slice(0, 1), "");
  const both = combineReports([a, b]);
  assert.deepEqual(both.compute!.map((x) => x.sweep), ["first", "second"]);
  const side = computeTable(both.compute!)!;
  assert.deepEqual(side.head.slice(1), [
    "first: trials",
    "first: validation hypervolume",
    "second: trials",
    "second: validation hypervolume",
  ]);
  assert.deepEqual(side.rows.at(-1), ["5.5", "3", "0.4000", "1", "0.4000"]);
});
