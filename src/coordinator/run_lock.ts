import { z } from "zod";
import { atomicWrite } from "../util/atomic_write.ts";
import { TicketsweepError } from "../util/errors.ts";
import { randomHex } from "../util/hash.ts";

/** The lock file of a run directory: held by the one coordinator that records its results. */
export const LOCK_FILE = "coordinator.lock";
/** A lock of another host whose heartbeat is older than this is stale. */
export const LOCK_STALE_MS = 30_000;
/** How often a held lock's `heartbeat_at` is refreshed. */
export const LOCK_HEARTBEAT_MS = 5_000;

/** `coordinator.lock`, version 1. */
export const RunLockInfoSchema = z.object({
  v: z.literal(1),
  host: z.string(),
  pid: z.number().int().positive(),
  started_at: z.string(),
  heartbeat_at: z.string(),
}).strict();
export type RunLockInfo = z.infer<typeof RunLockInfoSchema>;

/** What the lock file of a run directory says about its coordinator. */
export type LockState =
  | { kind: "free" }
  | { kind: "live"; info: RunLockInfo; raw: string; futureMs?: number }
  | { kind: "stale"; info: RunLockInfo; raw: string; why: string }
  | { kind: "corrupt"; raw: string; why: string };

/** A held lock; `release` removes it (once; later calls do nothing). */
export interface RunLock {
  path: string;
  info: RunLockInfo;
  /** True once the lock file was found taken over or removed by someone else. */
  readonly lost: boolean;
  release(): Promise<void>;
}

/** Options, for tests. */
export interface LockOptions {
  staleMs?: number;
  heartbeatMs?: number;
  now?: () => number;
}

/** Lock files held by this process (an in-process second coordinator on the same directory is refused). */
const heldHere = new Set<string>();

/** Whether a process of this host is alive (a zombie is not); null when that cannot be told. */
async function processAlive(pid: number): Promise<boolean | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // no such process, or no /proc at all
      try {
        await Deno.stat("/proc/self/stat");
        return false;
      } catch { /* not Linux */ }
    }
  }
  try {
    const out = await new Deno.Command("kill", { args: ["-0", String(pid)], stdout: "null", stderr: "piped" }).output();
    if (out.success) return true;
    return /not permitted/i.test(new TextDecoder().decode(out.stderr)) ? true : false;
  } catch {
    return null;
  }
}

/** When a process of this host started (ms since the epoch), from /proc; null when unknown. */
async function processStartMs(pid: number): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const btime = Number(/^btime (\d+)$/m.exec(await Deno.readTextFile("/proc/stat"))?.[1]);
    return Number.isFinite(ticks) && Number.isFinite(btime) && btime > 0 ? (btime + ticks / 100) * 1000 : null;
  } catch {
    return null;
  }
}

/** Reads the lock file of a run directory and tells whether its coordinator is alive. */
export async function inspectRunLock(runDir: string, opts: LockOptions = {}): Promise<LockState> {
  const path = `${runDir}/${LOCK_FILE}`;
  let raw: string;
  try {
    raw = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kind: "free" };
    if (e instanceof Deno.errors.IsADirectory) {
      throw new TicketsweepError(`${path} is a directory, not a lock file: move it away`);
    }
    throw new TicketsweepError(`${path}: cannot read it (${(e as Error).message}); fix its permissions or remove it`);
  }
  let parsed;
  try {
    parsed = RunLockInfoSchema.safeParse(JSON.parse(raw));
  } catch (e) {
    return { kind: "corrupt", raw, why: `not JSON (${(e as Error).message})` };
  }
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { kind: "corrupt", raw, why: `not a lock (${i.path.join(".") || "(root)"}: ${i.message})` };
  }
  const info = parsed.data;
  const now = (opts.now ?? Date.now)();
  if (info.host === Deno.hostname()) {
    if (info.pid === Deno.pid) {
      return heldHere.has(path)
        ? { kind: "live", info, raw }
        : { kind: "stale", info, raw, why: "its pid is this process's: an earlier process with the same pid left it" };
    }
    const alive = await processAlive(info.pid);
    if (alive === false) return { kind: "stale", info, raw, why: "its process is gone" };
    const start = alive ? await processStartMs(info.pid) : null;
    if (start !== null && start > Date.parse(info.started_at) + 10_000) {
      return { kind: "stale", info, raw, why: `its process is gone (pid ${info.pid} is now a later process)` };
    }
    if (alive) return { kind: "live", info, raw };
    // cannot tell whether the process lives: fall back on the heartbeat
  }
  const age = now - Date.parse(info.heartbeat_at);
  const staleMs = opts.staleMs ?? LOCK_STALE_MS;
  // a heartbeat from the future: the holder's clock is ahead; it may be alive, so it is not taken over
  if (age < -staleMs) return { kind: "live", info, raw, futureMs: -age };
  if (!(age <= staleMs)) {
    return {
      kind: "stale",
      info,
      raw,
      why: `its heartbeat is ${Number.isFinite(age) ? `${Math.round(age / 1000)} s old` : "unreadable"}`,
    };
  }
  return { kind: "live", info, raw };
}

