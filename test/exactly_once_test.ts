// Issue 11's cases that lost or hung trials, each with a real nats-server (and real processes where the user's
// path runs through the CLI). Every test asserts one recorded outcome per planned trial.
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { connectNats, type NatsTransport } from "../src/broker/nats.ts";
import { type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import type { ResultMessage, TrialMessage } from "../src/broker/messages.ts";
import type { Transport } from "../src/broker/transport.ts";
import { writeRetryRounds } from "../src/coordinator/record.ts";
import { acquireRunLock, type RunLock } from "../src/coordinator/run_lock.ts";
import { claimOf, runSweep, type SweepOutcome, sweepSecret, trialMessage } from "../src/coordinator/sweep.ts";
import { expandTrials, type PlannedTrial } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { runWorker } from "../src/worker/worker.ts";
import {
  fakeMetrics,
  forgedResult,
  handMadeRunDir,
  madeResult,
  readResults,
  tinySpec,
  tinySpecText,
} from "./_fixtures.ts";
import { cluster, startCoordinator, until, writeSpec } from "./_cluster.ts";
import { ROOT } from "./_fixtures.ts";

/** Exactly one outcome per planned trial, and nothing else. */
async function assertOnceEach(runDir: string, planned: string[], status = "done"): Promise<void> {
  const rows = await readResults(runDir);
  const ids = rows.map((r) => r.trial_id);
  assert.equal(new Set(ids).size, ids.length, "a trial was recorded twice");
  assert.deepEqual([...ids].sort(), [...planned].sort());
  assert.ok(rows.every((r) => r.status === status), JSON.stringify(rows.map((r) => [r.status, r.error])));
}

/**
 * A sweep whose coordinator was SIGKILLed: its state still says running, its queue exists and is empty. Before
 * the fix, workers pulled only from sweeps with new trials waiting once two sweeps shared the broker, so a
 * redelivery of the live sweep was never pulled.
 */
async function ghostSweep(t: Transport): Promise<void> {
  const [m] = expandTrials(tinySpec("ghost", 1)).map((t) => trialMessage(t, 3, "ghost-secret"));
  await t.publishTrial(m!);
  const d = await t.pullTrial(5000);
  assert.ok(d, "the ghost sweep's trial");
  await d.ack();
  assert.equal((await t.getSweepState(m!.sweep_id))?.status, "running");
}

/** Runs `fn` with a new runs directory and one in-process worker on an in-memory transport, then cleans up. */
async function withWorker(fn: (runs: string, transport: MemoryTransport) => Promise<void>): Promise<void> {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, backend: "js", signal: ac.signal });
  try {
    await fn(runs, transport);
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
}

/** Runs (or resumes) the sweep to its end, and checks that each of `trials` has exactly one outcome. */
async function completesOnceEach(
  text: string,
  runs: string,
  transport: Transport,
  runDir: string,
  trials: readonly PlannedTrial[],
): Promise<void> {
  assert.ok((await sweepWithin(text, runs, transport, 40_000)).complete);
  await assertOnceEach(runDir, trials.map((t) => t.id));
}

/** A spec's planned trials and the run directory its sweep gets under `runs`. */
function plannedIn(runs: string, text: string): { trials: PlannedTrial[]; runDir: string } {
  const trials = expandTrials(parseSpec(text));
  return { trials, runDir: `${runs}/${trials[0]!.sweepId}` };
}

