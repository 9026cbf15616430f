import { connectNats } from "../broker/nats.ts";
import { brokerProcesses, readBrokerFile } from "../coordinator/broker_file.ts";
import { processCommandLine } from "../util/orphans.ts";
import { ResultLog, setAsideNotice } from "../coordinator/record.ts";
import { readManifest } from "../coordinator/run_dir.ts";
import { inspectRunLock, type LockState } from "../coordinator/run_lock.ts";
import { type BrokerStatus, gatherStatus, renderStatus } from "../coordinator/status.ts";
import { TicketsweepError } from "../util/errors.ts";
import {
  logLine,
  NATS_FLAGS,
  NATS_FLAGS_HELP,
  natsFromFlags,
  parseCli,
  shown as printed,
  shownPath,
} from "./common.ts";

export const STATUS_USAGE = `Usage: deno task status [SWEEP_ID | runs/SWEEP_ID] [options]

Shows sweeps and their trials (queued, running, done, failed), the ETA, and each worker with its host,
engine, device, current trial and speed; workers that stopped sending heartbeats are shown as gone.
Works from any machine that reaches the broker. Without --nats it uses runs/SWEEP_ID/broker.json (a sweep
on a private broker) or, when the sweep is not running, reads its run directory.

Options:
${NATS_FLAGS_HELP}
  --runs DIR          where run directories are (default runs)
  --json              print the raw status as JSON
  -h, --help          this text`;

/** `deno task status`. */
export async function statusMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    ...NATS_FLAGS,
    runs: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, STATUS_USAGE);
  const runsDir = typeof values.runs === "string" ? values.runs : "runs";
  const arg = positionals[0]?.replace(/\/+$/, "");
  const sweepId = arg?.split("/").at(-1);
  const dir = arg ? (arg.includes("/") ? arg : `${runsDir}/${arg}`) : undefined;
  let nats = natsFromFlags(values);
  if (!nats.servers && dir && (await lockOf(dir)).kind === "live") {
    // a private broker lives as long as its coordinator: its broker.json is used only while that one runs
    const file = await readBrokerFile(dir);
    if (file) nats = { ...nats, servers: file.url, token: file.token };
  }
  if (nats.servers) {
    const transport = await connectNats({ ...nats, servers: nats.servers, name: "ticketsweep-status", log: logLine });
    try {
      const status = await gatherStatus(transport, sweepId);
      console.log(statusText(status, values.json === true));
      return status.sweeps.length || !sweepId ? 0 : 1;
    } finally {
      await transport.close();
    }
  }
  // no broker: what the run directories say
  const dirs = dir ? [dir] : await runDirs(runsDir);
  if (dirs.length === 0) {
    console.log(`no broker given (--nats or NATS_URL) and no run directories in ${runsDir}/`);
    return 1;
  }
  let shown = 0;
  for (const d of dirs) {
    let m, log;
    try {
      m = await readManifest(d);
      // only read: the files are the coordinator's (a bad line is set aside when the sweep resumes)
      log = await ResultLog.open(d, { planned: m.trials, readOnly: true });
    } catch (e) {
      if (!(e instanceof TicketsweepError)) throw e;
      console.log(printed(e.message)); // one line: not a run directory, or what is wrong with its sweep.json or results
      continue;
    }
    shown++;
    const lock = await lockOf(d);
    const all = log.all();
    // a trial stopped early has its one outcome, counted apart as the sweep's last line does
    const stopped = all.filter((r) => r.status === "stopped").length;
    const done = all.filter((r) => r.status === "done").length, failed = all.length - done - stopped;
    // typed since the failure field exists; the error text of results recorded before it
    const cancelled = all.some((r) => r.failure === "cancelled" || (!r.failure && r.error?.startsWith("cancelled")));
    const at = shownPath(d); // a line break in its name cannot start a line of its own
    const resumeHint = `continue with deno task sweep --resume ${at}`;
    const state = lock.kind === "live"
      ? `running (coordinator pid ${lock.info.pid} on ${lock.info.host})`
      : cancelled
      ? "cancelled"
      : all.length >= m.trials.length
      ? "complete"
      : lock.kind === "stale"
      ? `stopped: its coordinator (pid ${lock.info.pid} on ${lock.info.host}) is gone; ${resumeHint}`
      : lock.kind === "corrupt"
      ? `stopped (its coordinator.lock is unreadable: ${lock.why}); ${resumeHint}`
      : "not running (resume with --resume)";
    console.log(printed(
      `${m.sweep_id} (${m.name}): ${state}; ${m.trials.length} trials: ${m.trials.length - all.length} without an ` +
        `outcome, ${done} done, ${stopped ? `${stopped} stopped early, ` : ""}${failed} failed (from ${at}; for live ` +
        "workers pass --nats)",
    ));
    for (const s of log.setAside) console.log(printed(`  ${at}/${setAsideNotice(s, true)}`));
    const left = lock.kind === "live" ? [] : (await brokerProcesses(d)).alive;
    if (left.length) {
      // how they stop, from their command lines: an earlier ticketsweep's broker has no watchdog and its workers no
      // --orphan-grace (they run until stopped); this run's grace periods, whatever this shell's environment says
      const cmds = await Promise.all(left.map((pid) => processCommandLine(pid)));
      const watchdog = cmds.find((c) => c?.includes("src/broker/watchdog.ts "));
      const brokerS = Number(watchdog?.match(/ --grace-ms ([0-9]+) /)?.[1]) / 1000;
      const workerS = cmds.map((c) => c?.match(/ --orphan-grace ([0-9]+) /)?.[1]).find((g) => g !== undefined);
      const workers = workerS === undefined ? "" : `the workers ${workerS} s after their coordinator, `;
      const how = watchdog
        ? `otherwise they stop by themselves (${workers}the broker ${brokerS} s after no coordinator holds ${at}; ` +
          `all at once if ${at} is deleted)`
        : "they were started by an earlier ticketsweep and do not stop by themselves";
      console.log(printed(
        `  its killed coordinator's private broker and local workers still run (pids ${left.join(", ")}): ` +
          `--resume stops them and continues; deno task sweep cancel ${at} stops them now; ${how}`,
      ));
    }
    if (failed > 0 && lock.kind !== "live") {
      console.log(`  run the ${failed} failed trials again: deno task sweep --resume ${at} --retry-failed`);
    }
  }
  return shown > 0 ? 0 : 1; // a run directory that is not one (or no readable one) is an error
}

/**
 * The broker's status as `status` prints it: the names any worker gave (`--id`, host, device) cannot send control
 * bytes to the terminal (escaped: `\x1b`; in JSON, `\u001b` and `\u202e`, the same strings read back).
 */
export function statusText(status: BrokerStatus, json: boolean): string {
  if (!json) return printed(renderStatus(status));
  return JSON.stringify(status, null, 2).replace(
    /[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** What a run directory's lock says (an unreadable lock file counts as none). */
function lockOf(dir: string): Promise<LockState> {
  return inspectRunLock(dir).catch((): LockState => ({ kind: "free" }));
}

async function runDirs(runsDir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(runsDir)) if (e.isDirectory) out.push(`${runsDir}/${e.name}`);
  } catch { /* none */ }
  return out.sort();
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => statusMain(Deno.args));
}
