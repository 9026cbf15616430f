// The generated least-privilege broker configuration, with a real nats-server.
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats, RESULT_STREAM, TRIAL_STREAM } from "../src/broker/nats.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { parseSpec } from "../src/spec/load.ts";
import { sweepIdOf } from "../src/spec/expand.ts";
import { runWorker } from "../src/worker/worker.ts";
import { forgedResult, tinySpecText } from "./_fixtures.ts";
import { rawConnect, recorded, rolesBroker, until } from "./_cluster.ts";

/** A nats-server on the configuration `deno task broker-config` generates (password "coord-secret"). */
const generatedBroker = (workerPassword: string | string[]) => rolesBroker("coord-secret", workerPassword);

Deno.test("auth - the generated config refuses anonymous clients; a worker cannot delete streams, publish trials or forge results", async () => {
  const { dir, port, server } = await generatedBroker("worker-secret");
  const url = server.url;
  const coord = await connectNats({ servers: url, user: "coordinator", pass: "coord-secret" });
  const worker = await connectNats({ servers: url, user: "worker", pass: "worker-secret" });
  try {
    // no credentials, or a wrong password: refused (spoken in the raw protocol, to see the server's own answer)
    assert.match((await rawConnect(port, {})).answer, /-ERR 'Authorization Violation'/);
    assert.match((await rawConnect(port, { user: "worker", pass: "nope" })).answer, /-ERR 'Authorization Violation'/);
    assert.match((await rawConnect(port, { user: "worker", pass: "worker-secret" })).answer, /PONG/);

    const text = tinySpecText("auth", 4, "", 2);
    const spec = parseSpec(text);
    const sweepId = sweepIdOf(spec);
    const sweep = runSweep({ spec, specText: text, specFile: "a.yaml", runsDir: dir, transport: coord, log: () => {} });
    await until("the sweep's queue", async () => (await coord.getSweepState(sweepId))?.status === "running");

    // a worker cannot delete or purge the streams
    const wjsm = await jetstreamManager(worker.nc);
    await assert.rejects(() => wjsm.streams.delete(TRIAL_STREAM), /permission|timeout/i);
    await assert.rejects(() => wjsm.streams.purge(RESULT_STREAM), /permission|timeout/i);
    // nor publish trials
    await assert.rejects(
      () => jetstream(worker.nc).publish(`ticketsweep.trial.${sweepId}`, new Uint8Array([1]), { timeout: 1500 }),
      /permission|timeout|no responders/i,
    );
    // a result without the trial's claim is refused by the coordinator
    const [trialId] = (await import("../src/spec/expand.ts")).expandTrials(spec).map((t) => t.id);
    await jetstream(worker.nc).publish(
      `ticketsweep.result.${sweepId}`,
      new TextEncoder().encode(JSON.stringify(forgedResult(sweepId, trialId!))),
    );
    // a worker with the worker role does its job
    const ac = new AbortController();
    const w = runWorker({ transport: worker, backend: "js", signal: ac.signal, presenceMs: 500 });
    const outcome = await sweep;
    ac.abort();
    await w;
    assert.ok(outcome.complete);
    const rows = await recorded(outcome.runDir);
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => r.status === "done"), "the forged failure must not be recorded");
    assert.equal((await coord.getSweepState(sweepId))?.rejected["result without claim"], 1);
    // the streams survived the attempts
    const cjsm = await jetstreamManager(coord.nc);
    assert.equal((await cjsm.streams.info(TRIAL_STREAM)).config.name, TRIAL_STREAM);
    // and the worker's presence went through
    assert.ok((await coord.listPresence()).some((p) => p.backend === "js"));
  } finally {
    await worker.close();
    await coord.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth - each user receives replies on its own inbox prefix only: no worker sees the trials, claims or answers of another client", async () => {
  const { dir, server, cfg } = await generatedBroker(["w1-secret", "w2-secret"]);
  assert.deepEqual(cfg.workers.map((w) => w.user), ["worker-1", "worker-2"]);
  const coord = await connectNats({ servers: server.url, user: "coordinator", pass: "coord-secret" });
  const w1 = await connectNats({ servers: server.url, user: "worker-1", pass: "w1-secret" });
  try {
    await coord.setup();
    // its own inbox works: requests (stream info, sweep states) get their answers
    await w1.setup();
    assert.deepEqual(await w1.listSweepStates(), []);
    /** What the server answers to a subscription: a permission error, or nothing within 2 s. */
    const trySubscribe = (subject: string) =>
      new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve("allowed"), 2000);
        w1.nc.subscribe(subject, {
          callback: (err) => {
            if (!err) return;
            clearTimeout(timer);
            resolve(String(err));
          },
        });
      });
    for (const subject of ["_INBOX.>", "_INBOX_worker-2.>", "_INBOX_coordinator.>", ">"]) {
      assert.match(await trySubscribe(subject), /permission/i, subject);
    }
  } finally {
    await w1.close();
    await coord.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
