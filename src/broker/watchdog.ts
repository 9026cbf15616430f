// The private broker's watchdog: a small process beside the nats-server a sweep starts, which stops that broker
// when nothing can use it any more (see stopReason). `deno run -A src/broker/watchdog.ts --help`.
import { inspectRunLock } from "../coordinator/run_lock.ts";
import { dirIdentity, ORPHAN_POLL_MS, processCommandLine, sameDir } from "../util/orphans.ts";
import { printable } from "../util/clip.ts";
import { TicketsweepError } from "../util/errors.ts";

export const WATCHDOG_USAGE = `Usage: deno run -A src/broker/watchdog.ts --broker-pid PID --store DIR --run-dir DIR
  --coordinator-pid PID --grace-ms MS [--url URL] [--log FILE]

Started by a sweep beside its private nats-server (pid --broker-pid, JetStream store --store). Stops that broker
(SIGTERM, then SIGKILL after 10 s) as soon as its store is deleted or replaced once its coordinator (the parent of
this process) is gone, or another coordinator holds the run directory, and once no coordinator has held the run
directory (its coordinator.lock) for --grace-ms. Exits when the broker is gone. SIGTERM stops the watchdog alone.`;

/** What the watchdog watches. */
export interface WatchdogOptions {
  brokerPid: number;
  /** The broker's JetStream store (`<run dir>/nats`); it is on the broker's command line. */
  storeDir: string;
  runDir: string;
  /** The coordinator that started the broker: while it holds the run lock, the broker stays. */
  coordinatorPid: number;
  /** How long the run directory may have no coordinator before the broker is stopped. */
  graceMs: number;
  pollMs?: number;
  /** How often the lock and the broker's process are looked at: every so many polls (default 5, fewer when the
   * grace period is under 10 polls). */
  lockEvery?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** This process's parent pid: the coordinator while it runs (tests). */
  ppid?: () => number;
}

/** Whether the broker's process is still the one started on this store (a recycled pid is another process). */
async function brokerRuns(o: WatchdogOptions): Promise<boolean> {
  const cmd = await processCommandLine(o.brokerPid);
  return cmd !== null && cmd.includes(`${o.storeDir}/`);
}

/**
 * Why the broker should stop now, or null. Stops at once when its store is gone or replaced, or another
 * coordinator holds the run directory; after `graceMs` without any coordinator holding it (`idleSince` is when
 * none was first seen).
 */
async function stopReason(o: WatchdogOptions, state: { idleSince?: number }): Promise<string | null> {
  let lock;
  try {
    lock = await inspectRunLock(o.runDir);
  } catch (e) {
    if (!(e instanceof TicketsweepError)) throw e;
    lock = { kind: "corrupt" as const };
  }
  if (lock.kind === "live") {
    if (lock.info.pid !== o.coordinatorPid || lock.info.host !== Deno.hostname()) {
      return `another coordinator (pid ${lock.info.pid} on ${lock.info.host}) holds the run directory`;
    }
    state.idleSince = undefined;
    return null;
  }
  state.idleSince ??= Date.now();
  return Date.now() - state.idleSince >= o.graceMs
    ? `no coordinator has held the run directory for ${o.graceMs / 1000} s`
    : null;
}

/**
 * Watches until the broker exits (returns "the broker exited") or should stop (stops it and returns why), or
 * until `signal` aborts (returns "stopped").
 */
export async function watchBroker(o: WatchdogOptions): Promise<string> {
  const log = o.log ?? (() => {});
  const store = await dirIdentity(o.storeDir);
  const ppid = o.ppid ?? (() => Deno.ppid);
  const state: { idleSince?: number } = {};
  const pollMs = o.pollMs ?? ORPHAN_POLL_MS;
  const lockEvery = o.lockEvery ?? Math.max(1, Math.min(5, Math.floor(o.graceMs / 2 / pollMs)));
  for (let i = 0;; i++) {
    if (o.signal?.aborted) return "stopped";
    let why: string | null = null;
    if ((store === null || !(await sameDir(o.storeDir, store))) && ppid() !== o.coordinatorPid) {
      // gone or replaced, and its coordinator (this process's parent) is gone. While that one runs, the broker is
      // its: it stops it on exit, or with its next result once its run directory is gone (a store that only looks
      // replaced, from a stat that failed or a file system without stable inode numbers, must not stop it)
      why = `its store ${printable(o.storeDir, 200)} was deleted`;
    } else if (i % lockEvery === 0) {
      if (!(await brokerRuns(o))) return "the broker exited";
      why = await stopReason(o, state);
    }
    if (why !== null) {
      if (!(await brokerRuns(o))) return "the broker exited";
      log(`stopping the private nats-server (pid ${o.brokerPid}): ${why}`);
      await stopBroker(o);
      return why;
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, pollMs);
      o.signal?.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
    });
  }
}

/** SIGTERM (nats-server then writes its store out and exits), SIGKILL if it still runs 10 s later. */
async function stopBroker(o: WatchdogOptions): Promise<void> {
  const send = (sig: Deno.Signal) => {
    try {
      Deno.kill(o.brokerPid, sig);
    } catch { /* gone */ }
  };
  send("SIGTERM");
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (!(await brokerRuns(o))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (await brokerRuns(o)) send("SIGKILL");
}

/** The watchdog process: its flags, then {@link watchBroker}, its lines appended to --log. */
async function watchdogMain(args: string[]): Promise<number> {
  const { parseCli, intFlag } = await import("../cli/common.ts");
  const { values } = parseCli(args, {
    "broker-pid": { type: "string" },
    store: { type: "string" },
    "run-dir": { type: "string" },
    "coordinator-pid": { type: "string" },
    "grace-ms": { type: "string" },
    url: { type: "string" },
    log: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, WATCHDOG_USAGE);
  for (const f of ["broker-pid", "store", "run-dir", "coordinator-pid", "grace-ms"]) {
    if (typeof values[f] !== "string") throw new TicketsweepError(`--${f} is required\n\n${WATCHDOG_USAGE}`);
  }
  const logFile = typeof values.log === "string" ? values.log : undefined;
  let written = Promise.resolve();
  const log = (line: string) => {
    const text = `[${new Date().toISOString().slice(11, 19)}] watchdog: ${line}\n`;
    // in order; a log file gone with its run directory is no error
    if (logFile) written = written.then(() => Deno.writeTextFile(logFile, text, { append: true })).catch(() => {});
  };
  const ac = new AbortController();
  Deno.addSignalListener("SIGTERM", () => ac.abort());
  Deno.addSignalListener("SIGINT", () => ac.abort());
  const o: WatchdogOptions = {
    brokerPid: intFlag("broker-pid", values["broker-pid"], 0, { min: 1 }),
    storeDir: values.store as string,
    runDir: values["run-dir"] as string,
    coordinatorPid: intFlag("coordinator-pid", values["coordinator-pid"], 0, { min: 1 }),
    graceMs: intFlag("grace-ms", values["grace-ms"], 0),
    log,
    signal: ac.signal,
  };
  log(
    `watching the private nats-server pid ${o.brokerPid}${values.url ? ` (${values.url})` : ""}: it stops when ` +
      `${o.storeDir} is deleted, or ${Math.round(o.graceMs / 1000)} s after no coordinator holds ${o.runDir}`,
  );
  const why = await watchBroker(o);
  log(`exits: ${why}`);
  await written;
  return 0;
}

if (import.meta.main) {
  const { runMain } = await import("../cli/common.ts");
  await runMain(() => watchdogMain(Deno.args));
}
