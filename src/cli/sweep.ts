import { connectNats } from "../broker/nats.ts";
import { natsServerBinary, spawnBrokerWatchdog, startLocalServer } from "../broker/local_server.ts";
import { MemoryTransport } from "../broker/memory.ts";
import type { Transport } from "../broker/transport.ts";
import { orphanWatchArgs, spawnLocalWorkers } from "../coordinator/local_workers.ts";
import { ORPHAN_GRACE_ENV, orphanGraceS } from "../util/orphans.ts";
import { resumeSweep, runSweep, type SweepOutcome } from "../coordinator/sweep.ts";
import { ProgressDisplay } from "../coordinator/progress.ts";
import { frontTables } from "../report/markdown.ts";
import { loadSpec } from "../spec/load.ts";
import { sweepIdOf } from "../spec/expand.ts";
import { type Backend, BACKENDS } from "../spec/schema.ts";
import { TicketsweepError } from "../util/errors.ts";
import { runWorker } from "../worker/worker.ts";
import {
  intFlag,
  logLine,
  NATS_FLAGS,
  NATS_FLAGS_HELP,
  natsFromFlags,
  packFlag,
  parseCli,
  quietGpuProbe,
  shown,
  shownPath,
} from "./common.ts";
import {
  inspectBrokerFile,
  readBrokerFile,
  removeBrokerFile,
  stopOrphans,
  writeBrokerFile,
} from "../coordinator/broker_file.ts";
import { acquireRunLock, inspectRunLock, LOCK_FILE, type RunLock } from "../coordinator/run_lock.ts";
import { readManifest } from "../coordinator/run_dir.ts";
import { brokenResultsLink, dryRun, notADirectory } from "./dry_run.ts";
import { maskedUrls, withoutCredentials } from "../util/redact.ts";

/** The most local worker processes `--workers` starts (each a process of its own). */
export const MAX_LOCAL_WORKERS = 256;

export const SWEEP_USAGE = `Usage: deno task sweep SPEC.yaml [options]
       deno task sweep --resume runs/SWEEP_ID [options]
       deno task sweep cancel NAME|SWEEP_ID|runs/SWEEP_ID [--nats URL ...]

Expands a sweep spec into trials, runs them on workers, records every outcome in runs/SWEEP_ID/results.jsonl
and writes report.html, report.md, fronts.json, trials.csv and pareto.json. Running the same spec again
continues its run directory. Progress: a live block on a terminal, timestamped lines otherwise.

Where the trials run:
  --nats URL      use this broker (or NATS_URL); local workers only with --workers
  (no URL)        with nats-server on PATH: a private broker on a free loopback port and --workers local
                  worker processes; without it: in-process, over the in-memory transport, one worker
                  (--workers is ignored)

cancel removes the sweep's queued trials, stops its running ones within seconds (workers drop them), and
records every unfinished trial as failed: cancelled; the sweep's status becomes cancelled (a finished sweep is
left as it is). NAME (the spec's name:) works when one sweep has it (or only one of those runs). It finds
the broker from --nats, or from runs/SWEEP_ID/broker.json when the sweep runs on a private broker; a run
directory no coordinator holds is not running: nothing to cancel (exit 0), but the private broker and local
workers a killed coordinator left running there are stopped.

Options:
  --workers N     local worker processes, 0 to ${MAX_LOCAL_WORKERS} (default: one per core, ${navigator.hardwareConcurrency} here)
  --ack-wait S    seconds a trial may go without a heartbeat before it is redelivered (default 30)
  --backend B     override the spec's backend for local workers: ${BACKENDS.join("|")}
  --pack K|auto   local workers train up to K (1-1024) compatible trials together (default auto; see README)
  --runs DIR      where run directories go (default runs)
  --resume DIR    continue a sweep from its run directory, with the spec it keeps (spec.yaml): give no
                  spec file with it
  --fresh         delete the spec's run directory first and start over (the sweep's queued trials and
                  stored results on the broker are removed too)
  --dry-run       print the trials the spec expands to, their compute estimate and the problems found
                  (trials this machine would refuse; what a run would find wrong in the run directory), then
                  exit (1 when a problem was found): nothing starts, nothing is written
  --retry-failed  run the failed trials again (errors, refused, gave up, cancelled), keeping the finished
                  ones; their failed outcomes move to results.rejected.jsonl
  --reconcile S   seconds between checks that every trial without an outcome is queued, running or
                  answered on the broker; one found nowhere twice in a row is published again (default 10)
  -h, --help      this text
Broker options (for --nats):
${NATS_FLAGS_HELP}`;

