// Fault tolerance with a real nats-server, a coordinator process and worker processes. Every test asserts that
// every planned trial has exactly one recorded outcome.
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { connectNats, TRIAL_STREAM, workerConsumer } from "../src/broker/nats.ts";
import { startLocalServer } from "../src/broker/local_server.ts";
import { cluster, recorded, startCoordinator, until, writeSpec } from "./_cluster.ts";
import { ROOT } from "./_fixtures.ts";

/** The attempt number of every recorded result. */
async function recordedAttempts(runDir: string): Promise<number[]> {
  const text = await Deno.readTextFile(`${runDir}/results.jsonl`);
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l).attempt as number);
}

/** Exactly one outcome per planned trial, and nothing else. */
function assertOneOutcomeEach(rows: { trial_id: string }[], planned: string[]): void {
  const ids = rows.map((r) => r.trial_id);
  assert.equal(new Set(ids).size, ids.length, "a trial was recorded twice");
  assert.deepEqual([...ids].sort(), planned);
}

Deno.test("resilience - coordinator killed with SIGKILL mid-sweep, then --resume: complete, nothing twice", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "coord-kill", 12, 150);
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const first = startCoordinator(
      [spec.path, "--runs", `${c.dir}/runs`, "--ack-wait", "3"],
      c.server,
      `${c.dir}/coord1.log`,
    );
    await until("3 results", async () => (await recorded(runDir)).length >= 3);
    first.kill("SIGKILL");
    await first.status;
    const atKill = (await recorded(runDir)).length;
    // the workers go on; their results wait in the results stream
    await new Promise((r) => setTimeout(r, 2500));
    const second = startCoordinator(["--resume", runDir, "--ack-wait", "3"], c.server, `${c.dir}/coord2.log`);
    const status = await second.status;
    assert.equal(status.code, 0, await Deno.readTextFile(`${c.dir}/coord2.log`));
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(rows.every((r) => r.status === "done"));
    assert.ok(atKill < 12, "the coordinator was killed before the end");
    assert.match(await Deno.readTextFile(`${c.dir}/coord2.log`), /resuming .*: \d+\/12 trials already recorded/);
  } finally {
    await c.close();
  }
});

Deno.test("resilience - nats-server restarted (file store) mid-sweep: the sweep completes", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "broker-restart", 12, 150);
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const coord = startCoordinator(
      [spec.path, "--runs", `${c.dir}/runs`, "--ack-wait", "3"],
      c.server,
      `${c.dir}/coord.log`,
    );
    await until("3 results", async () => (await recorded(runDir)).length >= 3);
    const { port, token } = c.server;
    await c.server.stop();
    await new Promise((r) => setTimeout(r, 1500));
    c.server = await startLocalServer(`${c.dir}/nats`, { port, token });
    const status = await coord.status;
    assert.equal(status.code, 0, await Deno.readTextFile(`${c.dir}/coord.log`));
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(rows.every((r) => r.status === "done"));
    assert.match(await Deno.readTextFile(`${c.dir}/coord.log`), /nats: (disconnect|reconnect)/);
  } finally {
    await c.close();
  }
});

Deno.test("resilience - garbage, truncated JSON, a wrong version and 2 MB on the trial and result subjects", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "garbage", 8, 100);
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const coord = startCoordinator([spec.path, "--runs", `${c.dir}/runs`], c.server, `${c.dir}/coord.log`);
    await until("the sweep's queue", async () => (await recorded(runDir)).length >= 1);
    const raw = await connect({ servers: c.server.url, token: c.server.token });
    const bad = [
      new Uint8Array([0xff, 0x00, 0x13, 0x37]),
      new TextEncoder().encode('{"v":1,"sweep_id":"x","trial_'),
      new TextEncoder().encode(JSON.stringify({ v: 99, sweep_id: spec.sweepId, trial_id: "t", status: "done" })),
    ];
    for (const subject of [`ticketsweep.trial.${spec.sweepId}`, `ticketsweep.result.${spec.sweepId}`]) {
      for (const b of bad) raw.publish(subject, b);
      // 2 MB: over the broker's 1 MiB payload limit, refused before it reaches anyone
      assert.throws(() => raw.publish(subject, new Uint8Array(2 * 1024 * 1024)), /payload|MAX_PAYLOAD|exceeded/i);
    }
    await raw.flush();
    await raw.close();
    const status = await coord.status;
    assert.equal(status.code, 0);
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(rows.every((r) => r.status === "done"));
    const log = await Deno.readTextFile(`${c.dir}/coord.log`);
    assert.equal(log.match(/rejected result message/g)?.length, 3, log);
    // the workers rejected the trial-subject garbage and said so in their presence (visible in status)
    const t = await connectNats({ servers: c.server.url, token: c.server.token });
    await until("workers' reject counts", async () => {
      const total = (await t.listPresence()).reduce((s, p) => s + (p.rejected["trial"] ?? 0), 0);
      return total === 3;
    }, 15_000);
    const state = await t.getSweepState(spec.sweepId);
    assert.equal(state?.status, "complete");
    assert.equal(state?.rejected["result"], 3);
    await t.close();
    // and they are still up, serving
    for (const w of c.workers) assert.equal(w.count, 2);
  } finally {
    await c.close();
  }
});

