// One conformance suite for the Transport interface, run against the in-memory transport and a real nats-server.
import assert from "node:assert/strict";
import { MemoryTransport } from "../src/broker/memory.ts";
import { connectNats } from "../src/broker/nats.ts";
import { startLocalServer } from "../src/broker/local_server.ts";
import { type ResultMessage, type TrialMessage, WIRE_VERSION } from "../src/broker/messages.ts";
import type { Transport } from "../src/broker/transport.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { trialMessage } from "../src/coordinator/sweep.ts";
import { tinySpec } from "./_fixtures.ts";

function trialMessages(name: string, n: number): TrialMessage[] {
  return expandTrials(tinySpec(name, n)).map((t) => trialMessage(t, 3, "test-secret"));
}

function failed(t: TrialMessage): ResultMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    status: "failed",
    attempt: 1,
    error: "test",
    worker: { id: "w", host: "h", backend: "none", device: "none", deno: "x" },
    finished_at: new Date().toISOString(),
    claim: t.claim,
  };
}

type Factory = (ackWaitMs: number) => Promise<{ t: Transport; close: () => Promise<void> }>;

const factories: Record<string, Factory> = {
  memory: (ackWaitMs) => {
    const t = new MemoryTransport({ ackWaitMs });
    return Promise.resolve({ t, close: () => t.close() });
  },
  nats: async (ackWaitMs) => {
    const dir = await Deno.makeTempDir();
    const server = await startLocalServer(dir);
    const t = await connectNats({ servers: server.url, token: server.token, ackWaitMs });
    return {
      t,
      close: async () => {
        await t.close();
        await server.stop();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

for (const [kind, make] of Object.entries(factories)) {
  Deno.test(`transport ${kind} - each trial is delivered once and acked trials are gone`, async () => {
    const { t, close } = await make(30_000);
    try {
      await t.setup();
      const msgs = trialMessages(`conf-${kind}-a`, 4);
      for (const m of msgs) await t.publishTrial(m);
      const got: string[] = [];
      for (;;) {
        const d = await t.pullTrial(1500);
        if (!d) break;
        assert.equal(d.deliveryCount, 1);
        got.push(d.trial.trial_id);
        await d.ack();
      }
      assert.deepEqual(got.sort(), msgs.map((m) => m.trial_id).sort());
    } finally {
      await close();
    }
  });

  Deno.test(`transport ${kind} - a nak or a missed ack deadline redelivers with a higher count`, async () => {
    const { t, close } = await make(1000);
    try {
      await t.setup();
      const [m] = trialMessages(`conf-${kind}-b`, 1);
      await t.publishTrial(m!);
      const d1 = (await t.pullTrial(2000))!;
      d1.nak();
      const d2 = (await t.pullTrial(2000))!;
      assert.equal(d2.trial.trial_id, m!.trial_id);
      assert.equal(d2.deliveryCount, 2);
      // no ack: redelivered after the ack wait
      const d3 = (await t.pullTrial(5000))!;
      assert.equal(d3.deliveryCount, 3);
      await d3.ack();
      assert.equal(await t.pullTrial(1200), null);
    } finally {
      await close();
    }
  });

  Deno.test(`transport ${kind} - results are deduplicated by trial id and replayed to a late consumer`, async () => {
    const { t, close } = await make(30_000);
    try {
      await t.setup();
      const msgs = trialMessages(`conf-${kind}-c`, 3);
      const sweep = msgs[0]!.sweep_id;
      for (const m of msgs) await t.publishResult(failed(m));
      await t.publishResult(failed(msgs[0]!)); // a second worker finishing the same trial
      const seen: string[] = [];
      const sub = await t.consumeResults(sweep, (r) => {
        seen.push(r.trial_id);
        return Promise.resolve();
      });
      const deadline = Date.now() + 5000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      await sub.stop();
      assert.deepEqual(seen.sort(), msgs.map((m) => m.trial_id).sort());
    } finally {
      await close();
    }
  });
}

Deno.test("transport nats - garbage on the trial subject is rejected and counted, the next trial still arrives", async () => {
  const { t, close } = await factories.nats!(30_000);
  try {
    await t.setup();
    const nats = t as import("../src/broker/nats.ts").NatsTransport;
    const [m] = trialMessages("conf-garbage", 1);
    nats.nc.publish(`ticketsweep.trial.${m!.sweep_id}`, new TextEncoder().encode("{not json"));
    nats.nc.publish(`ticketsweep.trial.${m!.sweep_id}`, new TextEncoder().encode(JSON.stringify({ ...m, v: 99 })));
    await t.publishTrial(m!);
    const d = await t.pullTrial(5000);
    assert.equal(d?.trial.trial_id, m!.trial_id);
    await d!.ack();
    assert.equal(t.rejected().trial, 2);
  } finally {
    await close();
  }
});

Deno.test("transport memory - an invalid message is rejected at the boundary, as on the wire, and counted", async () => {
  const t = new MemoryTransport();
  const [m] = trialMessages("mem-invalid", 1);
  await assert.rejects(() => t.publishTrial({ ...m!, claim: "not hex" }), /rejected trial message: claim/);
  await assert.rejects(() => t.publishResult({ ...failed(m!), attempt: 0 }), /rejected result message: attempt/);
  assert.deepEqual(t.rejected(), { trial: 1, result: 1 });
  assert.equal(await t.pullTrial(50), null);
  await t.close();
});
