// One conformance suite for the Transport interface: every member, the same tests against the in-memory transport
// and a real nats-server. One broker per transport kind serves the whole file; each test uses sweeps of its own
// and forgets them at the end, so that no test sees another's trials.
import assert from "node:assert/strict";
import { MemoryTransport } from "../src/broker/memory.ts";
import { connectNats, type NatsTransport } from "../src/broker/nats.ts";
import { type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import {
  type ControlMessage,
  type ProgressMessage,
  type ResultMessage,
  type SweepState,
  type TrialMessage,
  unknownSweepState,
  WIRE_VERSION,
  type WorkerPresence,
} from "../src/broker/messages.ts";
import type { QueueInfo, Transport } from "../src/broker/transport.ts";
import { BrokerError } from "../src/util/errors.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { trialMessage } from "../src/coordinator/sweep.ts";
import { presenceOf, tinySpec } from "./_fixtures.ts";

/** The ack deadline of the clients that test redelivery. */
const FAST_ACK_MS = 1000;

function trialMessages(name: string, n: number, secret = "test-secret"): TrialMessage[] {
  return expandTrials(tinySpec(name, n)).map((t) => trialMessage(t, 3, secret));
}

function failed(t: TrialMessage, worker = "w"): ResultMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    status: "failed",
    attempt: 1,
    error: "test",
    failure: "error",
    worker: { id: worker, host: "h", backend: "none", device: "none", deno: "x" },
    finished_at: new Date().toISOString(),
    claim: t.claim,
  };
}

function progressOf(t: TrialMessage, step: number): ProgressMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    worker: "w1",
    host: "h",
    step,
    total_steps: 10,
    loss: 0.5,
    attempt: 1,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `get` until `ok` holds (an assertion that throws counts as not yet); fails with the last value after `ms`. */
async function eventually<T>(what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    let good = false;
    try {
      good = ok(v);
    } catch { /* not yet */ }
    if (good) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await sleep(50);
  }
}