/** Runs a sweep in this process; aborts it after `ms` (a hang fails the test instead of blocking it). */
async function sweepWithin(
  text: string,
  runsDir: string,
  transport: Transport,
  ms: number,
  extra: { log?: (l: string) => void; reconcileMs?: number; lock?: RunLock } = {},
): Promise<SweepOutcome> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    return await runSweep({
      spec: parseSpec(text),
      specText: text,
      specFile: "s.yaml",
      runsDir,
      transport,
      log: extra.log ?? (() => {}),
      signal: ac.signal,
      reconcileMs: extra.reconcileMs ?? 1000,
      lock: extra.lock,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** A nats-server in a temp dir with `n` client connections. */
async function broker(n: number, ackWaitMs = 30_000): Promise<{
  dir: string;
  server: LocalServer;
  clients: NatsTransport[];
  close(): Promise<void>;
}> {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  const clients: NatsTransport[] = [];
  for (let i = 0; i < n; i++) clients.push(await connectNats({ servers: server.url, token: server.token, ackWaitMs }));
  await clients[0]!.setup();
  return {
    dir,
    server,
    clients,
    async close() {
      for (const c of clients) await c.close().catch(() => {});
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("exactly once - case 1: --fresh on the same broker within the duplicate window runs and records everything again", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "fresh", 4, 3);
    const run = async (extra: string[], log: string) => {
      const p = startCoordinator([spec.path, "--runs", `${c.dir}/runs`, "--reconcile", "2", ...extra], c.server, log);
      const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
      const st = await p.status;
      clearTimeout(timer);
      assert.equal(st.code, 0, await Deno.readTextFile(log));
    };
    await run([], `${c.dir}/first.log`);
    await run(["--fresh"], `${c.dir}/second.log`);
    const second = await Deno.readTextFile(`${c.dir}/second.log`);
    assert.doesNotMatch(second, /resuming|rejected a result/, second);
    await assertOnceEach(`${c.dir}/runs/${spec.sweepId}`, spec.trialIds);
  } finally {
    await c.close();
  }
});

Deno.test("exactly once - case 2: a torn last line of results.jsonl, then a resume: set aside, its result recovered", async () => {
  const b = await broker(2);
  try {
    const text = tinySpecText("torn", 4, "", 2);
    const ac = new AbortController();
    const worker = runWorker({ transport: b.clients[1]!, backend: "js", signal: ac.signal });
    const first = await sweepWithin(text, b.dir, b.clients[0]!, 60_000);
    assert.ok(first.complete);
    const path = `${first.runDir}/results.jsonl`;
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    const torn = lines.at(-1)!;
    await Deno.writeTextFile(path, [...lines.slice(0, -1), torn.slice(0, torn.length >> 1)].join("\n"));
    const logs: string[] = [];
    const second = await sweepWithin(text, b.dir, b.clients[0]!, 30_000, { log: (l) => logs.push(l) });
    ac.abort();
    await worker;
    assert.ok(second.complete, logs.join("\n"));
    await assertOnceEach(first.runDir, expandTrials(parseSpec(text)).map((t) => t.id));
    assert.ok(logs.some((l) => /set aside/.test(l)), logs.join("\n"));
  } finally {
    await b.close();
  }
});

Deno.test("exactly once - case 4: a redelivery is pulled while a stale sweep shares the broker", async () => {
  const b = await broker(3, 1500);
  try {
    await ghostSweep(b.clients[0]!);
    const text = tinySpecText("redeliver", 3, "", 2);
    // no reconciliation here: the redelivery itself must reach a worker
    const sweep = sweepWithin(text, b.dir, b.clients[0]!, 40_000, { reconcileMs: 600_000 });
    const dying = b.clients[1]!;
    const sweepId = parseSpecId(text);
    await until("the sweep's trials queued", async () => (await b.clients[0]!.queueInfo(sweepId)).queued === 3);
    const d = await dying.pullTrial(10_000); // a worker that takes a trial and dies without an ack
    assert.ok(d);
    await dying.close();
    const ac = new AbortController();
    const worker = runWorker({ transport: b.clients[2]!, backend: "js", signal: ac.signal });
    const outcome = await sweep;
    ac.abort();
    await worker;
    assert.ok(outcome.complete, "hung with a trial awaiting redelivery");
    await assertOnceEach(outcome.runDir, expandTrials(parseSpec(text)).map((t) => t.id));
    const again = (await readResults(outcome.runDir)).find((r) => r.trial_id === d.trial.trial_id);
    assert.equal(again?.attempt, 2);
  } finally {
    await b.close();
  }
});

Deno.test("exactly once - case 5: a broker outage longer than the worker's result retry: the trial is given back and recorded", async () => {
  const dir = await Deno.makeTempDir();
  let server = await startLocalServer(`${dir}/nats`);
  const coord = await connectNats({ servers: server.url, token: server.token, ackWaitMs: 2000 });
  const workerT = await connectNats({ servers: server.url, token: server.token, ackWaitMs: 2000 });
  const ac = new AbortController();
  let worker: Promise<unknown> = Promise.resolve();
  try {
    await coord.setup();
    await ghostSweep(coord);
    // one trial: the given-back trial is the last one outstanding (with another one queued, an old worker kept
    // polling the sweep and got the redelivery by chance)
    const text = tinySpecText("outage", 1, "", 1200); // several seconds: still training when the broker goes
    const workerLog: string[] = [];
    const progress = new Promise<void>((resolve) => {
      const sub = coord.subscribeProgress(parseSpecId(text), () => {
        sub.stop();
        resolve();
      });
    });
    const sweep = sweepWithin(text, dir, coord, 90_000);
    worker = runWorker({
      transport: workerT,
      backend: "js",
      signal: ac.signal,
      resultRetryMs: 1000,
      heartbeatMs: 200,
      log: (l) => {
        workerLog.push(l);
        if (Deno.env.get("DEBUG_TEST")) console.log("worker:", l);
      },
    });
    await progress;
    const { port, token } = server;
    await server.stop();
    await until("the worker to give its finished trial back", () => workerLog.some((l) => /releasing it/.test(l)));
    server = await startLocalServer(`${dir}/nats`, { port, token });
    const outcome = await sweep;
    assert.ok(outcome.complete, workerLog.join("\n"));
    await assertOnceEach(outcome.runDir, expandTrials(parseSpec(text)).map((t) => t.id));
  } finally {
    ac.abort();
    await worker;
    await workerT.close();
    await coord.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

function parseSpecId(text: string): string {
  return expandTrials(parseSpec(text))[0]!.sweepId;
}

Deno.test("exactly once - case 7: a forged result carrying a trial's id as its Nats-Msg-Id cannot make the broker drop the real one", async () => {
  const b = await broker(2);
  try {
    const text = tinySpecText("forged-id", 2, "", 2);
    const trials = expandTrials(parseSpec(text));
    const logs: string[] = [];
    const sweep = sweepWithin(text, b.dir, b.clients[0]!, 40_000, { log: (l) => logs.push(l) });
    await until("the sweep's queue", async () => (await b.clients[0]!.queueInfo(trials[0]!.sweepId)).queued === 2);
    for (const t of trials) {
      const forged = forgedResult(t.sweepId, t.id);
      // every message id a real result could plausibly carry
      for (const msgID of [t.id, `${t.id}.1`]) {
        await jetstream(b.clients[1]!.nc).publish(
          `ticketsweep.result.${t.sweepId}`,
          new TextEncoder().encode(JSON.stringify(forged)),
          { msgID },
        );
      }
    }
    const ac = new AbortController();
    const worker = runWorker({ transport: b.clients[1]!, backend: "js", signal: ac.signal });
    const outcome = await sweep;
    ac.abort();
    await worker;
    assert.ok(outcome.complete, logs.join("\n"));
    await assertOnceEach(outcome.runDir, trials.map((t) => t.id));
    assert.equal(logs.filter((l) => /does not carry the trial's claim/.test(l)).length, 4);
  } finally {
    await b.close();
  }
});

Deno.test("exactly once - case 8: a result whose recording throws is delivered again; later results are still recorded", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("record-throws", 3, "", 2);
    const { trials, runDir } = plannedIn(runs, text);
    const logs: string[] = [];
    // writing a ticket fails while tickets/ is a file: every recording throws until the log hook removes it
    await Deno.mkdir(runDir, { recursive: true });
    await Deno.writeTextFile(`${runDir}/tickets`, "");
    const sweep = sweepWithin(text, runs, transport, 40_000, {
      log: (l) => {
        logs.push(l);
        // the results log becomes writable again once a recording has failed
        if (/not recorded yet/.test(l)) Deno.remove(`${runDir}/tickets`).catch(() => {});
      },
    });
    const outcome = await sweep;
    assert.ok(outcome.complete, logs.join("\n"));
    assert.ok(logs.some((l) => /not recorded yet/.test(l)), "no recording failed: the test did not test anything");
    await assertOnceEach(runDir, trials.map((t) => t.id));
  });
});

Deno.test("exactly once - case 8: a worker's failed result is published patiently through a broker blip", async () => {
  const inner = new MemoryTransport();
  let refusals = 2;
  const flaky: Transport = Object.create(inner, {
    publishResult: {
      value: (r: ResultMessage) => {
        if (refusals-- > 0) return Promise.reject(new Error("connection closed"));
        return inner.publishResult(r);
      },
    },
  });
  for (const k of Object.getOwnPropertyNames(MemoryTransport.prototype)) {
    if (k !== "constructor" && k !== "publishResult") {
      Object.defineProperty(flaky, k, {
        value: (inner as unknown as Record<string, (...a: unknown[]) => unknown>)[k]!.bind(inner),
      });
    }
  }
  const [m] = expandTrials(tinySpec("poison-blip", 1)).map((t) => trialMessage(t, 1, "s"));
  m!.config = { ...m!.config, dataset: { name: "idx", path: "/nonexistent/mnist", split_seed: 0, augment: false } };
  await inner.publishTrial(m!);
  const got: ResultMessage[] = [];
  const sub = await inner.consumeResults(m!.sweep_id, (r) => {
    got.push(r);
    return Promise.resolve();
  });
  const summary = await runWorker({ transport: flaky, backend: "js", maxTrials: 1 });
  await sub.stop();
  await inner.close();
  assert.equal(summary.failed, 1);
  assert.equal(got.length, 1);
  assert.equal(got[0]!.failure, "error");
  assert.match(got[0]!.error!, /DataError/);
});

Deno.test("exactly once - a sweep cancelled, then run again with --fresh: the same workers run it", async () => {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const text = tinySpecText("cancel-fresh", 3, "", 200);
  const sweepId = parseSpecId(text);
  let cancelling: Promise<number> | undefined;
  const worker = runWorker({
    transport,
    backend: "js",
    signal: ac.signal,
    // the sweep is cancelled as soon as this worker starts its first trial
    log: (l) => void (/: start/.test(l) && (cancelling ??= transport.cancelSweep(sweepId))),
  });
  try {
    const first = sweepWithin(text, `${runs}/a`, transport, 40_000);
    assert.ok((await first).cancelled);
    assert.equal(await cancelling, 3);
    // --fresh: the broker forgets the sweep, the run starts over in an empty run directory
    await transport.forgetSweep(sweepId);
    const second = await sweepWithin(text, `${runs}/b`, transport, 30_000);
    assert.ok(second.complete, "the workers kept dropping the trials of a sweep cancelled before");
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("exactly once - a 5,000-character training error is clipped: recorded once, and it reads back", async () => {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, backend: "js", signal: ac.signal });
  try {
    const path = `/nonexistent/${"x".repeat(5000)}`;
    const text = tinySpecText("long-error", 1, `max_attempts: 1\n`, 2).replace(
      "dataset: {name: synthetic, train: 512, test: 256}",
      `dataset: {name: idx, path: "${path}"}`,
    );
    const outcome = await sweepWithin(text, runs, transport, 40_000);
    assert.ok(outcome.complete);
    const [row] = await readResults(outcome.runDir);
    assert.equal(row?.status, "failed");
    assert.ok(row!.error!.length <= 4096 && /characters in all/.test(row!.error!), row!.error!.slice(-80));
    // a progress message with a longer error is rejected at the boundary (and progress never throws)
    transport.publishProgress({
      v: 1,
      sweep_id: outcome.sweepId,
      trial_id: "t",
      worker: "w",
      host: "h",
      step: 0,
      total_steps: 0,
      loss: null,
      attempt: 1,
      error: "e".repeat(6000),
    });
    assert.equal(transport.rejected().progress, 1);
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("exactly once - a draining worker (its coordinator gone) finishes its running trial, publishes it, and takes no new one", async () => {
  const transport = new MemoryTransport();
  const trials = expandTrials(tinySpec("drain", 3)).map((t) => trialMessage(t, 3, "s"));
  for (const m of trials) await transport.publishTrial(m);
  const got: ResultMessage[] = [];
  const sub = await transport.consumeResults(trials[0]!.sweep_id, (r) => {
    got.push(r);
    return Promise.resolve();
  });
  const drain = new AbortController();
  const summary = await runWorker({
    transport,
    backend: "js",
    drain: drain.signal,
    idleExitMs: 2000, // without the drain it would run all three, then leave when the queue is empty
    runTrial: async () => {
      drain.abort(); // the coordinator goes while the first trial runs
      await new Promise((r) => setTimeout(r, 50));
      return fakeMetrics(0.5, 0.5, { val_accuracy: 0.5 });
    },
  });
  await new Promise((r) => setTimeout(r, 50));
  await sub.stop();
  assert.equal(summary.done, 1);
  assert.deepEqual(got.map((r) => [r.trial_id, r.status]), [[trials[0]!.trial_id, "done"]]);
  // the other two stay queued for the resumed coordinator
  const left = [await transport.pullTrial(100), await transport.pullTrial(100)];
  assert.deepEqual(left.map((d) => d?.trial.trial_id).sort(), [trials[1]!.trial_id, trials[2]!.trial_id].sort());
  await transport.close();
});

Deno.test("exactly once - a result over the message limit fails at once with the reason, never retried", async () => {
  const transport = new MemoryTransport();
  const [m] = expandTrials(tinySpec("too-large", 1)).map((t) => trialMessage(t, 3, "s"));
  await transport.publishTrial(m!);
  const got: ResultMessage[] = [];
  const sub = await transport.consumeResults(m!.sweep_id, (r) => {
    got.push(r);
    return Promise.resolve();
  });
  const t0 = Date.now();
  const summary = await runWorker({
    transport,
    backend: "js",
    maxTrials: 1,
    runTrial: () =>
      Promise.resolve(fakeMetrics(0.5, 0.5, {
        val_accuracy: 0.5,
        ticket: { bits_b64: "A".repeat(1_200_000), sha256: "0".repeat(64), masked_weights: 7_200_000 },
      })),
  });
  await new Promise((r) => setTimeout(r, 50));
  await sub.stop();
  await transport.close();
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  assert.equal(summary.failed, 1);
  assert.equal(got.length, 1);
  assert.equal(got[0]!.status, "failed");
  assert.match(got[0]!.error!, /over the 1024 kB message limit .*7200000 masked weights/);
});

Deno.test("exactly once - a stop signal that came while the trials were being published ends the sweep at once", async () => {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  try {
    const text = tinySpecText("abort-early", 4, "", 2);
    const ac = new AbortController();
    ac.abort(); // before the coordinator reaches its wait
    const t0 = Date.now();
    const outcome = await Promise.race([
      runSweep({
        spec: parseSpec(text),
        specText: text,
        specFile: "s.yaml",
        runsDir: runs,
        transport,
        log: () => {},
        signal: ac.signal,
      }),
      new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
    ]);
    assert.ok(outcome, "the coordinator did not notice the signal");
    assert.ok(!outcome.complete);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("exactly once - results.jsonl truncated by another process mid-sweep: the lost lines are written again", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("truncated", 4, "", 2);
    const { trials, runDir } = plannedIn(runs, text);
    const logs: string[] = [];
    const outcome = await sweepWithin(text, runs, transport, 40_000, {
      log: (l) => {
        logs.push(l);
        if (/^\[2\/4\]/.test(l)) Deno.truncateSync(`${runDir}/results.jsonl`, 0);
      },
    });
    assert.ok(outcome.complete);
    await assertOnceEach(runDir, trials.map((t) => t.id));
    assert.ok(logs.some((l) => /had lost 2 of the 4 recorded outcomes/.test(l)), logs.join("\n"));
  });
});

Deno.test("exactly once - results.jsonl becomes a link to a missing file mid-sweep: one line stops it; restored, a resume ends it", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("unwritable", 3, "", 1);
    const { trials, runDir } = plannedIn(runs, text);
    const results = `${runDir}/results.jsonl`;
    const gone = `${runDir}/gone/results.jsonl`;
    // its line went to the moved file, and the end of the sweep threw ENOENT (where the first write of a run met
    // the link, the result was retried forever)
    const logs: string[] = [];
    await assert.rejects(
      () =>
        sweepWithin(text, runs, transport, 40_000, {
          log: (l) => {
            logs.push(l);
            if (!/^\[1\/3\]/.test(l)) return;
            Deno.renameSync(results, `${runDir}/moved.jsonl`);
            Deno.symlinkSync(gone, results);
          },
        }),
      (e: Error) => {
        assert.equal(
          e.message,
          `${results}: cannot record results in it (it is a link to ${gone}, which does not exist: restore that ` +
            `file, or remove the link), then continue with deno task sweep --resume ${runDir}`,
        );
        return true;
      },
    );
    assert.ok(!logs.some((l) => /not recorded yet/.test(l)), "stopped, not retried:\n" + logs.join("\n"));
    const before = Deno.readTextFileSync(`${runDir}/moved.jsonl`).trim().split("\n");
    assert.equal(before.length, 1, "the outcome recorded before the link broke is in the moved file");
    Deno.mkdirSync(`${runDir}/gone`);
    Deno.renameSync(`${runDir}/moved.jsonl`, gone); // the fix the line names
    await completesOnceEach(text, runs, transport, runDir, trials);
  });
});

Deno.test("exactly once - the run directory moved away mid-sweep: one line stops it, not made again; moved back, a resume ends it", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("moved", 3, "", 1);
    const { trials, runDir } = plannedIn(runs, text);
    const away = `${runs}/away`;
    // the next result's ticket (mkdir -p) made the run directory again, and the sweep ended there "complete",
    // without its plan, secret and earlier tickets
    await assert.rejects(
      () =>
        sweepWithin(text, runs, transport, 40_000, {
          log: (l) => /^\[1\/3\]/.test(l) && Deno.renameSync(runDir, away),
        }),
      (e: Error) => {
        assert.equal(
          e.message,
          `${runDir}/results.jsonl: cannot record results in it (${runDir} is gone (moved or removed?): put it ` +
            `back), then continue with deno task sweep --resume ${runDir}`,
        );
        return true;
      },
    );
    assert.ok(!(await Deno.stat(runDir).then(() => true, () => false)), "the run directory was made again");
    Deno.renameSync(away, runDir); // the fix the line names
    await completesOnceEach(text, runs, transport, runDir, trials);
  });
});

Deno.test("exactly once - a coordinator that lost its lock records nothing more: one line stops it, the results stay queued, a resume records each once", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("lockloss", 6, "", 1);
    const { trials, runDir } = plannedIn(runs, text);
    await Deno.mkdir(runDir, { recursive: true });
    const lock = await acquireRunLock(runDir, () => {}, { heartbeatMs: 10 });
    // its lock file removed (as when another coordinator takes a stale lock over), seen at its next heartbeat: it
    // went on recording beside whoever took the directory, each able to record a trial once
    Deno.removeSync(lock.path);
    await until("the lock's heartbeat sees it lost", () => lock.lost);
    await assert.rejects(
      () => sweepWithin(text, runs, transport, 40_000, { lock }),
      (e: Error) => {
        assert.match(e.message, /this coordinator lost its lock \(coordinator\.lock removed, or taken over/);
        assert.ok(e.message.endsWith(`continue with deno task sweep --resume ${runDir}`), e.message);
        return true;
      },
    );
    await lock.release();
    assert.equal((await readResults(runDir)).length, 0, "it recorded results after losing its lock");
    await completesOnceEach(text, runs, transport, runDir, trials);
  });
});

