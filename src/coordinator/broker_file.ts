import { z } from "zod";
import { processCommandLine } from "../util/orphans.ts";

/**
 * `runs/<sweep>/broker.json`: how to reach the private broker a sweep started (URL and its random token),
 * readable by the owner only, so that `status` and `cancel` from another terminal find it.
 */
export const BrokerFileSchema = z.object({
  url: z.string(),
  token: z.string(),
  /** The machine the broker and the local workers run on, and their process ids (broker first). */
  host: z.string().optional(),
  pids: z.array(z.number().int().positive()).optional(),
});
export type BrokerFile = z.infer<typeof BrokerFileSchema>;

export async function writeBrokerFile(runDir: string, b: BrokerFile): Promise<void> {
  await Deno.mkdir(runDir, { recursive: true });
  await Deno.writeTextFile(`${runDir}/broker.json`, JSON.stringify(b) + "\n", { mode: 0o600 });
}

export async function readBrokerFile(runDir: string): Promise<BrokerFile | null> {
  const b = await inspectBrokerFile(runDir);
  return "file" in b ? b.file : null;
}

/**
 * The broker file of a run directory: `{file}`, `{}` when there is none, or `{problem}`: one line on why it is
 * not one (a sweep then cannot stop what a killed coordinator left running there; it writes a new file).
 */
export async function inspectBrokerFile(runDir: string): Promise<{ file: BrokerFile } | { problem?: string }> {
  const path = `${runDir}/broker.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? {} : { problem: `${path}: cannot read it (${(e as Error).message})` };
  }
  const after = "a sweep cannot stop the broker and local workers it names (if a killed coordinator left them " +
    "running, stop them) and writes a new one";
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `${path}: not JSON (${(e as Error).message}); ${after}` };
  }
  const parsed = BrokerFileSchema.safeParse(raw);
  if (parsed.success) return { file: parsed.data };
  const i = parsed.error.issues[0]!;
  return { problem: `${path}: not a broker file (${i.path.join(".") || "(root)"}: ${i.message}); ${after}` };
}

export async function removeBrokerFile(runDir: string): Promise<void> {
  await Deno.remove(`${runDir}/broker.json`).catch(() => {});
}

/**
 * The processes of this machine that `broker.json` names (private broker, its watchdog, local workers) and that
 * still run for this run directory: their command line names its store or the broker's URL (a recycled pid is
 * another process). None when the file names none, or names another host.
 */
export async function brokerProcesses(
  runDir: string,
): Promise<{ alive: number[]; ours: (pid: number) => Promise<boolean> }> {
  const b = await readBrokerFile(runDir);
  const ours = async (pid: number) => {
    const cmd = await processCommandLine(pid); // Linux /proc, else ps (macOS)
    return !!b && cmd !== null &&
      (cmd.includes(`${runDir}/nats/`) || cmd.includes(` ${b.url} `) || cmd.endsWith(` ${b.url}`));
  };
  const alive: number[] = [];
  if (!b?.pids?.length || b.host !== Deno.hostname()) return { alive, ours };
  for (const pid of b.pids) if (pid !== Deno.pid && await ours(pid)) alive.push(pid);
  return { alive, ours };
}

/**
 * Stops what a coordinator killed without cleaning up (SIGKILL, a crash) left running for this run directory:
 * its private broker (a second nats-server on the same store would corrupt it), the broker's watchdog and its local
 * workers (still training for the old broker). Only processes on this machine whose command line still names this run
 * directory's store or the old broker's URL are signalled (a recycled pid is left alone): SIGTERM, then SIGKILL
 * after 5 s. Returns the pids it stopped.
 */
export async function stopOrphans(runDir: string): Promise<number[]> {
  const { alive, ours } = await brokerProcesses(runDir);
  const signal = (sig: Deno.Signal) => {
    for (const pid of alive) {
      try {
        Deno.kill(pid, sig);
      } catch { /* gone */ }
    }
  };
  signal("SIGTERM");
  for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
    if ((await Promise.all(alive.map(ours))).every((x) => !x)) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
  signal("SIGKILL");
  return alive;
}