/** `deno task sweep`. */
export async function sweepMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    ...NATS_FLAGS,
    workers: { type: "string" },
    backend: { type: "string" },
    pack: { type: "string" },
    runs: { type: "string" },
    resume: { type: "string" },
    fresh: { type: "boolean" },
    "retry-failed": { type: "boolean" },
    "dry-run": { type: "boolean" },
    "ack-wait": { type: "string" },
    reconcile: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, SWEEP_USAGE);
  if (positionals[0] === "cancel") return await cancelMain(positionals.slice(1), values);
  // the broker keeps it in nanoseconds: 10^11 s overflows and JetStream answers "invalid JSON"
  const ackWaitMs = 1000 * intFlag("ack-wait", values["ack-wait"], 30, { min: 1, max: 86_400, unit: "seconds" });
  // each local worker is a process of its own (~100 MB): more than this is a typo, or a job for remote workers
  const workersFlag = values.workers === undefined
    ? undefined
    : intFlag("workers", values.workers, 1, { max: MAX_LOCAL_WORKERS, unit: "local worker processes" });
  const reconcileMs = 1000 * intFlag("reconcile", values.reconcile, 10, { min: 1, max: 86_400, unit: "seconds" });
  const pack = packFlag(values.pack);
  // how long what a killed coordinator leaves running goes on (docs/exactly-once.md, "The pieces": leftovers)
  const orphanGrace = orphanGraceS(Deno.env.get(ORPHAN_GRACE_ENV));
  // a bad URL is refused before the spec is read, with --dry-run too
  const nats = natsFromFlags(values);
  const resume = typeof values.resume === "string" ? values.resume.replace(/\/+$/, "") : undefined;
  if (resume !== undefined && positionals.length) {
    // the run directory holds its own spec (spec.yaml): a second one would be ignored, or mistaken for it
    throw new TicketsweepError(
      `--resume ${resume} continues the sweep of that run directory's own spec: give either a spec file or ` +
        `--resume DIR, not both (to run ${positionals[0]}, leave out --resume)`,
    );
  }
  if (resume !== undefined && values.fresh) {
    // --fresh was ignored: the sweep continued where the user wanted it started over
    throw new TicketsweepError(
      `--fresh starts a spec's sweep over, --resume ${resume} continues it: give one (to start over: deno task ` +
        `sweep ${resume}/spec.yaml --fresh)`,
    );
  }
  if (!resume && positionals.length !== 1) throw new TicketsweepError(`give one spec file\n\n${SWEEP_USAGE}`);
  const backend = values.backend as Backend | undefined;
  if (backend !== undefined && !BACKENDS.includes(backend)) {
    throw new TicketsweepError(`--backend must be one of ${BACKENDS.join(", ")}: current value is '${backend}'`);
  }
  const runsDir = typeof values.runs === "string" ? values.runs.replace(/(.)\/+$/, "$1") : "runs";
  const specFile = positionals[0];
  // before the spec is read and expanded: a SIGINT/SIGTERM during synchronous work still stops the process
  const cleanups: (() => Promise<void>)[] = [];
  const ac = new AbortController();
  using signals = trapSignals(ac, cleanups);
  const spec = specFile ? await loadSpec(specFile) : undefined;
  const runDir = resume ?? `${runsDir}/${sweepIdOf(spec!)}`;
  // --resume reads the spec from the directory: one line when it is a file (not one 'Not a directory' per file)
  const resumeNotDir = resume !== undefined ? await notADirectory(resume) : undefined;
  if (resumeNotDir) {
    throw new TicketsweepError(
      `--resume: ${resumeNotDir.replace(/: move it away.*$/, "")}; give a run directory (runs/SWEEP_ID)`,
    );
  }
  if (values["dry-run"]) {
    const planned = spec ?? (await readManifest(runDir)).spec;
    return await dryRun(planned, runDir, (line) => console.log(shown(line)), resume !== undefined);
  }
  const notDir = await notADirectory(runDir) ?? await brokenResultsLink(runDir);
  if (notDir) throw new TicketsweepError(notDir);
  signals.runDir = runDir;
  // a directory a live coordinator holds: refused before deleting it (--fresh) or starting a broker in it
  // a bad run directory is reported before anything starts
  if (resume) await readManifest(resume);
  // the run directory is this coordinator's before it deletes anything (--fresh) or starts a broker in it, so
  // a second coordinator starting at the same instant refuses without touching the first one's broker
  const lock: RunLock = await acquireRunLock(runDir, logLine);
  try {
    return await sweepLocked(runDir, lock);
  } finally {
    await lock.release();
  }

  async function sweepLocked(runDir: string, lock: RunLock): Promise<number> {
    if (values.fresh && !resume) {
      // before broker.json goes: what a killed coordinator left on the old store would run on, unknown
      const orphans = await stopOrphans(runDir);
      if (orphans.length) logLine(`stopped what a killed coordinator left running (pids ${orphans.join(", ")})`);
      await emptyRunDir(runDir);
    }
    const workerArgs = [
      ...(backend ? ["--backend", backend] : []),
      "--pack",
      String(pack),
      ...orphanWatchArgs(runDir, orphanGrace),
    ];
    let transport: Transport | undefined;
    let closing: Promise<void> | undefined;
    /** Closed once, before the private broker stops (closing after it would log a disconnect). */
    const closeTransport = () => (closing ??= transport?.close() ?? Promise.resolve());
    try {
      if (nats.servers) {
        transport = await connectNats({
          ...nats,
          servers: nats.servers,
          name: "ticketsweep-coordinator",
          log: logLine,
          ackWaitMs,
        });
        logLine(`broker ${maskedUrls(nats.servers)}: publishing trials; workers join with ${workerJoinCommand(nats)}`);
        if (workersFlag) {
          const auth = localWorkerAuth(nats);
          for (const [k, v] of Object.entries(auth.env)) Deno.env.set(k, v); // the workers inherit them
          const w = await spawnLocalWorkers(
            workersFlag,
            { url: nats.servers, token: nats.token },
            `${runDir}/logs`,
            [...workerArgs, ...auth.args],
          );
          cleanups.push(() => w.stop());
          logLine(`started ${workersFlag} local worker process${workersFlag === 1 ? "" : "es"}`);
        }
      } else if (await natsServerBinary()) {
        // a coordinator killed before it could clean up left its broker on this store, and its workers, running
        const brokerFile = await inspectBrokerFile(runDir);
        if ("problem" in brokerFile && brokerFile.problem) logLine(brokerFile.problem);
        const orphans = await stopOrphans(runDir);
        if (orphans.length) {
          logLine(
            `stopped the private broker and local workers a killed coordinator of this run directory had left ` +
              `running (pids ${orphans.join(", ")})`,
          );
        }
        const server = await startLocalServer(`${runDir}/nats`);
        // stops the broker if this coordinator is killed and nothing resumes it, or the run directory is deleted
        const watchdog = await spawnBrokerWatchdog(
          server,
          `${runDir}/nats`,
          runDir,
          2 * orphanGrace * 1000,
          `${runDir}/logs/broker-watchdog.log`,
        );
        cleanups.push(async () => {
          await watchdog.stop();
          await closeTransport();
          await server.stop();
        });
        await writeBrokerFile(runDir, { url: server.url, token: server.token });
        cleanups.push(() => removeBrokerFile(runDir));
        transport = await connectNats({
          servers: server.url,
          token: server.token,
          name: "ticketsweep-coordinator",
          log: logLine,
          ackWaitMs,
        });
        const n = workersFlag ?? navigator.hardwareConcurrency;
        const w = await spawnLocalWorkers(n, { url: server.url, token: server.token }, `${runDir}/logs`, workerArgs);
        cleanups.unshift(() => w.stop());
        // their pids, so that a coordinator resuming after this one is killed can stop them
        await writeBrokerFile(runDir, {
          url: server.url,
          token: server.token,
          host: Deno.hostname(),
          pids: [server.process.pid, ...w.pids, watchdog.pid],
        });
        logLine(
          `private nats-server on ${server.url} (store ${runDir}/nats, random token); ${n} local worker process${
            n === 1 ? "" : "es"
          } (logs in ${runDir}/logs). It listens on this machine only: for workers on other machines, run the ` +
            "sweep with --nats on a broker they reach (README: Adding workers on other machines)",
        );
      } else {
        const mem = new MemoryTransport({ ackWaitMs });
        transport = mem;
        logLine(
          "no NATS URL and no nats-server on PATH: running in this process. For workers on other machines, " +
            "install nats-server (apt-get install nats-server) or pass --nats nats://HOST:4222",
        );
        if (workersFlag !== undefined) {
          // more workers in this one process would take turns on its one thread; none would run nothing
          logLine(
            `--workers ${workersFlag} is ignored: without a broker one worker runs the trials in this process ` +
              "(--pack trains several together); for worker processes, install nats-server or pass --nats",
          );
        }
        quietGpuProbe();
        // the coordinator logs each outcome: the in-process worker's own outcome lines would print each trial's
        // result twice (its start, failures and retries still show)
        const workerLog = (l: string) => {
          if (!/^trial \S+: (done, accuracy|stopped early)/.test(l)) logLine(l);
        };
        const worker = runWorker({
          transport: mem,
          backend: backend ?? "auto",
          pack,
          log: workerLog,
          signal: ac.signal,
        });
        cleanups.push(async () => {
          ac.abort();
          await worker;
        });
      }
      cleanups.push(closeTransport);
      if (values.fresh && !resume) await transport.forgetSweep(sweepIdOf(spec!));
      const tty = Deno.stdout.isTerminal();
      const display = new ProgressDisplay({
        write: (t) => Deno.stdout.writeSync(new TextEncoder().encode(t)),
        tty,
        width: () => (tty ? Deno.consoleSize().columns : 120),
      });
      const retryFailed = values["retry-failed"] === true;
      const common = { transport, log: logLine, signal: ac.signal, display, reconcileMs, lock, retryFailed };
      const outcome: SweepOutcome = resume ? await resumeSweep(resume, common) : await runSweep({
        ...common,
        spec: spec!,
        specText: await Deno.readTextFile(specFile!),
        specFile: specFile!,
        runsDir,
      });
      // an interrupted sweep with nothing done has no front to show
      if (outcome.data.counts.done > 0) console.log(`\n${frontTables(outcome.data)}\n`);
      for (const line of closingLines(outcome)) console.log(line);
      return outcome.complete ? 0 : 130;
    } finally {
      ac.abort();
      for (const c of cleanups) await c().catch((e) => logLine(`cleanup: ${(e as Error).message}`));
    }
  }
}

