import assert from "node:assert/strict";
import {
  duration,
  ProgressDisplay,
  renderLine,
  renderTty,
  RunningFront,
  SweepProgress,
} from "../src/coordinator/progress.ts";
import type { ProgressMessage, ResultMessage } from "../src/broker/messages.ts";
import { nonDominated } from "../src/pareto/front.ts";
import { Rng } from "../src/util/rng.ts";

const progress = (trial: string, worker: string, step: number): ProgressMessage => ({
  v: 1,
  sweep_id: "s-1",
  trial_id: trial,
  worker,
  host: "h",
  step,
  total_steps: 100,
  loss: 0.5,
  attempt: 1,
});

const result = (trial: string, status: "done" | "failed", sparsity = 0, accuracy = 0): ResultMessage =>
  ({
    v: 1,
    sweep_id: "s-1",
    trial_id: trial,
    status,
    attempt: 1,
    worker: { id: "w", host: "h", backend: "js", device: "d", deno: "2" },
    finished_at: "",
    ...(status === "done" ? { metrics: { sparsity, accuracy } } : { error: "boom" }),
  }) as unknown as ResultMessage;

Deno.test("progress - counts, per-worker throughput, front size and ETA", () => {
  const p = new SweepProgress("s-1", 10, 0);
  p.onRecorded(result("t1", "done", 0.1, 0.5), "gates");
  p.onRecorded(result("t2", "done", 0.2, 0.4), "gates"); // dominated by t5 below
  p.onProgress(progress("t3", "w1", 10), 1000);
  p.onProgress(progress("t3", "w1", 30), 2000); // 20 steps in 1 s
  p.onProgress(progress("t4", "w2", 5), 2000);
  p.onResult(result("t5", "done", 0.5, 0.9), "gates");
  p.onResult(result("t6", "done", 0.8, 0.8), "gates");
  p.onResult(result("t7", "done", 0.4, 0.85), "gates"); // dominated by (0.5, 0.9)
  p.onResult(result("t4", "failed"), "gates");
  const s = p.snapshot(4000);
  assert.equal(s.done, 5);
  assert.equal(s.failed, 1);
  assert.equal(s.frontSize, 2);
  assert.deepEqual(s.running.map((w) => [w.worker, w.trial, w.stepsPerS]), [["w1", "t3", 20]]);
  assert.equal(s.elapsedS, 4);
  assert.equal(s.etaS, 4 / 4 * 4); // 4 finished in 4 s, 4 remaining
  // workers silent for long are no longer shown as running
  assert.equal(p.snapshot(60_000).running.length, 0);
  assert.equal(duration(75), "1m15s");
  assert.equal(duration(3725), "1h02m");
});

Deno.test("progress - terminal mode redraws a block in place; log lines scroll above it", () => {
  const p = new SweepProgress("sweep-abc", 4, 0);
  p.onProgress(progress("t1", "w1", 50), 500);
  const out: string[] = [];
  const d = new ProgressDisplay({ write: (t) => out.push(t), tty: true, width: () => 60 });
  d.show(p.snapshot(1000), 1000);
  const block = out.join("");
  const lines = block.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^sweep-abc \[-+\] 0%$/);
  assert.match(lines[1]!, /^0\/4 finished: 0 done, 0 failed, 1 running/);
  assert.match(lines[2]!, /^ {2}h\/w1: trial t1 step 50\/100 \(50%\)/);
  assert.ok(lines.every((l) => l.length <= 60));
  out.length = 0;
  d.log("a result line", new Date(0));
  d.show(p.snapshot(1500), 1500);
  // cursor up 3 lines and clear, the log line, then the block again
  assert.equal(out[0], "\x1b[3F\x1b[J");
  assert.equal(out[1], "[00:00:00] a result line\n");
  assert.equal(out[2]!.split("\n").length - 1, 3);
  assert.deepEqual(renderTty(p.snapshot(1000), 200).length, 3);
});

Deno.test("progress - plain mode prints timestamped lines on change, throttled, no escape codes", () => {
  const p = new SweepProgress("s-1", 3, 0);
  const out: string[] = [];
  const d = new ProgressDisplay({ write: (t) => out.push(t), tty: false, everyMs: 5000 });
  d.show(p.snapshot(5000), 5000);
  d.show(p.snapshot(5500), 5500); // nothing changed
  p.onResult(result("t1", "done", 0.5, 0.9), "gates");
  d.show(p.snapshot(6000), 6000); // changed, but within 5 s of the last line
  d.show(p.snapshot(11000), 11000);
  d.show(p.snapshot(80000), 80000); // a minute without change: a keep-alive line
  assert.equal(out.length, 3);
  assert.ok(out.every((l) => !l.includes("\x1b")));
  assert.match(
    out[1]!,
    /^\[00:00:11\] s-1: 1\/3 finished: 1 done, 0 failed, 0 running; front 1 point; 11s elapsed, ETA 22s\n$/,
  );
  assert.match(renderLine(p.snapshot(11000), new Date(11000)), /^\[00:00:11\] /);
});

Deno.test("progress - the running front counts what nonDominated counts, points added one at a time", () => {
  const rng = new Rng(7);
  for (let round = 0; round < 50; round++) {
    // few distinct values: ties in x, in y and exact duplicates are common
    const points = Array.from({ length: 1 + rng.int(40) }, () => ({ x: rng.int(6) / 5, y: rng.int(6) / 5 }));
    const front = new RunningFront();
    points.forEach((p, i) => {
      front.add(p.x, p.y);
      assert.equal(front.size, nonDominated(points.slice(0, i + 1)).filter(Boolean).length, JSON.stringify(points));
    });
  }
});
