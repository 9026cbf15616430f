// Fault injection with a real nats-server and real worker processes: every trial ends with exactly one outcome.
import assert from "node:assert/strict";
import { connectNats } from "../src/broker/nats.ts";
import { startLocalServer } from "../src/broker/local_server.ts";
import type { ResultMessage } from "../src/broker/messages.ts";
import { spawnLocalWorkers } from "../src/coordinator/local_workers.ts";
import { runSweep, trialMessage } from "../src/coordinator/sweep.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { runWorker } from "../src/worker/worker.ts";
import { readResults, tinySpec, tinySpecText } from "./_fixtures.ts";

Deno.test("fault - a worker killed with SIGKILL mid-trial: the trial is redelivered and finished by another", async () => {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  // a short ack deadline so that the dead worker's trial comes back quickly
  const transport = await connectNats({ servers: server.url, token: server.token, ackWaitMs: 2000 });
  await transport.setup();
  const nats = { url: server.url, token: server.token };
  const first = await spawnLocalWorkers(1, nats, `${dir}/logs1`, ["--backend", "js"]);
  let second: Awaited<ReturnType<typeof spawnLocalWorkers>> | undefined;
  try {
    const text = tinySpecText("kill-worker", 1, "", 1500); // one trial of a few seconds
    const spec = parseSpec(text);
    const [trial] = expandTrials(spec);
    let killed = false;
    let killedAt = 0;
    const progress = transport.subscribeProgress(trial!.sweepId, () => {
      if (killed) return;
      killed = true;
      killedAt = performance.now();
      first.kill(0, "SIGKILL"); // it is training now
      spawnLocalWorkers(1, nats, `${dir}/logs2`, ["--backend", "js"]).then((w) => (second = w));
    });
    const outcome = await runSweep({
      spec,
      specText: text,
      specFile: "k.yaml",
      runsDir: dir,
      transport,
      log: () => {},
    });
    await progress.stop();
    assert.ok(killed, "the first worker was never seen training");
    const results = await readResults(outcome.runDir) as unknown as ResultMessage[];
    assert.equal(results.length, 1);
    assert.equal(results[0]!.status, "done");
    assert.equal(results[0]!.attempt, 2);
    // redelivered after the 2 s ack deadline the coordinator set, not a worker's default of 30 s
    assert.ok(performance.now() - killedAt < 20_000, `took ${performance.now() - killedAt} ms after the kill`);
  } finally {
    await first.stop().catch(() => {});
    await second?.stop();
    await transport.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fault - a poison trial is recorded as failed with its reason after max_attempts; the rest complete", async () => {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  const transport = await connectNats({ servers: server.url, token: server.token });
  try {
    await transport.setup();
    const trials = expandTrials(tinySpec("poison", 4));
    const msgs = trials.map((t) => trialMessage(t, 3, "test-secret"));
    // its data folder does not exist: this trial throws every time it runs
    msgs[1]!.config = {
      ...msgs[1]!.config,
      dataset: { name: "idx", path: "/nonexistent/mnist", split_seed: 0, augment: false },
    };
    for (const m of msgs) await transport.publishTrial(m);
    const results = new Map<string, ResultMessage>();
    const sub = await transport.consumeResults(msgs[0]!.sweep_id, (r) => {
      assert.ok(!results.has(r.trial_id), `second result for ${r.trial_id}`);
      results.set(r.trial_id, r);
      return Promise.resolve();
    });
    const ac = new AbortController();
    const worker = runWorker({ transport, backend: "js", signal: ac.signal });
    const deadline = Date.now() + 60_000;
    while (results.size < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await worker;
    await sub.stop();
    assert.equal(results.size, 4);
    const poison = results.get(msgs[1]!.trial_id)!;
    assert.equal(poison.status, "failed");
    assert.equal(poison.attempt, 3);
    assert.match(poison.error!, /DataError: .*train-images-idx3-ubyte .*not found; check dataset.path/);
    for (const m of [msgs[0]!, msgs[2]!, msgs[3]!]) assert.equal(results.get(m.trial_id)!.status, "done");
  } finally {
    await transport.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