/**
 * The sweep's last lines: its counts and report, and how to resume it. The run directory is {@link shownPath}:
 * a path with a line break or escape in it (from --runs) printed a line of its own ("Report: ...") or moved the
 * cursor.
 */
export function closingLines(
  outcome: Pick<SweepOutcome, "sweepId" | "runDir" | "wallS" | "complete" | "cancelled"> & {
    data: { counts: Parameters<typeof outcomeCounts>[0] };
  },
): string[] {
  const dir = shownPath(outcome.runDir);
  return [
    `${outcomeCounts(outcome.data.counts)} in ${outcome.wallS.toFixed(1)} s. Report: ${dir}/report.html ` +
    "(also report.md, fronts.json, trials.csv; results in results.jsonl)",
    ...(outcome.cancelled
      ? [`sweep ${shown(outcome.sweepId)} was cancelled`]
      : !outcome.complete
      ? [`stopped before the end; continue it with: deno task sweep --resume ${dir}`]
      : []),
  ];
}

/** The sweep's last line's counts: `3 done, 1 failed, 0 pending`; with early stops `24 recorded: 20 done, 4 stopped early, ...`. */
export function outcomeCounts(c: { done: number; failed: number; stopped?: number; pending: number }): string {
  const stopped = c.stopped ?? 0;
  const head = stopped ? `${c.done + stopped + c.failed} recorded: ` : "";
  return `${head}${c.done} done, ${
    stopped ? `${stopped} stopped early, ` : ""
  }${c.failed} failed, ${c.pending} pending`;
}

