import assert from "node:assert/strict";
import { MemoryTransport } from "../src/broker/memory.ts";
import { WIRE_VERSION, type WorkerPresence } from "../src/broker/messages.ts";
import { connectNats } from "../src/broker/nats.ts";
import { startLocalServer } from "../src/broker/local_server.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { gatherStatus, renderStatus } from "../src/coordinator/status.ts";
import { parseSpec } from "../src/spec/load.ts";
import { runWorker } from "../src/worker/worker.ts";
import type { Transport } from "../src/broker/transport.ts";
import { recorded } from "./_cluster.ts";
import { handMadeRunDir, madeResult, tinySpecText } from "./_fixtures.ts";
import { expandTrials, sweepIdOf } from "../src/spec/expand.ts";
import { statusMain, statusText } from "../src/cli/status.ts";

const presence = (worker: string, at: number, trial: string | null): WorkerPresence => ({
  v: WIRE_VERSION,
  worker,
  host: "box",
  backend: "blas",
  device: "OpenBLAS 1 thread",
  deno: "2.9.6",
  sweep_id: trial ? "s-1" : null,
  trial_id: trial,
  step: 40,
  total_steps: 100,
  steps_per_s: 95,
  done: 3,
  failed: 0,
  rejected: { trial: 2 },
  updated_at: new Date(at).toISOString(),
});

Deno.test("status - counts, ETA, each worker with engine, trial and speed; a silent worker is shown as gone", async () => {
  const t = new MemoryTransport();
  const now = Date.parse("2026-11-22T12:00:00Z");
  await t.putSweepState({
    v: WIRE_VERSION,
    sweep_id: "s-1",
    name: "demo",
    status: "running",
    total: 20,
    done: 7,
    failed: 1,
    eta_s: 95,
    coordinator: "box",
    rejected: { result: 3 },
    updated_at: new Date(now - 1000).toISOString(),
  });
  await t.putPresence(presence("w1", now - 2000, "trial-a"));
  await t.putPresence(presence("w2", now - 30_000, "trial-b")); // stopped sending heartbeats
  await t.putPresence(presence("w3", now - 1000, null));
  const status = await gatherStatus(t, undefined, now);
  const list = status.sweeps;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.running, 1);
  assert.equal(list[0]!.queued, 20 - 7 - 1 - 1);
  assert.deepEqual(list[0]!.workers.map((w) => [w.worker, w.gone]), [["w1", false], ["w2", true]]);
  const text = renderStatus(status, now);
  assert.match(text, /s-1 \(demo\): running; 20 trials: 11 queued, 1 running, 7 done, 1 failed; ETA 1m35s/);
  assert.match(text, /rejected messages: 3 result/);
  assert.match(text, /box\s+w1\s+blas\s+OpenBLAS 1 thread\s+trial-a\s+40\/100\s+95\s+2s ago\s+active/);
  assert.match(text, /w2 .* gone/);
  assert.match(text, /idle workers: box\/w3 \(blas, 3 done, rejected 2 trial\)/);
  // its coordinator stopped refreshing the state a minute ago: orphaned, not live, no ETA
  const later = gatherStatus(t, undefined, now + 60_000).then((st) => renderStatus(st, now + 60_000));
  assert.match(await later, /s-1 \(demo\): orphaned \(its coordinator box stopped updating it; .*--resume runs\/s-1/);
  assert.doesNotMatch(await later, /ETA/);
  assert.equal(renderStatus({ sweeps: [], idle: [] }), "no sweeps on this broker");
});

Deno.test("status - a worker's --id or host with control or bidi bytes is printed escaped (text and --json)", async () => {
  const t = new MemoryTransport();
  const now = Date.now();
  await t.putPresence({ ...presence("w\x1b[2J\u202eevil", now - 1000, null), host: "box\x07" });
  const status = await gatherStatus(t, undefined, now);
  const text = statusText(status, false);
  assert.match(text, /box\\x07\/w\\x1b\[2J\\u\{202e\}evil/);
  const json = statusText(status, true);
  for (const out of [text, json]) for (const c of ["\x07", "\x1b", "\u202e"]) assert.ok(!out.includes(c), out);
  assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(status)), "the same JSON");
});

Deno.test("status - a run directory's trials stopped early are counted apart, as the sweep's last line does", async () => {
  const root = await Deno.makeTempDir();
  try {
    const text = tinySpecText("stops", 3);
    const trials = expandTrials(parseSpec(text));
    const t = (i: number) => ({ id: trials[i]!.id, sweepId: trials[i]!.sweepId });
    const dir = await handMadeRunDir(root, text, trials, [
      madeResult(t(0), "done", 0.5, 0.9, 0.9),
      madeResult(t(1), "stopped", 0.5, 0.8, 0.8),
      madeResult(t(2), "failed", 0, 0, 0),
    ]);
    const lines: string[] = [];
    const log = console.log;
    console.log = (l: string) => lines.push(l);
    try {
      assert.equal(await statusMain([dir]), 0);
    } finally {
      console.log = log;
    }
    // it said '2 done, 1 failed' where the sweep said '1 done, 1 stopped early, 1 failed'
    assert.match(lines[0]!, /3 trials: 0 without an outcome, 1 done, 1 stopped early, 1 failed \(from /);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Two sweeps on one broker and one worker: the second, started later and smaller, is served alongside. */
async function fairness(transport: Transport, dir: string): Promise<void> {
  const big = tinySpecText("big", 12, "", 120), small = tinySpecText("small", 4, "", 120);
  const opts = { transport, runsDir: dir, log: () => {}, specFile: "x.yaml" };
  const queued = async (text: string, n: number) => { // until the sweep's n trials are all on the queue
    const id = sweepIdOf(parseSpec(text));
    for (let i = 0; i < 600 && (await transport.queueInfo(id).catch(() => ({ queued: 0 }))).queued < n; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const a = runSweep({ ...opts, spec: parseSpec(big), specText: big });
  await queued(big, 12); // the big sweep's trials are all queued first
  const b = runSweep({ ...opts, spec: parseSpec(small), specText: small });
  await queued(small, 4); // and the small one's before any worker pulls (a slow start is not a turn missed)
  const ac = new AbortController();
  const w = runWorker({ transport, backend: "js", signal: ac.signal });
  const [ra, rb] = await Promise.all([a, b]);
  ac.abort();
  await w;
  const finishedA = (await recorded(ra.runDir)).map((r) =>
    Date.parse((r as unknown as { finished_at: string }).finished_at)
  );
  const finishedB = (await recorded(rb.runDir)).map((r) =>
    Date.parse((r as unknown as { finished_at: string }).finished_at)
  );
  assert.equal(finishedA.length, 12);
  assert.equal(finishedB.length, 4);
  // taking turns: the small sweep is done before the big one, and while both had trials queued they alternated
  // (at most one big trial between two small ones, plus one that was already running)
  const firstB = Math.min(...finishedB), lastB = Math.max(...finishedB);
  assert.ok(lastB < Math.max(...finishedA), "the small sweep waited for the big one");
  const between = finishedA.filter((t) => t > firstB && t < lastB).length;
  assert.ok(between <= 4, `${between} of the big sweep's trials ran between the small sweep's first and last`);
}

Deno.test("fairness - two sweeps on one in-memory queue take turns", async () => {
  const dir = await Deno.makeTempDir();
  const t = new MemoryTransport();
  try {
    await fairness(t, dir);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fairness - two sweeps on one nats-server take turns", async () => {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  const t = await connectNats({ servers: server.url, token: server.token });
  try {
    await fairness(t, dir);
  } finally {
    await t.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