/** The message of a refused run directory (`futureMs`: how far in the future its heartbeat is). */
export function lockHeldMessage(runDir: string, info: RunLockInfo, futureMs?: number): string {
  return `${runDir} is held by the coordinator pid ${info.pid} on host ${info.host} since ${info.started_at}; ` +
    (futureMs !== undefined
      ? `its heartbeat is ${Math.round(futureMs / 1000)} s in the future: the clocks of ${info.host} and this host ` +
        `differ; if that coordinator is gone, remove ${runDir}/${LOCK_FILE}`
      : info.host === Deno.hostname()
      ? `stop it first (kill ${info.pid}), or wait until it ends`
      : `stop it first, or wait (a lock not refreshed for ${LOCK_STALE_MS / 1000} s is taken over)`);
}

/** Throws the refusal when a live coordinator holds the run directory (e.g. before deleting it). */
export async function assertRunDirFree(runDir: string): Promise<void> {
  const st = await inspectRunLock(runDir);
  if (st.kind === "live") throw new TicketsweepError(lockHeldMessage(runDir, st.info, st.futureMs));
}

/** Creates the lock file atomically with its whole content (a hard link fails when it exists). */
async function createLockFile(path: string, info: RunLockInfo): Promise<boolean> {
  const tmp = `${path}.new-${Deno.pid}-${randomHex(4)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(info) + "\n");
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Removes the lock file if it still holds `raw` (moved aside first, so that of two processes taking over the
 * same stale lock only one removes it, and a fresh lock moved by mistake is put back).
 */
async function removeIfUnchanged(path: string, raw: string): Promise<void> {
  const aside = `${path}.stale-${Deno.pid}-${randomHex(4)}`;
  try {
    await Deno.rename(path, aside);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const moved = await Deno.readTextFile(aside).catch(() => raw);
  if (moved !== raw) await Deno.link(aside, path).catch(() => {}); // a new holder's lock: put it back
  await Deno.remove(aside).catch(() => {});
}

/**
 * Takes the run directory for this coordinator: creates `coordinator.lock` (host, pid, start time, heartbeat)
 * atomically, refreshes its heartbeat every few seconds while held, and takes over a stale or corrupt lock
 * with a log line naming the old holder.
 * @throws {TicketsweepError} when a live coordinator holds it.
 */
export async function acquireRunLock(
  runDir: string,
  log: (line: string) => void,
  opts: LockOptions = {},
): Promise<RunLock> {
  await Deno.mkdir(runDir, { recursive: true });
  const path = `${runDir}/${LOCK_FILE}`;
  const now = opts.now ?? Date.now;
  const at = new Date(now()).toISOString();
  const info: RunLockInfo = { v: 1, host: Deno.hostname(), pid: Deno.pid, started_at: at, heartbeat_at: at };
  let tookOver: string | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createLockFile(path, info)) {
      if (tookOver) log(tookOver);
      return holdLock(runDir, path, info, log, opts);
    }
    const st = await inspectRunLock(runDir, opts);
    if (st.kind === "free") continue;
    if (st.kind === "live") throw new TicketsweepError(lockHeldMessage(runDir, st.info, st.futureMs));
    tookOver = st.kind === "corrupt"
      ? `took over ${path}: it was unreadable (${st.why})`
      : `took over ${path} from the coordinator pid ${st.info.pid} on host ${st.info.host} (since ` +
        `${st.info.started_at}): ${st.why}`;
    await removeIfUnchanged(path, st.raw);
  }
  throw new TicketsweepError(`could not take ${path}: other processes keep changing it; try again`);
}

function holdLock(
  runDir: string,
  path: string,
  info: RunLockInfo,
  log: (line: string) => void,
  opts: LockOptions,
): RunLock {
  heldHere.add(path);
  const now = opts.now ?? Date.now;
  let lost = false, released = false;
  let beating: Promise<void> = Promise.resolve();
  const ours = (text: string | null) => {
    try {
      const o = text ? JSON.parse(text) : null;
      return o?.host === info.host && o?.pid === info.pid && o?.started_at === info.started_at;
    } catch {
      return false;
    }
  };
  const beat = async () => {
    const cur = await Deno.readTextFile(path).catch(() => null);
    if (released || lost) return;
    if (!ours(cur)) {
      lost = true;
      clearInterval(timer);
      log(
        `lost the lock of ${runDir}: ${
          cur === null ? `${LOCK_FILE} was removed` : `another coordinator took it over (${cur.trim()})`
        }; this coordinator records nothing more and stops at its next result`,
      );
      return;
    }
    info.heartbeat_at = new Date(now()).toISOString();
    await atomicWrite(path, JSON.stringify(info) + "\n");
  };
  const timer = setInterval(() => {
    beating = beating.then(beat).catch((e) => log(`could not refresh ${path}: ${(e as Error).message}`));
  }, opts.heartbeatMs ?? LOCK_HEARTBEAT_MS);
  Deno.unrefTimer(timer);
  return {
    path,
    info,
    get lost() {
      return lost;
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await beating;
      heldHere.delete(path);
      if (!lost && ours(await Deno.readTextFile(path).catch(() => null))) await Deno.remove(path).catch(() => {});
    },
  };
}
