import { connectNats } from "../broker/nats.ts";
import { readBrokerFile } from "../coordinator/broker_file.ts";
import { ResultLog } from "../coordinator/record.ts";
import { readManifest } from "../coordinator/run_dir.ts";
import { gatherStatus, renderStatus } from "../coordinator/status.ts";
import { logLine, NATS_FLAGS, NATS_FLAGS_HELP, natsFromFlags, parseCli } from "./common.ts";

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
  if (!nats.servers && dir) {
    const file = await readBrokerFile(dir);
    if (file) nats = { ...nats, servers: file.url, token: file.token };
  }
  if (nats.servers) {
    const transport = await connectNats({ ...nats, servers: nats.servers, name: "ticketsweep-status", log: logLine });
    try {
      const status = await gatherStatus(transport, sweepId);
      console.log(values.json ? JSON.stringify(status, null, 2) : renderStatus(status));
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
  for (const d of dirs) {
    const m = await readManifest(d).catch(() => null);
    if (!m) {
      console.log(`${d}: not a run directory`);
      continue;
    }
    const all = (await ResultLog.open(d)).all();
    const done = all.filter((r) => r.status === "done").length, failed = all.length - done;
    const cancelled = all.some((r) => r.error?.startsWith("cancelled"));
    const state = cancelled
      ? "cancelled"
      : all.length >= m.trials.length
      ? "complete"
      : "not running (resume with --resume)";
    console.log(
      `${m.sweep_id} (${m.name}): ${state}; ${m.trials.length} trials: ${m.trials.length - all.length} without an ` +
        `outcome, ${done} done, ${failed} failed (from ${d}; for live workers pass --nats)`,
    );
  }
  return 0;
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