/**
 * What `--workers N` local workers need of the coordinator's credentials besides the URL and token: the user
 * and password in their environment (a command line shows in ps), the creds and TLS files as flags.
 */
export function localWorkerAuth(
  nats: ReturnType<typeof natsFromFlags>,
): { args: string[]; env: Record<string, string> } {
  const args: string[] = [];
  if (nats.creds) args.push("--creds", nats.creds);
  if (nats.tls?.caFile) args.push("--tls-ca", nats.tls.caFile);
  if (nats.tls?.certFile) args.push("--tls-cert", nats.tls.certFile, "--tls-key", nats.tls.keyFile!);
  const env: Record<string, string> = {};
  if (nats.user !== undefined) env.NATS_USER = nats.user;
  if (nats.pass !== undefined) env.NATS_PASSWORD = nats.pass;
  return { args, env };
}

/**
 * The command a worker on another machine runs to join: the broker URL and the credential flags it needs
 * (placeholders, never the secrets: the worker role's own password is in worker.env from broker-config).
 */
export function workerJoinCommand(nats: ReturnType<typeof natsFromFlags>): string {
  // a user, password or token in the URL itself: not printed, the placeholders stand for them
  const servers = withoutCredentials(nats.servers ?? "");
  const inUrl = servers !== nats.servers ? (nats.servers!.match(/[^\s/@,]+@/)?.[0] ?? "") : "";
  const user = nats.user ?? (inUrl.includes(":") ? inUrl : undefined);
  const token = nats.token ?? (inUrl && !inUrl.includes(":") ? inUrl : undefined);
  const flags = [`--nats ${servers}`];
  if (token) flags.push("--token TOKEN");
  if (user) flags.push("--user USER --password PASSWORD");
  if (nats.creds) flags.push("--creds FILE.creds");
  if (nats.tls?.caFile) flags.push("--tls-ca CA.pem");
  if (nats.tls?.certFile) flags.push("--tls-cert CERT.pem --tls-key KEY.pem");
  const cmd = `deno task worker ${flags.join(" ")}`;
  if (user) {
    return `${cmd} (the worker user's, not the coordinator's: set -a; . ./worker.env; set +a; deno task worker ` +
      "reads them from the environment)";
  }
  return token ? `${cmd} (the token this coordinator was given)` : cmd;
}