Deno.test("exactly once - a line of an earlier --retry-failed round left in results.jsonl (a crash before it moved, an old copy put back) moves aside and the current round is recorded", async () => {
  await withWorker(async (runs, transport) => {
    const text = tinySpecText("oldround", 3, "", 1);
    const { trials, runDir } = plannedIn(runs, text);
    assert.ok((await sweepWithin(text, runs, transport, 40_000)).complete);
    const id = trials[1]!.id;
    const claimOf = async () =>
      (await Deno.readTextFile(`${runDir}/results.jsonl`)).split("\n").filter(Boolean).map((l) => JSON.parse(l))
        .find((r) => r.trial_id === id).claim as string;
    const before = await claimOf();
    // --retry-failed wrote the trial's new round, then the coordinator died before its line moved: the old round's
    // outcome stayed first in the file, and the retried result, refused as a second outcome, was lost
    await writeRetryRounds(runDir, new Map([[id, 1]]));
    await completesOnceEach(text, runs, transport, runDir, trials);
    assert.notEqual(await claimOf(), before, "the earlier round's outcome was kept");
    assert.match(await Deno.readTextFile(`${runDir}/results.rejected.jsonl`), /an earlier round than --retry-failed/);
  });
});

Deno.test("exactly once - two coordinators started at once on a private broker: one runs, the other refuses and touches nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spec = await writeSpec(dir, "twins", 3, 600);
    const start = (n: number) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}src/cli/sweep.ts`, spec.path, "--runs", `${dir}/runs`, "--workers", "1"],
        env: { NO_COLOR: "1", NATS_URL: "" },
        stdout: "piped",
        stderr: "piped",
      }).spawn().output().then((o) => ({ n, code: o.code, text: new TextDecoder().decode(o.stderr) }));
    const runDir = `${dir}/runs/${spec.sweepId}`;
    const both = [start(1), start(2)];
    const loser = await Promise.race(both);
    assert.equal(loser.code, 1, loser.text);
    assert.match(loser.text, /is held by the coordinator pid \d+/);
    // the winner's private broker is reachable: its broker file is there while it runs (the loser, which used to
    // start a broker of its own in the same directory, deleted it on its way out)
    let ended = false;
    const winner = both[2 - loser.n]!.finally(() => (ended = true));
    await until(
      "the winner's broker.json",
      async () => ended || !!(await Deno.stat(`${runDir}/broker.json`).catch(() => null)),
    );
    assert.ok(!ended, "the winner ended before its broker file was seen");
    const w = await winner;
    assert.equal(w.code, 0, w.text);
    await assertOnceEach(runDir, spec.trialIds);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** `t` with its `publishTrial` calls written down in `published` (trial ids), every other member as it is. */
function publishSpy(t: Transport, published: string[]): Transport {
  return new Proxy(t, {
    get(target, k) {
      if (k === "publishTrial") {
        return (m: TrialMessage, n?: number) => {
          published.push(m.trial_id);
          return target.publishTrial(m, n);
        };
      }
      const v = Reflect.get(target, k);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

for (const kind of ["memory", "nats"] as const) {
  Deno.test(`exactly once - a result waiting on the broker when the coordinator starts is recorded, its trial not published again (${kind})`, async () => {
    // a coordinator was killed while a worker ran trial 0; the worker finished it and published its result, which
    // waits on the broker; the coordinator that starts on the run directory records it before it publishes
    const b = kind === "nats" ? await broker(2) : null;
    const memory = new MemoryTransport();
    const [coordinator, workerSide] = b ? b.clients : [memory, memory];
    const runs = await Deno.makeTempDir();
    const ac = new AbortController();
    let worker: Promise<unknown> | undefined;
    try {
      const text = tinySpecText("waiting-result", 2, "", 1);
      const { trials, runDir } = plannedIn(runs, text);
      await handMadeRunDir(runs, text, trials, []);
      const secret = await sweepSecret(runDir);
      const orphan = { ...madeResult(trials[0]!, "done", 0.5, 0.9, 0.9), claim: claimOf(secret, trials[0]!.id) };
      await coordinator!.setup();
      await coordinator!.publishResult(orphan);
      const published: string[] = [], pulled: string[] = [];
      const pulling = new Proxy(workerSide!, {
        get(target, k) {
          if (k === "pullTrial") {
            return async (ms: number) => {
              const d = await target.pullTrial(ms);
              if (d) pulled.push(d.trial.trial_id);
              return d;
            };
          }
          const v = Reflect.get(target, k);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      worker = runWorker({ transport: pulling, backend: "js", signal: ac.signal });
      const logs: string[] = [];
      const outcome = await sweepWithin(text, runs, publishSpy(coordinator!, published), 40_000, {
        log: (l) => logs.push(l),
      });
      assert.ok(outcome.complete, logs.join("\n"));
      await assertOnceEach(runDir, trials.map((t) => t.id));
      const line = (await readResults(runDir)).find((r) => r.trial_id === trials[0]!.id) as { worker?: { id: string } };
      assert.equal(line.worker?.id, orphan.worker.id, "trial 0's outcome is not the result that waited");
      assert.deepEqual(published, [trials[1]!.id], "a trial whose result waited on the broker was published again");
      assert.deepEqual(pulled, [trials[1]!.id]);
      assert.ok(logs.some((l) => /recorded 1 result .* not published again/.test(l)), logs.join("\n"));
    } finally {
      ac.abort();
      await worker;
      await memory.close();
      await b?.close();
      await Deno.remove(runs, { recursive: true });
    }
  });
}
