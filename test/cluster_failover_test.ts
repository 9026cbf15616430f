// A clustered broker with real processes: three nats-server nodes on loopback (the configuration
// `deno task broker-config --cluster 3` writes), a coordinator and workers given all three URLs. The node that leads
// the trial stream is SIGKILLed mid-sweep: every trial is still recorded exactly once; restarted, the node catches up.
import assert from "node:assert/strict";
import { type JetStreamManager, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { clusterBrokerConfig } from "../src/broker/config.ts";
import { freePort, type LocalServer, natsServerBinary, startLocalServer } from "../src/broker/local_server.ts";
import { connectNats, replicasFor, RESULT_STREAM, serverList, SWEEP_BUCKET, TRIAL_STREAM } from "../src/broker/nats.ts";
import { spawnLocalWorkers } from "../src/coordinator/local_workers.ts";
import { brokerConfigMain } from "../src/cli/broker_config.ts";
import { natsUrls } from "../src/cli/common.ts";
import { recorded, startCoordinator, until, writeSpec } from "./_cluster.ts";

const TRIALS = 16;

/**
 * Three nodes on free loopback ports (the first `started` of them running); each logs to a file and serves its
 * JetStream view on a monitoring port.
 */
async function threeNodes(dir: string, started = 3) {
  const nodes = [1, 2, 3].map((i) => ({
    name: `ts-${i}`,
    host: "127.0.0.1",
    port: freePort(),
    routePort: freePort(),
    storeDir: `${dir}/node-${i}`,
    http: freePort(),
  }));
  const cfg = clusterBrokerConfig({
    listen: "127.0.0.1",
    nodes,
    routePassword: "route-secret",
    coordinatorPassword: "coord-secret",
    workerPassword: "worker-secret",
  });
  const files = nodes.map((n, i) => {
    const file = `${dir}/${n.name}.conf`;
    Deno.writeTextFileSync(file, `${cfg.confs[i]}\nlog_file: "${dir}/${n.name}.log"\nhttp: "127.0.0.1:${n.http}"\n`);
    return file;
  });
  const start = (i: number) =>
    startLocalServer(nodes[i]!.storeDir, { port: nodes[i]!.port, token: "", configFile: files[i]! });
  const servers: (LocalServer | null)[] = [];
  for (let i = 0; i < nodes.length; i++) servers.push(i < started ? await start(i) : null);
  return { nodes, cfg, servers, start };
}

/** One node's own copy of a stream (its JetStream monitoring endpoint), or null when it holds none. */
async function localStream(httpPort: number, stream: string) {
  const r = await fetch(`http://127.0.0.1:${httpPort}/jsz?streams=true`, { signal: AbortSignal.timeout(5000) });
  const jsz = await r.json() as {
    account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[];
  };
  return jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream) ?? null;
}

/** A stream's info, or null when the request failed (no leader yet, a dead node, a request slower than 1 s). */
async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  return await jsm.streams.info(name).catch(() => null);
}

/** A stream's info with its leader, asked until a request succeeds. */
async function ledStream(jsm: JetStreamManager, name: string): Promise<StreamInfo> {
  let info: StreamInfo | null = null;
  await until(`${name} with a leader`, async () => !!(info = await streamInfo(jsm, name))?.cluster?.leader, 30_000);
  return info!;
}