/** Deletes everything in a run directory but its lock (held by this coordinator), for `--fresh`. */
async function emptyRunDir(runDir: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(runDir)) {
      if (e.name !== LOCK_FILE) await Deno.remove(`${runDir}/${e.name}`, { recursive: true });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Seconds a busy coordinator gets to notice a signal, and a stopping one to finish, before it is ended. */
const SIGNAL_GRACE_S = 3;
const SIGNAL_DEADLINE_S = 30;

/**
 * SIGINT/SIGTERM for the coordinator. The first aborts `ac` (the sweep stops, records what it has and can be
 * resumed); a second one, or a first one that this thread does not take up within {@link SIGNAL_GRACE_S}
 * (it is busy in synchronous work: expanding, writing a large manifest), or a stop that takes longer than
 * {@link SIGNAL_DEADLINE_S}, ends the process with 128 + the signal's number (130, 143). The last two are
 * seen by a watchdog thread, which signals this process's children (broker, local workers) before it exits.
 * Set `runDir` once known, for the message on how to resume.
 */
function trapSignals(ac: AbortController, cleanups: (() => Promise<void>)[]): { runDir?: string } & Disposable {
  const taken = new Int32Array(new SharedArrayBuffer(4)); // signals this thread has taken up
  const state: { runDir?: string } & Disposable = {
    set runDir(dir: string | undefined) {
      hint = dir;
      watchdog?.postMessage({ runDir: dir, shownDir: dir === undefined ? dir : shownPath(dir) });
    },
    get runDir() {
      return hint;
    },
    [Symbol.dispose]() {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
      Deno.removeSignalListener("SIGHUP", onHup);
      watchdog?.terminate();
    },
  };
  let hint: string | undefined;
  let firstAt = 0;
  const onSignal = (name: string, code: number) => {
    // `deno task` passes the terminal's Ctrl-C on to this process, which got it from the terminal too: one press
    if (name === "SIGINT" && firstAt && performance.now() - firstAt < SIGNAL_ECHO_MS) return;
    const n = Atomics.add(taken, 0, 1) + 1;
    if (n === 1) firstAt = performance.now();
    if (hint === undefined) {
      logLine(`interrupted (${name}) before the sweep started: nothing ran`);
      Deno.exit(code);
    }
    if (n === 1) {
      logLine(
        `interrupted (${name}): stopping; the sweep can be continued with --resume ${shownPath(hint)} ` +
          `(${name} again stops at once)`,
      );
      ac.abort();
      return;
    }
    logLine(`interrupted again (${name}): stopping now; the sweep can be continued with --resume ${shownPath(hint)}`);
    for (const c of cleanups) c().catch(() => {}); // each signals its processes before its first await
    signalChildren(); // the private broker and local workers, in their own process groups, stop with it
    Deno.exit(code);
  };
  const onInt = () => onSignal("SIGINT", 130);
  const onTerm = () => onSignal("SIGTERM", 143);
  // the terminal closed: the private broker and local workers are in their own process groups, so stop them too
  const onHup = () => onSignal("SIGHUP", 129);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGHUP", onHup);
  let watchdog: Worker | undefined;
  try {
    const url = URL.createObjectURL(new Blob([SIGNAL_WATCHDOG], { type: "text/javascript" }));
    watchdog = new Worker(url, { type: "module" });
    watchdog.onerror = (e) => e.preventDefault(); // without a watchdog, signals still work while this thread is free
    watchdog.postMessage({ taken: taken.buffer, graceMs: SIGNAL_GRACE_S * 1000, deadlineMs: SIGNAL_DEADLINE_S * 1000 });
  } catch {
    watchdog = undefined;
  }
  return state;
}

/** A second SIGINT this soon after the first is the same Ctrl-C, passed on by `deno task`. */
const SIGNAL_ECHO_MS = 500;

/** SIGTERM to this process's children (Linux: /proc), for a stop that cannot wait for the cleanups. */
function signalChildren(): void {
  try {
    for (const t of Deno.readDirSync("/proc/self/task")) {
      const pids = Deno.readTextFileSync(`/proc/self/task/${t.name}/children`).trim().split(/\s+/);
      for (const pid of pids.filter(Boolean)) {
        try {
          Deno.kill(Number(pid), "SIGTERM");
        } catch { /* gone */ }
      }
    }
  } catch { /* no /proc */ }
}

/** The watchdog thread of {@link trapSignals} (plain JavaScript, run from a Blob URL). */
const SIGNAL_WATCHDOG = `
let taken, graceMs = 3000, deadlineMs = 30000, runDir, shownDir, seen = 0, firstAt = 0;
self.onmessage = (e) => {
  if (e.data.taken) ({ graceMs, deadlineMs } = e.data), taken = new Int32Array(e.data.taken);
  if ("runDir" in e.data) ({ runDir, shownDir } = e.data);
};
function resumeHint() {
  if (runDir === undefined) return "nothing ran yet";
  try {
    Deno.statSync(runDir + "/sweep.json");
    return "the sweep can be continued with --resume " + shownDir;
  } catch {
    return "nothing was recorded yet: run the same command again";
  }
}
function stopChildren() {
  try {
    for (const t of Deno.readDirSync("/proc/self/task")) {
      const pids = Deno.readTextFileSync("/proc/self/task/" + t.name + "/children").trim().split(/\\s+/);
      for (const pid of pids.filter(Boolean)) {
        try { Deno.kill(Number(pid), "SIGTERM"); } catch { /* gone */ }
      }
    }
  } catch { /* no /proc: the children see their broker go */ }
}
function die(why, code) {
  console.error("[" + new Date().toISOString().slice(11, 19) + "] " + why + ": exiting now; " + resumeHint());
  stopChildren();
  try {
    const lib = Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
    Deno.dlopen(lib, { _exit: { parameters: ["i32"], result: "void" } }).symbols._exit(code);
  } catch { /* no FFI permission */ }
  Deno.kill(Deno.pid, "SIGKILL");
}
function on(name, code) {
  if (name === "SIGINT" && firstAt && Date.now() - firstAt < ${SIGNAL_ECHO_MS}) return; // deno task's copy
  const n = ++seen;
  if (n === 1) {
    firstAt = Date.now();
    setTimeout(() => {
      if (Atomics.load(taken, 0) < 1) die("interrupted (" + name + ") while busy for " + graceMs / 1000 + " s", code);
    }, graceMs);
    setTimeout(() => die("still stopping " + deadlineMs / 1000 + " s after " + name, code), deadlineMs);
  } else {
    setTimeout(() => die("interrupted again (" + name + ") while busy", code), 1000);
  }
}
Deno.addSignalListener("SIGINT", () => on("SIGINT", 130));
Deno.addSignalListener("SIGTERM", () => on("SIGTERM", 143));
`;

/** `deno task sweep cancel SWEEP`: finds the broker, cancels, reports what it removed. */
async function cancelMain(args: string[], values: Record<string, string | boolean | undefined>): Promise<number> {
  if (args.length !== 1) {
    throw new TicketsweepError(`cancel takes one sweep name, id or run directory\n\n${SWEEP_USAGE}`);
  }
  const arg = args[0]!.replace(/\/+$/, "");
  if (!/^[A-Za-z0-9_-]+$/.test(arg.split("/").at(-1)!)) {
    // a sweep's name and id are letters, digits, - and _ (the broker's keys refuse the rest: '', '*', '>', ' ')
    throw new TicketsweepError(
      `cancel: '${arg}' is not a sweep name, id or run directory (their names are letters, digits, - and _)`,
    );
  }
  const runsDir = typeof values.runs === "string" ? values.runs : "runs";
  // a sweep's name (the spec's `name:`) stands for its id when one run directory has it
  let sweepId = arg.includes("/") ? arg.split("/").at(-1)! : await sweepIdOfName(arg, runsDir) ?? arg;
  let nats = natsFromFlags(values);
  if (!nats.servers) {
    const dir = arg.includes("/") ? arg : `${runsDir}/${sweepId}`;
    const file = await readBrokerFile(dir);
    const held = await inspectRunLock(dir).then((l) => l.kind === "live", () => false);
    if (file && !held) {
      // its coordinator was killed: what it left running is stopped; the queue and the store stay for --resume
      const stopped = await stopOrphans(dir);
      console.log(
        stopped.length
          ? `${sweepId} is not running (its coordinator is gone): stopped the private broker and local workers it ` +
            `left running (pids ${stopped.join(", ")}); nothing else changed (--resume ${shownPath(dir)} continues it)`
          : `${sweepId} is not running (no coordinator holds ${shownPath(dir)}, and its private broker is gone): ` +
            "nothing to cancel, nothing changed",
      );
      return 0;
    }
    if (!file && !held && (await readManifest(dir).then(() => true, () => false))) {
      // a finished or stopped sweep on a private broker: that broker is gone with its coordinator
      console.log(
        `${sweepId} is not running (no coordinator holds ${
          shownPath(dir)
        }): nothing to cancel, nothing changed (a sweep ` +
          "whose coordinator runs on another machine is cancelled with --nats URL)",
      );
      return 0;
    }
    if (!file) {
      const where = await Deno.stat(dir).then(() => true, () => false)
        ? `${shownPath(dir)} has no broker.json (sweeps on a private broker write it while they run)`
        : `no run directory ${shownPath(dir)} (--runs DIR names the folder that holds it)`;
      throw new TicketsweepError(`no broker for ${sweepId}: pass --nats URL (and credentials); ${where}`);
    }
    nats = { ...nats, servers: file.url, token: file.token };
  }
  const transport = await connectNats({ ...nats, servers: nats.servers!, name: "ticketsweep-cancel", log: logLine });
  try {
    if (!arg.includes("/") && !(await transport.getSweepState(sweepId))) {
      // not an id on this broker: the name of one of its sweeps?
      const named = (await transport.listSweepStates()).filter((s) => s.name === arg);
      const live = named.filter((s) => s.status === "running");
      const pick = named.length === 1 ? named : live;
      if (pick.length === 1) sweepId = pick[0]!.sweep_id;
      else if (named.length > 1) {
        throw new TicketsweepError(
          `${named.length} sweeps on this broker are named ${arg}: ${
            named.map((s) => `${s.sweep_id} (${s.status})`)
              .join(", ")
          }; give the id`,
        );
      }
    }
    const state = await transport.getSweepState(sweepId);
    if (state?.status === "complete" || state?.status === "cancelled") {
      console.log(
        `${sweepId} has already ${state.status === "complete" ? "finished" : "been cancelled"}: nothing to cancel, ` +
          "nothing changed",
      );
      return 0;
    }
    const purged = await transport.cancelSweep(sweepId);
    console.log(
      `cancelled ${sweepId}: ${purged} unfinished trial${
        purged === 1 ? "" : "s"
      } removed from the queue (running ones ` +
        "included); running trials stop within seconds; the coordinator records every unfinished trial as failed: " +
        "cancelled",
    );
    return 0;
  } finally {
    await transport.close();
  }
}

/**
 * The id of the sweep named `name` in `runsDir` (the `name:` of its spec): the only run directory of that name,
 * or the only one of them a coordinator runs now; undefined when none has it.
 * @throws {TicketsweepError} when several do and it cannot tell which.
 */
async function sweepIdOfName(name: string, runsDir: string): Promise<string | undefined> {
  const named: { id: string; live: boolean }[] = [];
  try {
    for await (const e of Deno.readDir(runsDir)) {
      if (!e.isDirectory) continue;
      if (e.name === name) return name; // an id (or a run directory's own name) wins
      const dir = `${runsDir}/${e.name}`;
      const m = await readManifest(dir).catch(() => null);
      if (m?.name !== name) continue;
      const lock = await inspectRunLock(dir).catch(() => null);
      named.push({ id: m.sweep_id, live: lock?.kind === "live" });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const live = named.filter((n) => n.live);
  if (named.length === 1) return named[0]!.id;
  if (live.length === 1) return live[0]!.id;
  if (named.length > 1) {
    throw new TicketsweepError(
      `${named.length} sweeps in ${runsDir}/ are named ${name}${
        live.length ? `, ${live.length} of them running` : ""
      }: ` +
        `${named.map((n) => n.id).sort().join(", ")}; give the id (or runs/ID)`,
    );
  }
  return undefined;
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => sweepMain(Deno.args));
}