/** `p`, or a failure naming `what` when it has not settled within `ms` (a hang fails the test instead of blocking it). */
async function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((
        _,
        reject,
      ) => (timer = setTimeout(() => reject(new Error(`${what}: not after ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** queueInfo reaches `want` (a NATS client's acks and naks travel asynchronously). */
async function expectQueue(t: Transport, sweep: string, want: QueueInfo): Promise<void> {
  await eventually(`queueInfo(${sweep})`, () => t.queueInfo(sweep), (q) => {
    assert.deepEqual(q, want);
    return true;
  });
}

/** Pulls until nothing comes within `waitMs`, acking each delivery. */
async function drain(t: Transport, waitMs = 400): Promise<TrialDelivery[]> {
  const out: TrialDelivery[] = [];
  for (;;) {
    const d = await t.pullTrial(waitMs);
    if (!d) return out;
    out.push(d);
    await d.ack();
  }
}
type TrialDelivery = NonNullable<Awaited<ReturnType<Transport["pullTrial"]>>>;

/** One broker shared by a kind's tests, and its clients. */
interface Broker {
  /** A client with a 30 s ack deadline. */
  t: Transport;
  /** A client with a FAST_ACK_MS ack deadline, for redelivery (a test uses one client per sweep). */
  fast: Transport;
  /** One more client of the same broker (the in-memory transport is its own broker, so: a new one). */
  client(): Promise<Transport>;
  stop(): Promise<void>;
}

const servers = new Set<{ server: LocalServer; dir: string }>();
// a run cut short by a filter or a failure still stops the servers it started
globalThis.addEventListener("unload", () => {
  for (const s of servers) {
    try {
      s.server.process.kill("SIGKILL");
    } catch { /* gone */ }
    try {
      Deno.removeSync(s.dir, { recursive: true });
    } catch { /* gone */ }
  }
});

const factories: Record<"memory" | "nats", () => Promise<Broker>> = {
  memory: () => {
    const t = new MemoryTransport({ ackWaitMs: 30_000 });
    const fast = new MemoryTransport({ ackWaitMs: FAST_ACK_MS });
    return Promise.resolve({
      t,
      fast,
      client: () => Promise.resolve(new MemoryTransport()),
      stop: async () => {
        await t.close();
        await fast.close();
      },
    });
  },
  nats: async () => {
    const dir = await Deno.makeTempDir({ prefix: "transport-test-" });
    const server = await startLocalServer(dir);
    const entry = { server, dir };
    servers.add(entry);
    const connect = (ackWaitMs: number) => connectNats({ servers: server.url, token: server.token, ackWaitMs });
    const t = await connect(30_000);
    await t.setup();
    const fast = await connect(FAST_ACK_MS);
    return {
      t,
      fast,
      client: () => connect(30_000),
      stop: async () => {
        await t.close();
        await fast.close();
        await server.stop();
        await Deno.remove(dir, { recursive: true });
        servers.delete(entry);
      },
    };
  },
};

const brokers = new Map<string, Promise<Broker>>();
const brokerOf = (kind: keyof typeof factories) => {
  if (!brokers.has(kind)) brokers.set(kind, factories[kind]());
  return brokers.get(kind)!;
};

interface Ctx {
  kind: keyof typeof factories;
  b: Broker;
  /** Trials of a sweep of this test (named after the kind and `label`), forgotten on both clients at the end. */
  trials(label: string, n: number, secret?: string): TrialMessage[];
  /** A sweep id of this test without trials. */
  sweepOf(label: string): string;
}

type Case = [name: string, fn: (c: Ctx) => Promise<void>];

const cases: Case[] = [
  ["kind names the transport; setup is idempotent", async ({ kind, b }) => {
    assert.equal(b.t.kind, kind);
    assert.equal(b.fast.kind, kind);
    await b.t.setup();
    await b.t.setup();
    await b.fast.setup();
  }],

  [
    "publishTrial: the same trial is queued once, a republish is a new copy, a new claim is not deduplicated",
    async (c) => {
      const t = c.b.t;
      const [a, other] = c.trials("dedupe", 2);
      const sweep = a!.sweep_id;
      await t.publishTrial(a!);
      await t.publishTrial(a!); // a resumed coordinator publishing it again: a no-op
      await t.publishTrial(other!);
      assert.deepEqual(await t.queueInfo(sweep), { queued: 2, running: 0, unrecorded: 0 });
      assert.equal((await t.getSweepState(sweep))?.status, "running", "the first trial marks an unknown sweep running");
      await t.publishTrial(a!, 1); // reconciliation: a new copy
      await t.publishTrial(a!, 1); // that copy once
      const [again] = c.trials("dedupe", 2, "another-secret"); // a new run of the sweep: same trial id, new claim
      assert.equal(again!.trial_id, a!.trial_id);
      await t.publishTrial(again!);
      assert.deepEqual(await t.queueInfo(sweep), { queued: 4, running: 0, unrecorded: 0 });
      const got = (await drain(t)).map((d) => `${d.trial.trial_id}:${d.trial.claim}`).sort();
      const want = [a!, a!, other!, again!].map((m) => `${m.trial_id}:${m.claim}`).sort();
      assert.deepEqual(got, want);
    },
  ],

  ["pullTrial: null after expiresMs when nothing comes; a trial published meanwhile is delivered", async (c) => {
    const t = c.b.t;
    // a running sweep with nothing queued (its state only) must not cut the wait short
    await t.putSweepState(unknownSweepState(c.sweepOf("idle")));
    const t0 = performance.now();
    assert.equal(await t.pullTrial(600), null);
    assert.ok(performance.now() - t0 >= 500, `returned null after ${performance.now() - t0} ms, not 600`);
    const [m] = c.trials("late", 1);
    const pending = t.pullTrial(5000);
    await sleep(200);
    await t.publishTrial(m!);
    const d = await pending;
    assert.equal(d?.trial.trial_id, m!.trial_id);
    await d!.ack();
  }],

  ["pullTrial: sweeps take turns", async (c) => {
    const t = c.b.t;
    const a = c.trials("turn-a", 3);
    const b = c.trials("turn-b", 3);
    for (const m of [...a, ...b]) await t.publishTrial(m);
    await sleep(600); // a NATS worker learns of new sweeps from the sweep bucket, cached for half a second
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const d = await t.pullTrial(3000);
      assert.ok(d, `pull ${i} got nothing`);
      got.push(d.trial.sweep_id);
      await d.ack();
    }
    assert.notEqual(got[0], got[1], `the same sweep twice: ${got}`);
    assert.equal(got.filter((s) => s === a[0]!.sweep_id).length, 2, `${got}`);
    assert.equal(got.filter((s) => s === b[0]!.sweep_id).length, 2, `${got}`);
  }],

  ["pullTrial: a redelivery of one sweep is pulled while another sweep has nothing pending", async (c) => {
    const t = c.b.fast;
    const [a] = c.trials("redeliver-a", 1);
    const [b] = c.trials("redeliver-b", 1);
    await t.publishTrial(a!);
    await t.publishTrial(b!);
    await sleep(600); // both sweeps known (see "sweeps take turns")
    const first = [(await t.pullTrial(3000))!, (await t.pullTrial(3000))!];
    assert.deepEqual(first.map((d) => d.trial.trial_id).sort(), [a!.trial_id, b!.trial_id].sort());
    await first.find((d) => d.trial.trial_id === b!.trial_id)!.ack();
    // a's worker died: no ack; after the deadline a must come back although sweep b is idle (this hung on NATS)
    const again = await t.pullTrial(5000);
    assert.equal(again?.trial.trial_id, a!.trial_id);
    assert.equal(again!.deliveryCount, 2);
    again!.nak(); // given back: pulled again at once
    const third = await t.pullTrial(5000);
    assert.equal(third?.trial.trial_id, a!.trial_id);
    assert.equal(third!.deliveryCount, 3);
    await third!.ack();
  }],

  ["TrialDelivery.ack: each trial is delivered once (deliveryCount 1) and an acked trial is gone", async (c) => {
    const t = c.b.t;
    const msgs = c.trials("ack", 4);
    for (const m of msgs) await t.publishTrial(m);
    const got = await drain(t);
    assert.deepEqual(got.map((d) => d.deliveryCount), [1, 1, 1, 1]);
    assert.deepEqual(got.map((d) => d.trial.trial_id).sort(), msgs.map((m) => m.trial_id).sort());
    assert.deepEqual(got.find((d) => d.trial.trial_id === msgs[0]!.trial_id)!.trial, msgs[0]);
    await expectQueue(t, msgs[0]!.sweep_id, { queued: 0, running: 0, unrecorded: 0 });
  }],

  ["TrialDelivery.nak redelivers at once, nak(delay) not before the delay; term never redelivers", async (c) => {
    const t = c.b.fast;
    const [m] = c.trials("nak", 1);
    await t.publishTrial(m!);
    const d1 = (await t.pullTrial(3000))!;
    assert.equal(d1.deliveryCount, 1);
    d1.nak();
    const d2 = await t.pullTrial(3000);
    assert.equal(d2?.trial.trial_id, m!.trial_id);
    assert.equal(d2!.deliveryCount, 2);
    const t0 = performance.now();
    d2!.nak(1000);
    const d3 = await t.pullTrial(5000);
    const waited = performance.now() - t0;
    assert.equal(d3?.deliveryCount, 3);
    assert.ok(waited >= 800, `redelivered ${waited} ms after nak(1000)`);
    d3!.term();
    assert.equal(await t.pullTrial(FAST_ACK_MS + 300), null, "a termed trial came back");
    await expectQueue(t, m!.sweep_id, { queued: 0, running: 0, unrecorded: 0 });
  }],

  ["TrialDelivery.working extends the ack deadline; a missed deadline redelivers with a higher count", async (c) => {
    const t = c.b.fast;
    const [m] = c.trials("working", 1);
    await t.publishTrial(m!);
    const d1 = (await t.pullTrial(3000))!;
    const keep = setInterval(() => d1.working(), 250);
    try {
      assert.equal(await t.pullTrial(FAST_ACK_MS + 600), null, "redelivered while its worker said it was working");
    } finally {
      clearInterval(keep);
    }
    const d2 = await t.pullTrial(5000); // no more working(): redelivered after the deadline
    assert.equal(d2?.trial.trial_id, m!.trial_id);
    assert.equal(d2!.deliveryCount, 2);
    await d2!.ack();
    assert.equal(await t.pullTrial(400), null);
  }],

  [
    "results: every result is delivered, duplicates included, one at a time; a late consumer gets all from the first",
    async (c) => {
      const t = c.b.t;
      const msgs = c.trials("results", 3);
      const sweep = msgs[0]!.sweep_id;
      const published = [...msgs.map((m) => failed(m)), failed(msgs[0]!, "w2")]; // a second worker finished msgs[0]
      for (const r of published) await t.publishResult(r);
      const first: ResultMessage[] = [];
      let inHandler = 0;
      let overlapped = false;
      const sub1 = await t.consumeResults(sweep, async (r) => {
        overlapped ||= inHandler > 0;
        inHandler++;
        await sleep(5);
        first.push(r);
        inHandler--;
      });
      await eventually("results delivered", () => first.length, (n) => n === 4);
      const late = failed(msgs[1]!, "w3");
      published.push(late);
      await t.publishResult(late); // while the consumer runs
      await eventually("the new result", () => first.length, (n) => n === 5);
      await sub1.stop();
      assert.deepEqual(first, published);
      assert.ok(!overlapped, "the handler ran twice at once");
      // a coordinator that starts later (or again) gets every stored result, from the first
      const second: ResultMessage[] = [];
      const sub2 = await t.consumeResults(sweep, (r) => {
        second.push(r);
        return Promise.resolve();
      });
      await eventually("the replay", () => second.length, (n) => n === 5);
      await sleep(200);
      await sub2.stop();
      assert.deepEqual(second, published);
    },
  ],

  ["results: a result whose handler throws comes again about a second later, the others meanwhile", async (c) => {
    const t = c.b.t;
    const msgs = c.trials("retry", 3);
    for (const m of msgs) await t.publishResult(failed(m));
    const calls: { id: string; at: number }[] = [];
    let thrown = false;
    const sub = await t.consumeResults(msgs[0]!.sweep_id, (r) => {
      calls.push({ id: r.trial_id, at: performance.now() });
      if (r.trial_id === msgs[0]!.trial_id && !thrown) {
        thrown = true;
        return Promise.reject(new Error("disk full"));
      }
      return Promise.resolve();
    });
    try {
      await eventually("the retry", () => calls.length, (n) => n === 4);
      await sleep(200);
      const ids = msgs.map((m) => m.trial_id);
      assert.deepEqual(calls.map((x) => x.id), [ids[0], ids[1], ids[2], ids[0]]);
      const gap = calls[3]!.at - calls[0]!.at;
      assert.ok(gap >= 700 && gap < 4000, `delivered again after ${gap} ms`);
    } finally {
      await sub.stop();
    }
  }],

  ["results: stop() ends delivery, retries included", async (c) => {
    const t = c.b.t;
    const msgs = c.trials("stop", 2);
    await t.publishResult(failed(msgs[0]!));
    const calls: string[] = [];
    const sub = await t.consumeResults(msgs[0]!.sweep_id, (r) => {
      calls.push(r.trial_id);
      return Promise.reject(new Error("never recorded")); // a retry is due a second later
    });
    await eventually("the first delivery", () => calls.length, (n) => n === 1);
    await sub.stop();
    await t.publishResult(failed(msgs[1]!));
    await sleep(1300);
    assert.deepEqual(calls, [msgs[0]!.trial_id]);
  }],

  [
    "results: caughtUp resolves once the handler settled on every result stored before the call, a throwing one too",
    async (c) => {
      const t = c.b.t;
      const none = await t.consumeResults(c.sweepOf("caught-up-none"), () => Promise.resolve());
      await within(none.caughtUp, "caughtUp of a sweep without stored results");
      await none.stop();
      const msgs = c.trials("caught-up", 3);
      for (const m of msgs) await t.publishResult(failed(m));
      const settled: string[] = [];
      let thrown = false;
      const sub = await t.consumeResults(msgs[0]!.sweep_id, async (r) => {
        await sleep(20); // a recording that takes a while: caughtUp waits for it
        settled.push(r.trial_id);
        if (r.trial_id === msgs[1]!.trial_id && !thrown) {
          thrown = true;
          throw new Error("disk full"); // delivered again later; caughtUp does not wait for that
        }
      });
      try {
        await within(sub.caughtUp, "caughtUp");
        assert.deepEqual(settled.slice(0, 3), msgs.map((m) => m.trial_id));
      } finally {
        await sub.stop();
      }
    },
  ],

  [
    "queueInfo: queued, running and unrecorded follow publish, pull, ack, nak, term and the results handler",
    async (c) => {
      const t = c.b.t;
      const msgs = c.trials("queue", 3);
      const sweep = msgs[0]!.sweep_id;
      assert.deepEqual(await t.queueInfo(sweep), { queued: 0, running: 0, unrecorded: 0 }); // unknown sweep
      for (const m of msgs) await t.publishTrial(m);
      await expectQueue(t, sweep, { queued: 3, running: 0, unrecorded: 0 });
      const d1 = (await t.pullTrial(3000))!;
      await expectQueue(t, sweep, { queued: 2, running: 1, unrecorded: 0 });
      await d1.ack();
      await expectQueue(t, sweep, { queued: 2, running: 0, unrecorded: 0 });
      const d2 = (await t.pullTrial(3000))!;
      d2.nak(60_000); // given back, not due for a minute: still running (delivered, not acked)
      await expectQueue(t, sweep, { queued: 1, running: 1, unrecorded: 0 });
      const d3 = (await t.pullTrial(3000))!;
      assert.notEqual(d3.trial.trial_id, d2.trial.trial_id);
      await expectQueue(t, sweep, { queued: 0, running: 2, unrecorded: 0 });
      d3.term();
      await expectQueue(t, sweep, { queued: 0, running: 1, unrecorded: 0 });
      // results: unrecorded counts what this client's consumer has not handled (0 while none runs)
      for (const m of msgs) await t.publishResult(failed(m));
      await expectQueue(t, sweep, { queued: 0, running: 1, unrecorded: 0 });
      let failing = true;
      const handled: string[] = [];
      const sub = await t.consumeResults(sweep, (r) => {
        if (failing && r.trial_id === msgs[0]!.trial_id) return Promise.reject(new Error("not yet"));
        handled.push(r.trial_id);
        return Promise.resolve();
      });
      try {
        await eventually("two handled, one failing", async () => ({ n: handled.length, q: await t.queueInfo(sweep) }), (
          v,
        ) => v.n === 2 && v.q.unrecorded === 1);
        failing = false;
        await expectQueue(t, sweep, { queued: 0, running: 1, unrecorded: 0 });
        assert.deepEqual(handled.sort(), msgs.map((m) => m.trial_id).sort());
      } finally {
        await sub.stop();
      }
      await t.publishResult(failed(msgs[1]!));
      await expectQueue(t, sweep, { queued: 0, running: 1, unrecorded: 0 });
    },
  ],

  [
    "forgetSweep: queue, deliveries, results and state gone; the sweep starts over; the duplicate window stays",
    async (c) => {
      const t = c.b.fast;
      const msgs = c.trials("forget", 3);
      const sweep = msgs[0]!.sweep_id;
      for (const m of msgs) await t.publishTrial(m);
      const out = (await t.pullTrial(3000))!; // a delivery that is out when the sweep is forgotten
      await t.publishResult(failed(msgs[0]!));
      await t.publishResult(failed(msgs[1]!));
      const before: string[] = [];
      const sub1 = await t.consumeResults(sweep, (r) => {
        before.push(r.trial_id);
        return Promise.resolve();
      });
      const after: string[] = [];
      let sub2;
      try {
        await eventually("results before", () => before.length, (n) => n === 2);
        await t.forgetSweep(sweep);
        await expectQueue(t, sweep, { queued: 0, running: 0, unrecorded: 0 });
        assert.equal(await t.getSweepState(sweep), null);
        assert.ok(!(await t.listSweepStates()).some((s) => s.sweep_id === sweep));
        sub2 = await t.consumeResults(sweep, (r) => {
          after.push(r.trial_id);
          return Promise.resolve();
        });
        // nothing comes back: not the queued trials, not the one that was out (past its ack deadline now)
        assert.equal(await t.pullTrial(FAST_ACK_MS + 300), null);
        await out.ack().catch(() => {}); // may reject (NATS: its queue is gone); a lost ack only means a redelivery
        assert.deepEqual(after, [], "a result of the forgotten run was delivered");
        // the very same trial (same claim) is still within the duplicate window: a no-op, that opens the sweep
        await t.publishTrial(msgs[0]!);
        await expectQueue(t, sweep, { queued: 0, running: 0, unrecorded: 0 });
        assert.equal((await t.getSweepState(sweep))?.status, "running");
        // a run that starts over has a new secret: its trials are queued and served
        const fresh = c.trials("forget", 3, "new-secret");
        await t.publishTrial(fresh[0]!);
        await expectQueue(t, sweep, { queued: 1, running: 0, unrecorded: 0 });
        assert.equal((await t.getSweepState(sweep))?.status, "running");
        const d = await t.pullTrial(3000);
        assert.equal(d?.trial.claim, fresh[0]!.claim);
        await d!.ack();
        await t.publishResult(failed(fresh[0]!));
        // both consumers get it, the one from before the forget included
        await eventually("the new run's result", () => [before.length, after.length], ([b, a]) => b === 3 && a === 1);
        assert.equal(before[2], fresh[0]!.trial_id);
      } finally {
        await sub1.stop();
        await sub2?.stop();
      }
    },
  ],

  ["publishProgress/subscribeProgress: the sweep's subscribers only; invalid progress never throws", async (c) => {
    const t = c.b.t;
    const [a] = c.trials("progress-a", 1);
    const [b] = c.trials("progress-b", 1);
    const gotA: ProgressMessage[] = [];
    const gotB: ProgressMessage[] = [];
    const subA = t.subscribeProgress(a!.sweep_id, (p) => gotA.push(p));
    const subB = t.subscribeProgress(b!.sweep_id, (p) => gotB.push(p));
    try {
      const rejectedBefore = t.rejected().progress ?? 0;
      const p = progressOf(a!, 3);
      t.publishProgress(p);
      t.publishProgress({ ...p, step: "three" } as unknown as ProgressMessage); // rejected, never thrown
      await eventually(
        "progress and its rejection",
        () => [gotA.length, t.rejected().progress ?? 0],
        ([n, r]) => n === 1 && r === rejectedBefore + 1,
      );
      await sleep(100);
      assert.deepEqual(gotA, [p]);
      assert.deepEqual(gotB, []);
      t.publishProgress({} as ProgressMessage);
      t.publishProgress(null as unknown as ProgressMessage);
      await subA.stop();
      t.publishProgress(progressOf(a!, 4));
      await sleep(100);
      assert.equal(gotA.length, 1, "delivered after stop()");
    } finally {
      await subA.stop();
      await subB.stop();
    }
  }],

  [
    "putSweepState/getSweepState/listSweepStates: round trip, null when unknown, an invalid state never returned",
    async (c) => {
      const t = c.b.t;
      const id = c.sweepOf("state");
      const bad = c.sweepOf("state-bad");
      assert.equal(await t.getSweepState(id), null);
      const s: SweepState = {
        ...unknownSweepState(id),
        name: "state",
        total: 4,
        done: 1,
        failed: 1,
        eta_s: 12.5,
        coordinator: "host/1",
        rejected: { trial: 2 },
      };
      await t.putSweepState(s);
      assert.deepEqual(await t.getSweepState(id), s);
      assert.deepEqual((await t.listSweepStates()).filter((x) => x.sweep_id === id), [s]);
      const s2: SweepState = { ...s, status: "complete", done: 3, eta_s: null };
      await t.putSweepState(s2);
      const got = (await t.getSweepState(id))!;
      assert.deepEqual(got, s2);
      got.done = 99; // a copy
      assert.deepEqual(await t.getSweepState(id), s2);
      assert.deepEqual((await t.listSweepStates()).filter((x) => x.sweep_id === id), [s2]);
      const rejectedBefore = t.rejected()["sweep state"] ?? 0;
      await t.putSweepState({ ...unknownSweepState(bad), status: "bogus" } as unknown as SweepState).catch(() => {});
      assert.equal(await t.getSweepState(bad), null);
      assert.ok(!(await t.listSweepStates()).some((x) => x.sweep_id === bad));
      assert.ok((t.rejected()["sweep state"] ?? 0) > rejectedBefore, "the invalid state was not counted");
    },
  ],

  ["putPresence/listPresence: round trip, the latest heartbeat per worker, an invalid one never listed", async (c) => {
    const t = c.b.t;
    const host = `${c.kind}-presence-host`;
    const mine = async () =>
      (await t.listPresence()).filter((p) => p.host === host).sort((x, y) => x.worker.localeCompare(y.worker));
    const w1 = presenceOf(host, "w1");
    const w2 = presenceOf(host, "w2");
    await t.putPresence(w1);
    await t.putPresence(w2);
    assert.deepEqual(await mine(), [w1, w2]);
    const w1b = { ...w1, sweep_id: "s", trial_id: "t", step: 5, total_steps: 10, steps_per_s: 2.5, done: 1 };
    await t.putPresence(w1b);
    const listed = await mine();
    assert.deepEqual(listed, [w1b, w2]);
    listed[0]!.step = 99; // a copy
    assert.deepEqual(await mine(), [w1b, w2]);
    const rejectedBefore = t.rejected().presence ?? 0;
    await t.putPresence({ ...presenceOf(host, "w3"), step: "x" } as unknown as WorkerPresence).catch(() => {});
    assert.deepEqual(await mine(), [w1b, w2]);
    assert.ok((t.rejected().presence ?? 0) > rejectedBefore, "the invalid heartbeat was not counted");
  }],

  [
    "cancelSweep: queued and running trials removed and counted, state cancelled, control sent, nothing redelivered",
    async (c) => {
      const t = c.b.fast;
      const msgs = c.trials("cancel", 3);
      const sweep = msgs[0]!.sweep_id;
      for (const m of msgs) await t.publishTrial(m);
      const running = (await t.pullTrial(3000))!;
      const controls: ControlMessage[] = [];
      const other: ControlMessage[] = [];
      const ctl = t.subscribeControl((m) => (m.sweep_id === sweep ? controls : other).push(m));
      try {
        assert.equal(await t.cancelSweep(sweep), 3); // 2 queued + 1 running
        assert.equal((await t.getSweepState(sweep))?.status, "cancelled");
        await eventually("the control message", () => controls.length, (n) => n === 1);
        assert.equal(controls[0]!.action, "cancel");
        assert.equal(controls[0]!.v, WIRE_VERSION);
        await expectQueue(t, sweep, { queued: 0, running: 0, unrecorded: 0 });
        running.nak(); // its worker gives it back: purged, never delivered again
        await t.publishTrial(msgs[0]!, 1); // a copy published to the cancelled sweep is stored but not served
        assert.equal(await t.pullTrial(FAST_ACK_MS + 300), null);
        await expectQueue(t, sweep, { queued: 1, running: 0, unrecorded: 0 });
        await assert.rejects(() => t.cancelSweep(c.sweepOf("no-such-sweep")), BrokerError);
        assert.deepEqual(other, []);
      } finally {
        await ctl.stop();
      }
    },
  ],

  ["stopTrial: a stop_trial control message naming the trial, to every subscriber, for that sweep only", async (c) => {
    const t = c.b.fast;
    const [m] = c.trials("stop-trial", 1);
    const sweep = m!.sweep_id;
    const controls: ControlMessage[] = [];
    const ctl = t.subscribeControl((x) => x.sweep_id === sweep && controls.push(x));
    try {
      await t.stopTrial(sweep, m!.trial_id);
      await eventually("the stop message", () => controls.length, (n) => n === 1);
      assert.equal(controls[0]!.action, "stop_trial");
      assert.equal(controls[0]!.trial_id, m!.trial_id);
      assert.equal((await t.getSweepState(sweep))?.status ?? null, null, "stopping a trial touches no sweep state");
    } finally {
      await ctl.stop();
    }
  }],

  ["rejected(): invalid trials and results never reach the caller and are counted", async (c) => {
    const t = await c.b.client();
    try {
      await t.setup();
      assert.deepEqual(t.rejected(), {});
      const msgs = c.trials("rejected", 2);
      const sweep = msgs[0]!.sweep_id;
      // the in-memory transport refuses them at publish, a NATS client when it receives them: the same count
      await t.publishTrial({ ...msgs[0]!, claim: "not hex" }).catch(() => {});
      await t.publishTrial(msgs[1]!);
      const d = await t.pullTrial(3000);
      assert.equal(d?.trial.trial_id, msgs[1]!.trial_id);
      await d!.ack();
      assert.equal(await t.pullTrial(400), null);
      await t.publishResult({ ...failed(msgs[0]!), attempt: 0 }).catch(() => {});
      await t.publishResult(failed(msgs[1]!));
      const got: string[] = [];
      const sub = await t.consumeResults(sweep, (r) => {
        got.push(r.trial_id);
        return Promise.resolve();
      });
      await eventually("counts", () => t.rejected(), (r) => r.trial === 1 && r.result === 1 && got.length === 1);
      await sub.stop();
      assert.deepEqual(got, [msgs[1]!.trial_id]);
      const counts = t.rejected();
      counts.trial = 99; // a copy
      assert.deepEqual(t.rejected(), { trial: 1, result: 1 });
      await t.forgetSweep(sweep);
    } finally {
      await t.close();
    }
  }],
];

for (const kind of Object.keys(factories) as (keyof typeof factories)[]) {
  // one shared connection per client for the whole file: its socket ops outlive each test
  const sanitize = kind === "memory";
  const opts = { sanitizeOps: sanitize, sanitizeResources: sanitize };
  for (const [name, fn] of cases) {
    Deno.test({
      name: `transport ${kind} - ${name}`,
      ...opts,
      fn: async () => {
        const b = await brokerOf(kind);
        const sweeps = new Set<string>();
        const ctx: Ctx = {
          kind,
          b,
          trials: (label, n, secret) => {
            const msgs = trialMessages(`${kind}-${label}`, n, secret);
            sweeps.add(msgs[0]!.sweep_id);
            return msgs;
          },
          sweepOf: (label) => {
            const id = `${kind}-${label}`;
            sweeps.add(id);
            return id;
          },
        };
        try {
          await fn(ctx);
        } finally {
          for (const s of sweeps) {
            await b.t.forgetSweep(s);
            await b.fast.forgetSweep(s);
          }
        }
      },
    });
  }

  if (kind === "nats") {
    Deno.test({
      name: "transport nats - garbage on the trial subject is rejected and counted, the next trial still arrives",
      ...opts,
      fn: async () => {
        const b = await brokerOf("nats");
        const t = (await b.client()) as NatsTransport;
        const [m] = trialMessages("nats-garbage", 1);
        try {
          t.nc.publish(`ticketsweep.trial.${m!.sweep_id}`, new TextEncoder().encode("{not json"));
          t.nc.publish(`ticketsweep.trial.${m!.sweep_id}`, new TextEncoder().encode(JSON.stringify({ ...m, v: 99 })));
          await t.publishTrial(m!);
          const d = await t.pullTrial(5000);
          assert.equal(d?.trial.trial_id, m!.trial_id);
          await d!.ack();
          assert.equal(t.rejected().trial, 2);
        } finally {
          await t.forgetSweep(m!.sweep_id);
          await t.close();
        }
      },
    });
    Deno.test({
      name: "transport nats - a wait under a second (filling a pack) holds no pull on the broker for the 1 s minimum",
      ...opts,
      fn: async () => {
        const b = await brokerOf("nats");
        const t = (await b.client()) as NatsTransport;
        const spy = (await b.client()) as NatsTransport;
        const [m1, m2] = trialMessages("nats-short-wait", 2);
        try {
          await t.publishTrial(m1!);
          const d1 = (await t.pullTrial(5000))!;
          // the pull requests the worker's client makes from here on, with how long each asks the broker to wait
          const asked: number[] = [];
          const sub = spy.nc.subscribe("$JS.API.CONSUMER.MSG.NEXT.>", {
            callback: (_e, msg) => void asked.push(JSON.parse(new TextDecoder().decode(msg.data)).expires / 1e6),
          });
          await spy.nc.flush();
          assert.equal(await t.pullTrial(100), null); // nothing queued: nothing to fill the pack with
          await t.nc.flush();
          await spy.nc.flush();
          assert.ok(asked.every((ms) => ms <= 100), `pull requests of ${asked.join(", ")} ms for a 100 ms wait`);
          sub.unsubscribe();
          await t.publishTrial(m2!); // queued: a short wait takes it
          const d2 = await t.pullTrial(100);
          assert.equal(d2?.trial.trial_id, m2!.trial_id);
          await d1.ack();
          await d2!.ack();
        } finally {
          await t.forgetSweep(m1!.sweep_id);
          await t.close();
          await spy.close();
        }
      },
    });
  } else {
    Deno.test("transport memory - an invalid message is rejected at the boundary, as on the wire, and counted", async () => {
      const t = new MemoryTransport();
      const [m] = trialMessages("mem-invalid", 1);
      await assert.rejects(() => t.publishTrial({ ...m!, claim: "not hex" }), /rejected trial message: claim/);
      await assert.rejects(() => t.publishResult({ ...failed(m!), attempt: 0 }), /rejected result message: attempt/);
      assert.deepEqual(t.rejected(), { trial: 1, result: 1 });
      assert.equal(await t.pullTrial(50), null);
      await t.close();
    });
  }

  // last of the kind: closes the shared clients and stops the broker
  Deno.test({
    name: `transport ${kind} - close(): no more results are handed over, pullTrial answers null`,
    ...opts,
    fn: async () => {
      const b = await brokerOf(kind);
      try {
        const [m] = trialMessages(`${kind}-close`, 1);
        const calls: string[] = [];
        await b.t.consumeResults(m!.sweep_id, (r) => {
          calls.push(r.trial_id);
          return Promise.resolve();
        });
        await b.t.close();
        await b.t.publishResult(failed(m!)).catch(() => {}); // the in-memory broker still stores it
        await b.fast.publishResult(failed(m!)); // on NATS, the same broker
        assert.equal(await b.t.pullTrial(300), null);
        await sleep(300);
        assert.deepEqual(calls, []);
        await b.fast.forgetSweep(m!.sweep_id);
      } finally {
        brokers.delete(kind);
        await b.stop();
      }
    },
  });
}