Deno.test("cluster - SIGKILL of the trial stream's leader mid-sweep: every trial recorded once; the node catches up", async () => {
  const dir = await Deno.makeTempDir();
  const t0 = performance.now();
  const c = await threeNodes(dir);
  const urls = c.cfg.urls.join(",");
  const monitor = await connectNats({ servers: c.cfg.urls, user: "coordinator", pass: "coord-secret" });
  // short requests: a request to a node that has just died fails within a second, and the next one goes elsewhere
  const jsm = await jetstreamManager(monitor.nc, { timeout: 1000 });
  const spec = await writeSpec(dir, "cluster", TRIALS, 100); // about 0.5 s a trial
  const workers = await spawnLocalWorkers(2, { url: urls, token: "" }, `${dir}/logs`, [
    "--backend",
    "js",
    "--user",
    "worker",
    "--password",
    "worker-secret",
  ]);
  const coordLog = `${dir}/coordinator.log`;
  const coordinator = startCoordinator(
    [spec.path, "--runs", `${dir}/runs`, "--user", "coordinator", "--password", "coord-secret", "--ack-wait", "5"],
    { url: urls, token: "" },
    coordLog,
  );
  const runDir = `${dir}/runs/${spec.sweepId}`;
  const log = async () => `${await Deno.readTextFile(coordLog).catch(() => "")}`;
  try {
    // the streams and buckets are replicated on all three nodes
    for (const name of [TRIAL_STREAM, RESULT_STREAM, `KV_${SWEEP_BUCKET}`]) {
      assert.equal((await ledStream(jsm, name)).config.num_replicas, 3, name);
      await until(`${name}: a leader and two followers`, async () => {
        const cluster = (await streamInfo(jsm, name))?.cluster;
        return !!cluster?.leader && cluster.replicas?.length === 2;
      }, 15_000);
    }
    await until("a few recorded trials", async () => (await recorded(runDir)).length >= 3, 30_000);
    const before = (await recorded(runDir)).length;
    assert.ok(before < TRIALS, "the sweep ended before the kill: make its trials longer");
    const leader = (await ledStream(jsm, TRIAL_STREAM)).cluster!.leader!;
    const killed = c.nodes.findIndex((n) => n.name === leader);
    assert.ok(killed >= 0, `leader ${leader}`);
    const killedAt = performance.now();
    c.servers[killed]!.process.kill("SIGKILL");
    await c.servers[killed]!.process.status;
    c.servers[killed] = null;

    // both watched at once: a result may be recorded before the trial stream has its new leader
    let newLeader = "";
    const [electedMs, resumedMs] = await Promise.all([
      until("a new leader of the trial stream", async () => {
        newLeader = (await streamInfo(jsm, TRIAL_STREAM))?.cluster?.leader ?? "";
        return newLeader !== "" && newLeader !== leader;
      }, 30_000).then(() => performance.now() - killedAt),
      until("a trial recorded after the kill", async () => (await recorded(runDir)).length > before, 45_000)
        .then(() => performance.now() - killedAt),
    ]);

    const timer = setTimeout(() => coordinator.kill("SIGKILL"), 60_000);
    const st = await coordinator.status;
    clearTimeout(timer);
    const doneMs = performance.now() - killedAt;
    assert.equal(st.code, 0, await log());
    const rows = await recorded(runDir);
    const ids = rows.map((r) => r.trial_id);
    assert.equal(new Set(ids).size, ids.length, "a trial was recorded twice");
    assert.deepEqual([...ids].sort(), spec.trialIds);
    assert.ok(rows.every((r) => r.status === "done"), JSON.stringify(rows.map((r) => [r.status, r.error])));
    // nothing was lost and found again by the reconciliation: the cluster kept every queued trial
    assert.doesNotMatch(await log(), /published again/);

    // the killed node comes back and catches up: a current replica with every stored result in its own store
    const restartedAt = performance.now();
    c.servers[killed] = await c.start(killed);
    const results = (await ledStream(jsm, RESULT_STREAM)).state;
    assert.ok(results.messages >= TRIALS, `${results.messages} results stored`);
    // every node is up again: 5 s requests (the 1 s ones skip a dead node fast; on a loaded machine a live leader can
    // be slower, and a check whose requests all time out never passes), its copy compared with the stream as it is
    // now (a late duplicate result of a trial redelivered after the failover may still be stored), a bound far
    // above the ~2 s it takes, and what was seen last when it is reached
    const patient = await jetstreamManager(monitor.nc, { timeout: 5000 });
    let seen = "no answer yet";
    await until("the restarted node's replicas current", async () => {
      const behind: string[] = [];
      let now: StreamInfo["state"] | undefined;
      for (const name of [TRIAL_STREAM, RESULT_STREAM, `KV_${SWEEP_BUCKET}`]) {
        const info = await streamInfo(patient, name);
        if (name === RESULT_STREAM) now = info?.state;
        const replica = info?.cluster?.replicas?.find((r) => r.name === leader);
        if (info?.cluster?.leader === leader) continue; // it leads again: current by definition
        if (!replica?.current || (replica.lag ?? 0) > 0) {
          behind.push(`${name}: ${info ? JSON.stringify(replica ?? "not a replica yet") : "no stream info"}`);
        }
      }
      const local = await localStream(c.nodes[killed]!.http, RESULT_STREAM).catch(() => null);
      if (!now || local?.state.last_seq !== now.last_seq || local.state.messages !== now.messages) {
        behind.push(
          `its own ${RESULT_STREAM}: ${local?.state.messages} messages to seq ${local?.state.last_seq}, the ` +
            `leader's ${now?.messages} to ${now?.last_seq}`,
        );
      }
      seen = behind.join("; ");
      return behind.length === 0;
    }, 120_000).catch(async (e) => {
      const nodeLog = await Deno.readTextFile(`${dir}/${leader}.log`).catch(() => "");
      throw new Error(`${(e as Error).message}; last seen: ${seen}\n--- ${leader} ---\n${nodeLog.slice(-4000)}`);
    });
    const caughtUpMs = performance.now() - restartedAt;
    console.log(
      `cluster: killed ${leader} (trial stream leader) after ${before}/${TRIALS} trials; new leader ${newLeader} in ` +
        `${electedMs.toFixed(0)} ms, next trial recorded ${resumedMs.toFixed(0)} ms after the kill, sweep done ` +
        `${doneMs.toFixed(0)} ms after it; restarted node caught up in ${caughtUpMs.toFixed(0)} ms; test ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } catch (e) {
    // what the processes saw, for a failure in CI
    const workerLogs = [1, 2].map((i) => Deno.readTextFileSync(`${dir}/logs/worker-${i}.log`)).join("");
    throw new Error(`${(e as Error).message}\n--- coordinator ---\n${await log()}--- workers ---\n${workerLogs}`, {
      cause: e,
    });
  } finally {
    try {
      coordinator.kill("SIGKILL");
    } catch { /* it exited */ }
    await coordinator.status.catch(() => {});
    await workers.stop().catch(() => {});
    await monitor.close().catch(() => {});
    for (const s of c.servers) await s?.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("cluster - a coordinator that starts while the third node is still joining waits for it, then replicates", async () => {
  const dir = await Deno.makeTempDir();
  const c = await threeNodes(dir, 2);
  const logs: string[] = [];
  const t = await connectNats({
    servers: c.cfg.urls,
    user: "coordinator",
    pass: "coord-secret",
    replicas: 3,
    log: (l) => logs.push(l),
  });
  try {
    // two of three nodes elect a meta leader, but cannot hold 3 replicas until the third joins, 2 s later
    await until("a JetStream meta leader", async () => {
      const r = await fetch(`http://127.0.0.1:${c.nodes[0]!.http}/jsz`, { signal: AbortSignal.timeout(5000) });
      return !!((await r.json()) as { meta_cluster?: { leader?: string } }).meta_cluster?.leader;
    }, 30_000);
    const third = new Promise((r) => setTimeout(r, 2000)).then(async () => (c.servers[2] = await c.start(2)));
    await t.setup(); // it failed at once: "cannot keep 3 replicas ... start all of its nodes"
    await third;
    assert.match(logs.join("\n"), /waiting up to 30 s for the cluster to place 3 replicas of TICKETSWEEP_TRIALS/);
  } finally {
    await t.close().catch(() => {});
    for (const s of c.servers) await s?.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("cluster - broker-config --cluster 3 writes three valid node configurations and env files listing every node", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = console.log;
    console.log = () => {};
    try {
      const args = ["--out", dir, "--cluster", "3", "--hosts", "h1,h2,h1", "--port", "4300", "--route-port", "6300"];
      assert.equal(await brokerConfigMain(args), 0);
    } finally {
      console.log = log;
    }
    const confs = [1, 2, 3].map((i) => Deno.readTextFileSync(`${dir}/node-${i}.conf`));
    for (const [i, conf] of confs.entries()) {
      assert.equal(Deno.statSync(`${dir}/node-${i + 1}.conf`).mode! & 0o777, 0o600);
      const check = await new Deno.Command((await natsServerBinary())!, {
        args: ["-t", "-c", `${dir}/node-${i + 1}.conf`],
      }).output();
      assert.ok(check.success, new TextDecoder().decode(check.stderr));
      assert.match(conf, new RegExp(`server_name: "node-${i + 1}"`));
      assert.match(conf, /cluster \{\n {2}name: "ticketsweep"/);
      assert.match(conf, /user: "coordinator"[\s\S]*user: "worker"/);
    }
    // two nodes on h1: each its own ports; every node routes to the two others, not to itself
    assert.match(confs[2]!, /port: 4301\n/);
    assert.match(confs[0]!, /@h2:6300"\n\s+"nats-route:\/\/route:\w+@h1:6301"/);
    assert.doesNotMatch(confs[0]!, /@h1:6300"/);
    for (const who of ["coordinator", "worker"]) {
      const env = Deno.readTextFileSync(`${dir}/${who}.env`);
      const url = /^NATS_URL=(.*)$/m.exec(env)![1]!;
      assert.deepEqual(natsUrls(url), ["nats://h1:4300", "nats://h2:4300", "nats://h1:4301"]);
      assert.match(env, new RegExp(`NATS_USER=${who}\n`));
    }
    await assert.rejects(() => brokerConfigMain(["--out", dir, "--cluster", "3", "--hosts", "a,b"]), /3 hosts/);
    await assert.rejects(() => brokerConfigMain(["--out", dir, "--cluster", "2"]), /3 nodes or more/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cluster - --nats takes a comma-separated URL list; 3 replicas exactly when the server names a cluster", () => {
  assert.deepEqual(natsUrls("nats://a:4222, nats://b:4222,tls://c:4223"), [
    "nats://a:4222",
    "nats://b:4222",
    "tls://c:4223",
  ]);
  assert.deepEqual(natsUrls("localhost:4222"), ["localhost:4222"]);
  for (const bad of ["nats://a:4222,", "http://a:80", "nats://a b:4222", "nats://a:port"]) {
    assert.throws(() => natsUrls(bad), /is not a broker URL/, bad);
  }
  assert.deepEqual(serverList("nats://a:1,nats://b:2"), ["nats://a:1", "nats://b:2"]);
  assert.deepEqual(serverList(["nats://a:1"]), ["nats://a:1"]);
  assert.equal(replicasFor({ cluster: "ticketsweep" }), 3);
  assert.equal(replicasFor({}), 1);
  assert.equal(replicasFor(undefined), 1);
  assert.equal(replicasFor({ cluster: "ticketsweep" }, 5), 5);
});
