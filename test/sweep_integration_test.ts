// A real nats-server on a free loopback port, two worker processes, every trial recorded exactly once.
import assert from "node:assert/strict";
import { connectNats } from "../src/broker/nats.ts";
import { startLocalServer } from "../src/broker/local_server.ts";
import { spawnLocalWorkers } from "../src/coordinator/local_workers.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { parseSpec } from "../src/spec/load.ts";
import { readResults, tinySpecText } from "./_fixtures.ts";

Deno.test("integration - 2 worker processes over nats-server record 10 trials exactly once and write the front", async () => {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  const transport = await connectNats({ servers: server.url, token: server.token });
  const workers = await spawnLocalWorkers(2, { url: server.url, token: server.token }, `${dir}/logs`, [
    "--backend",
    "js",
  ]);
  try {
    // long enough trials (~0.5 s) that both workers are up before the queue drains
    const text = tinySpecText("integ", 10, "", 60);
    const outcome = await runSweep({
      spec: parseSpec(text),
      specText: text,
      specFile: "integ.yaml",
      runsDir: dir,
      transport,
      log: () => {},
    });
    assert.ok(outcome.complete);
    const results = await readResults(outcome.runDir);
    assert.equal(results.length, 10);
    assert.equal(new Set(results.map((r) => r.trial_id)).size, 10);
    assert.ok(results.every((r) => r.status === "done"));
    const pareto = JSON.parse(await Deno.readTextFile(`${outcome.runDir}/pareto.json`));
    assert.ok(pareto.fronts[0].points.length >= 1);
    assert.equal(pareto.trials.length, 10);
    const report = await Deno.readTextFile(`${outcome.runDir}/report.md`);
    assert.match(report, /## Pareto fronts/);
    // both workers took part
    const full = (await Deno.readTextFile(`${outcome.runDir}/results.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual([...new Set(full.map((r) => r.worker.id))].sort(), ["local-1", "local-2"]);
    // tickets are on disk, one per trial
    let tickets = 0;
    for await (const _ of Deno.readDir(`${outcome.runDir}/tickets`)) tickets++;
    assert.equal(tickets, 10);
  } finally {
    await workers.stop();
    await transport.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