Deno.test("resilience - cancel: queued trials gone, running trials stopped, every trial one outcome, status cancelled", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "cancel-me", 10, 5000); // about 20 s a trial
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const coord = startCoordinator([spec.path, "--runs", `${c.dir}/runs`], c.server, `${c.dir}/coord.log`);
    const t = await connectNats({ servers: c.server.url, token: c.server.token });
    await until(
      "two trials running",
      async () =>
        (await t.listPresence()).filter((p) => p.sweep_id === spec.sweepId && p.trial_id && p.step > 0).length === 2,
    );
    const t0 = Date.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}src/cli/sweep.ts`, "cancel", spec.sweepId, "--nats", c.server.url],
      env: { NATS_TOKEN: c.server.token },
      stdout: "piped",
    }).output();
    assert.equal(out.code, 0);
    assert.match(new TextDecoder().decode(out.stdout), /cancelled .*: 10 unfinished trials removed from the queue/);
    assert.equal((await coord.status).code, 0);
    // the running trials stop within seconds: the workers are idle again
    await until(
      "workers idle",
      async () => (await t.listPresence()).filter((p) => p.trial_id !== null).length === 0,
      10_000,
    );
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(
      rows.every((r) => r.status === "failed" && r.failure === "cancelled" && /^cancelled/.test(r.error ?? "")),
    );
    assert.equal((await t.getSweepState(spec.sweepId))?.status, "cancelled");
    const info = await t.nc.request(`$JS.API.CONSUMER.INFO.${TRIAL_STREAM}.${workerConsumer(spec.sweepId)}`);
    const consumer = JSON.parse(new TextDecoder().decode(info.data));
    assert.equal(consumer.num_pending, 0);
    assert.equal(consumer.num_ack_pending, 0);
    for (const w of c.workers) await w.stop(); // their logs are complete once they exit
    await new Promise((r) => setTimeout(r, 500));
    const logs = await Promise.all([1, 2].map((i) => Deno.readTextFile(`${c.dir}/logs/worker-${i}.log`)));
    assert.equal(logs.join("").match(/stopped \(sweep cancelled\)/g)?.length, 2, logs.join("\n----\n"));
    await t.close();
  } finally {
    await c.close();
  }
});

Deno.test("resilience - chaos: 60 trials while a random worker is SIGKILLed and replaced every 2 s", async () => {
  const c = await cluster(3);
  try {
    const spec = await writeSpec(c.dir, "chaos", 60, 60, "max_attempts: 10\n");
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const coord = startCoordinator(
      [spec.path, "--runs", `${c.dir}/runs`, "--ack-wait", "2"],
      c.server,
      `${c.dir}/coord.log`,
    );
    let finished = false;
    let kills = 0;
    const chaos = (async () => {
      let alive = c.workers.flatMap((w) => Array.from({ length: w.count }, (_, i) => ({ w, i })));
      while (!finished) {
        await new Promise((r) => setTimeout(r, 2000));
        if (finished || alive.length === 0) break;
        const k = Math.floor(Math.random() * alive.length);
        const victim = alive[k]!;
        victim.w.kill(victim.i, "SIGKILL");
        kills++;
        alive.splice(k, 1);
        const fresh = await c.addWorkers(1);
        alive = [...alive, { w: fresh, i: 0 }];
      }
    })();
    const status = await coord.status;
    finished = true;
    await chaos;
    assert.equal(status.code, 0, await Deno.readTextFile(`${c.dir}/coord.log`));
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(kills >= 2, `only ${kills} kills`);
    const failed = rows.filter((r) => r.status !== "done");
    assert.deepEqual(failed, [], "no trial should run out of its 10 attempts");
  } finally {
    await c.close();
  }
});

Deno.test("resilience - a worker training a pack of 3 is SIGKILLed: its trials are redelivered, each recorded once", async () => {
  const c = await cluster(0);
  try {
    const spec = await writeSpec(c.dir, "pack-kill", 6, 600);
    const runDir = `${c.dir}/runs/${spec.sweepId}`;
    const packer = await c.addWorkers(1, ["--pack", "3"]);
    const coord = startCoordinator(
      [spec.path, "--runs", `${c.dir}/runs`, "--ack-wait", "2"],
      c.server,
      `${c.dir}/coord.log`,
    );
    const t = await connectNats({ servers: c.server.url, token: c.server.token });
    await until(
      "a pack of 3 training",
      async () => (await t.listPresence()).some((p) => p.packed === 2 && p.step > 0),
    );
    await t.close();
    packer.kill(0, "SIGKILL");
    await c.addWorkers(1, ["--pack", "3"]);
    const status = await coord.status;
    assert.equal(status.code, 0, await Deno.readTextFile(`${c.dir}/coord.log`));
    const rows = await recorded(runDir);
    assertOneOutcomeEach(rows, spec.trialIds);
    assert.ok(rows.every((r) => r.status === "done"));
    assert.ok((await recordedAttempts(runDir)).some((a) => a >= 2), "the killed pack's trials ran again");
  } finally {
    await c.close();
  }
});
