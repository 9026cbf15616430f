// Issue 11's cases that lost or hung trials, each with a real nats-server (and real processes where the user's
// path runs through the CLI). Every test asserts one recorded outcome per planned trial.
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { connectNats, type NatsTransport } from "../src/broker/nats.ts";
import { type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import type { ResultMessage } from "../src/broker/messages.ts";
import type { Transport } from "../src/broker/transport.ts";
import { runSweep, type SweepOutcome, trialMessage } from "../src/coordinator/sweep.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { runWorker } from "../src/worker/worker.ts";
import { forgedResult, readResults, tinySpec, tinySpecText } from "./_fixtures.ts";
import { cluster, startCoordinator, until, writeSpec } from "./_cluster.ts";

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

/** Runs a sweep in this process; aborts it after `ms` (a hang fails the test instead of blocking it). */
async function sweepWithin(
  text: string,
  runsDir: string,
  transport: Transport,
  ms: number,
  extra: { log?: (l: string) => void; reconcileMs?: number } = {},
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
    const text = tinySpecText("outage", 2, "", 300);
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
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, backend: "js", signal: ac.signal });
  try {
    const text = tinySpecText("record-throws", 3, "", 2);
    const trials = expandTrials(parseSpec(text));
    const runDir = `${runs}/${trials[0]!.sweepId}`;
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
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
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
