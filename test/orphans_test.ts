// What a coordinator killed with SIGKILL leaves running on its private broker (nats-server, its watchdog, the
// local workers) stops by itself: at once when the run directory is deleted, after the grace period otherwise; a
// --resume after that completes each trial once.
import assert from "node:assert/strict";
import { type BrokerFile, BrokerFileSchema, writeBrokerFile } from "../src/coordinator/broker_file.ts";
import { writeManifest } from "../src/coordinator/run_dir.ts";
import { Plan } from "../src/spec/plan.ts";
import { parseSpec } from "../src/spec/load.ts";
import { sweepIdOf } from "../src/spec/expand.ts";
import { processCommandLine, watchCoordinator } from "../src/util/orphans.ts";
import { readResults, ROOT, tinySpecText } from "./_fixtures.ts";
import { until } from "./_cluster.ts";
import { statusMain } from "../src/cli/status.ts";
import { sweepMain } from "../src/cli/sweep.ts";
import { type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import { watchBroker } from "../src/broker/watchdog.ts";
import { acquireRunLock } from "../src/coordinator/run_lock.ts";

const SWEEP = ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/sweep.ts`];

/**
 * The processes a run directory's broker file names that still run: the broker (its store on its command line),
 * the local workers and the watchdog (the broker's URL on theirs).
 */
async function alive(runDir: string, pids: number[], url: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of pids) {
    const cmd = await processCommandLine(pid);
    if (cmd?.includes(`${runDir}/nats/`) || cmd?.includes(` ${url} `)) out.push(pid);
  }
  return out;
}

/**
 * Starts a sweep of `n` trials (`epochs`: about a minute each by default; one local worker) on a private broker, waits until its worker is
 * training, and kills the coordinator with SIGKILL. Returns the run directory and what its broker file names.
 */
async function killedSweep(dir: string, name: string, n: number, graceS: number, epochs = 20_000) {
  const text = tinySpecText(name, n, "backend: js\n", epochs);
  await Deno.writeTextFile(`${dir}/s.yaml`, text);
  const coordinator = new Deno.Command(Deno.execPath(), {
    // a trial given back just before its broker stopped comes back after --ack-wait (the broker does not keep
    // its queue of given-back trials across a restart, only their deliveries)
    args: [...SWEEP, `${dir}/s.yaml`, "--runs", `${dir}/runs`, "--workers", "1", "--ack-wait", "2"],
    env: { NO_COLOR: "1", TICKETSWEEP_ORPHAN_GRACE: String(graceS) },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const runDir = `${dir}/runs/${sweepIdOf(parseSpec(text))}`;
  let file: BrokerFile | undefined;
  try {
    await until("the sweep's broker file with its processes", async () => {
      const raw = await Deno.readTextFile(`${runDir}/broker.json`).catch(() => "");
      try {
        file = BrokerFileSchema.parse(JSON.parse(raw));
      } catch {
        file = undefined; // not there yet, or being written
      }
      return (file?.pids?.length ?? 0) === 3;
    }, 120_000);
    // the worker is training (it writes its log file itself)
    await until("a trial running", async () => /trial \S+: start/.test(await workerLog(runDir)), 120_000);
  } finally {
    try {
      coordinator.kill("SIGKILL");
    } catch { /* it exited: the check that failed says why */ }
    await coordinator.status;
  }
  return { runDir, url: file!.url, pids: file!.pids! };
}

async function workerLog(runDir: string): Promise<string> {
  return await Deno.readTextFile(`${runDir}/logs/worker-1.log`).catch(() => "");
}

Deno.test("orphans - a SIGKILLed coordinator's run directory deleted: its private broker, watchdog and worker exit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // a grace period far longer than the test: only the deleted run directory can stop them
    const { runDir, url, pids } = await killedSweep(dir, "orphans-deleted", 2, 3600);
    assert.equal(
      (await alive(runDir, pids, url)).length,
      3,
      "the killed coordinator's broker, worker and watchdog run on",
    );
    await Deno.remove(runDir, { recursive: true });
    await until("broker, worker and watchdog gone", async () => (await alive(runDir, pids, url)).length === 0, 60_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - after the grace period the worker gives its trial back and exits, the broker stops; --resume completes each trial once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { runDir, url, pids } = await killedSweep(dir, "orphans-grace", 1, 1, 1500);
    await until("broker, worker and watchdog gone", async () => (await alive(runDir, pids, url)).length === 0, 60_000);
    // the worker said why it stopped, in its own log (its coordinator, which had its output, was gone)
    const said = await workerLog(runDir);
    assert.match(said, /worker stops: its coordinator \(pid \d+\) has been gone for 1 s/);
    // its exit line; or, when the trial finished as it stopped and the stopped broker never took the result, the
    // forced exit 10 s later (the trial, not acknowledged, comes back on the resume's broker after --ack-wait)
    assert.match(said, /worker local-1 exits: |worker exits now: its coordinator \(pid \d+\) has been gone for 1 s/);
    // the watchdog stopped the broker (SIGTERM: it wrote its store out) for want of a coordinator
    assert.match(
      await Deno.readTextFile(`${runDir}/logs/broker-watchdog.log`),
      /stopping the private nats-server \(pid \d+\): no coordinator has held the run directory for 2 s/,
    );
    const resumed = await new Deno.Command(Deno.execPath(), {
      args: [...SWEEP, "--resume", runDir, "--workers", "1", "--ack-wait", "2"],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(resumed.stdout) + new TextDecoder().decode(resumed.stderr);
    assert.equal(resumed.code, 0, text);
    const results = await readResults(runDir);
    assert.equal(results.length, 1, JSON.stringify(results));
    assert.equal(results[0]!.status, "done");
    assert.equal((await alive(runDir, pids, url)).length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - status names what a SIGKILLed coordinator left running; cancel stops it and changes nothing else", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  const log = console.log;
  try {
    const { runDir, url, pids } = await killedSweep(dir, "orphans-cancel", 2, 3600);
    console.log = (l: string) => lines.push(l);
    try {
      assert.equal(await statusMain([runDir]), 0);
      assert.equal(await sweepMain(["cancel", runDir]), 0);
    } finally {
      console.log = log;
    }
    const left = await alive(runDir, pids, url); // stopped before cancel returned
    assert.deepEqual(left, []);
    const text = lines.join("\n");
    assert.match(text, /stopped: its coordinator \(pid \d+ on .*\) is gone/);
    assert.match(
      text,
      new RegExp(`killed coordinator's private broker and local workers still run \\(pids ${pids.join(", ")}\\)`),
    );
    // the run's own grace periods, read from the processes' command lines
    assert.match(
      text,
      /otherwise they stop by themselves \(the workers 3600 s after their coordinator, the broker 7200 s /,
    );
    assert.match(
      text,
      new RegExp(`not running \\(its coordinator is gone\\): stopped .* \\(pids ${pids.join(", ")}\\)`),
    );
    assert.deepEqual(await readResults(runDir), []);
  } finally {
    console.log = log;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - status does not say that what an earlier ticketsweep left running stops by itself", async () => {
  // an earlier ticketsweep's killed coordinator: its broker runs on with no watchdog (its workers had no --orphan-grace)
  const dir = await Deno.makeTempDir();
  const text = tinySpecText("orphans-earlier", 2), spec = parseSpec(text);
  const runDir = `${dir}/${sweepIdOf(spec)}`;
  const lines: string[] = [];
  const log = console.log;
  let server: LocalServer | undefined;
  try {
    await writeManifest(runDir, {
      format: "ticketsweep-sweep",
      version: 3,
      sweep_id: sweepIdOf(spec),
      name: spec.name,
      spec_file: "s.yaml",
      spec_text: text,
      spec,
      trials: Plan.of(spec),
      created_at: new Date().toISOString(),
    });
    server = await startLocalServer(`${runDir}/nats`);
    await writeBrokerFile(runDir, {
      url: server.url,
      token: server.token,
      host: Deno.hostname(),
      pids: [server.process.pid],
    });
    console.log = (l: string) => lines.push(l);
    try {
      assert.equal(await statusMain([runDir]), 0);
    } finally {
      console.log = log;
    }
    const said = lines.join("\n");
    assert.match(
      said,
      new RegExp(
        `still run \\(pids ${server.process.pid}\\): .*started by an earlier ticketsweep and do not stop by themselves`,
      ),
    );
    assert.doesNotMatch(said, /stop by themselves \(/);
  } finally {
    console.log = log;
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - the broker's watchdog: the broker stays while its coordinator holds the run directory, stops once none has for the grace period, and at once when another one holds it", async () => {
  const dir = await Deno.makeTempDir();
  const noLog = () => {};
  let server: LocalServer | undefined;
  try {
    // its own coordinator (this process) holds the lock, then lets it go: stopped after the grace period
    server = await startLocalServer(`${dir}/nats`);
    let lock = await acquireRunLock(dir, noLog);
    const lines: string[] = [];
    const bound = new AbortController(); // a generous bound: a watchdog that never stops the broker returns "stopped"
    const timer = setTimeout(() => bound.abort(), 60_000);
    const o = {
      storeDir: `${dir}/nats`,
      runDir: dir,
      pollMs: 50,
      log: (l: string) => lines.push(l),
      signal: bound.signal,
    };
    const watching = watchBroker({ ...o, brokerPid: server.process.pid, coordinatorPid: Deno.pid, graceMs: 300 });
    await new Promise((r) => setTimeout(r, 600)); // twice the grace period, held throughout
    assert.deepEqual(lines, []);
    await lock.release();
    assert.match(await watching, /^no coordinator has held the run directory for 0.3 s$/);
    await server.process.status;
    // SIGTERM: nats-server shut down in order (it writes its store out)
    assert.match(
      await Deno.readTextFile(`${dir}/nats/nats-server.log`),
      /Initiating JetStream Shutdown[^]*Server Exiting/,
    );
    assert.match(lines[0]!, /stopping the private nats-server \(pid \d+\): no coordinator has held/);
    // another coordinator holds it (one whose broker this is not): stopped at once, whatever the grace period
    server = await startLocalServer(`${dir}/nats`);
    lock = await acquireRunLock(dir, noLog);
    const other = await watchBroker({ ...o, brokerPid: server.process.pid, coordinatorPid: 1, graceMs: 3_600_000 });
    assert.match(other, new RegExp(`^another coordinator \\(pid ${Deno.pid} on .*\\) holds the run directory$`));
    await server.process.status;
    assert.equal(
      (await Deno.readTextFile(`${dir}/nats/nats-server.log`)).match(/Server Exiting/g)?.length,
      2,
      "the second broker was stopped in order too",
    );
    await lock.release();
    clearTimeout(timer);
  } finally {
    await server?.stop(); // a check failed with it running
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - a run directory deleted or replaced while its coordinator runs: the broker and workers stay (it stops them), and stop at once when it is gone", async () => {
  const dir = await Deno.makeTempDir();
  let server: LocalServer | undefined;
  try {
    server = await startLocalServer(`${dir}/nats`);
    const lock = await acquireRunLock(dir, () => {});
    const lines: string[] = [];
    const bound = new AbortController(); // a watchdog that never stops the broker returns "stopped"
    const timer = setTimeout(() => bound.abort(), 60_000);
    let parent = Deno.pid; // the coordinator (this process, which holds the lock) runs: it is the parent of the watchdog and the worker
    const watching = watchBroker({
      brokerPid: server.process.pid,
      storeDir: `${dir}/nats`,
      runDir: dir,
      coordinatorPid: Deno.pid,
      graceMs: 3_600_000,
      pollMs: 50,
      log: (l) => lines.push(l),
      signal: bound.signal,
      ppid: () => parent,
    });
    const orphaned: string[] = [];
    const unwatch = await watchCoordinator({
      coordinatorPid: Deno.pid,
      graceMs: 3_600_000,
      runDir: `${dir}/nats`,
      onOrphaned: (why, deleted) => orphaned.push(`${why} ${deleted}`),
      pollMs: 50,
      ppid: () => parent,
    });
    // another directory at the store's path, as a stat that failed or a file system without stable inode numbers can
    // make it look: its coordinator, still running, would have lost its broker and workers (with a run directory
    // deleted for real, it waited forever for a result; it ends with its next one, and stops them)
    await Deno.rename(`${dir}/nats`, `${dir}/nats-moved`);
    await Deno.mkdir(`${dir}/nats`);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(lines, [], "broker stopped while its coordinator ran");
    assert.deepEqual(orphaned, [], "worker stopped while its coordinator ran");
    parent = 1; // the coordinator is gone
    assert.match(await watching, /^its store .* was deleted$/);
    await until("the worker told", () => Promise.resolve(orphaned.length === 1), 60_000);
    assert.match(orphaned[0]!, /was deleted true$/);
    unwatch();
    await server.process.status;
    await lock.release();
    clearTimeout(timer);
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("orphans - --fresh stops what a SIGKILLed coordinator left running before it empties the run directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { runDir, url, pids } = await killedSweep(dir, "orphans-fresh", 1, 3600, 1500);
    const fresh = await new Deno.Command(Deno.execPath(), {
      args: [...SWEEP, `${dir}/s.yaml`, "--runs", `${dir}/runs`, "--workers", "1", "--fresh"],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(fresh.stdout) + new TextDecoder().decode(fresh.stderr);
    assert.equal(fresh.code, 0, text);
    assert.match(text, new RegExp(`stopped what a killed coordinator left running \\(pids ${pids.join(", ")}\\)`));
    assert.deepEqual(await alive(runDir, pids, url), []);
    assert.equal((await readResults(runDir)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
