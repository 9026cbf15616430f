import { TicketsweepError } from "./errors.ts";
import { printable } from "./clip.ts";

/**
 * What a sweep on a private broker leaves running when its coordinator is killed (SIGKILL, a crash) and how long:
 * its local workers run on for the grace period (their results wait on the broker for a `--resume`), then give
 * their running trial back and exit; the private nats-server stops once no coordinator has held the run directory
 * for twice the grace period. Both stop within seconds when the run directory is deleted.
 */
export const ORPHAN_GRACE_ENV = "TICKETSWEEP_ORPHAN_GRACE";
/** The grace period in seconds when {@link ORPHAN_GRACE_ENV} is not set: 10 minutes. */
export const DEFAULT_ORPHAN_GRACE_S = 600;
/** How long a worker whose run directory was deleted may take to give its trial back before it just exits. */
export const ORPHAN_EXIT_MS = 10_000;
/** How often the workers and the broker's watchdog look at their coordinator and run directory. */
export const ORPHAN_POLL_MS = 1000;

/** The grace period in seconds from {@link ORPHAN_GRACE_ENV}'s value (unset or empty: the default). */
export function orphanGraceS(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_ORPHAN_GRACE_S;
  const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) {
    throw new TicketsweepError(
      `${ORPHAN_GRACE_ENV} must be a whole number of seconds (digits only; default ${DEFAULT_ORPHAN_GRACE_S}): ` +
        `current value is '${printable(value, 40)}'`,
    );
  }
  return n;
}

/** A directory's identity (device and inode): a directory deleted and made again at the same path is another one. */
export interface DirIdentity {
  dev: number;
  ino: number;
}

/** The identity of the directory at `path`; null when there is none there (deleted, moved away, not a directory). */
export async function dirIdentity(path: string): Promise<DirIdentity | null> {
  try {
    const s = await Deno.stat(path);
    return s.isDirectory && s.ino !== null ? { dev: s.dev, ino: s.ino } : null;
  } catch {
    return null;
  }
}

/** Whether the directory at `path` is still the one whose identity was taken (false when gone or replaced). */
export async function sameDir(path: string, was: DirIdentity): Promise<boolean> {
  const now = await dirIdentity(path);
  return now !== null && now.dev === was.dev && now.ino === was.ino;
}

/**
 * A process's command line, its arguments joined by spaces (with a trailing one on Linux); null when it is gone or
 * cannot be read. Linux reads /proc; elsewhere (macOS) `ps -o args=`.
 */
export async function processCommandLine(pid: number): Promise<string | null> {
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return null;
    if (await Deno.stat("/proc/self/cmdline").then(() => true, () => false)) return null; // Linux: it is gone
  }
  try {
    const out = await new Deno.Command("ps", {
      args: ["-o", "args=", "-p", String(pid)],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const line = new TextDecoder().decode(out.stdout).trim();
    return out.success && line ? `${line} ` : null;
  } catch {
    return null;
  }
}

/** Options of {@link watchCoordinator}. */
export interface CoordinatorWatch {
  /** The coordinator that started this process: its parent. Gone once this process's parent is another one. */
  coordinatorPid?: number;
  /** How long after the coordinator is gone `onOrphaned` is called. */
  graceMs: number;
  /**
   * A run directory: `onOrphaned` is called as soon as it is deleted or replaced and the coordinator (if one is
   * given) is gone.
   */
  runDir?: string;
  /** Called once, when the coordinator went away (a worker then finishes its running trial and takes no new one). */
  onGone?: (line: string) => void;
  /**
   * Called once, with the reason, when this process should stop; `deleted` when its run directory is gone (nothing
   * it still holds can be recorded any more).
   */
  onOrphaned: (why: string, deleted: boolean) => void;
  pollMs?: number;
  /** This process's parent pid (tests). */
  ppid?: () => number;
}

/**
 * Watches what a local worker was started for: its coordinator (its parent process: when that one exits, this
 * process gets another parent, on Linux and macOS alike) and its run directory. The timer does not keep the process
 * alive. Returns a function that stops watching.
 */
export async function watchCoordinator(w: CoordinatorWatch): Promise<() => void> {
  const ppid = w.ppid ?? (() => Deno.ppid);
  const runDirId = w.runDir === undefined ? undefined : await dirIdentity(w.runDir);
  let goneSince: number | undefined;
  let done = false;
  const orphaned = (why: string, deleted = false) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    w.onOrphaned(why, deleted);
  };
  let busy = false;
  const check = async () => {
    if (busy || done) return;
    busy = true;
    try {
      // the run directory gone or replaced: at once once the coordinator is gone too; while it runs, it stops this
      // process itself (on exit, or with its next result once its run directory is gone), and a directory that only
      // looks replaced (a stat that failed, a file system without stable inode numbers) must not stop a running sweep
      const parentRuns = w.coordinatorPid !== undefined && ppid() === w.coordinatorPid;
      if (w.runDir !== undefined && !parentRuns && (runDirId === null || !(await sameDir(w.runDir, runDirId!)))) {
        orphaned(`its run directory ${printable(w.runDir, 200)} was deleted`, true);
        return;
      }
      if (w.coordinatorPid !== undefined && ppid() !== w.coordinatorPid) {
        if (goneSince === undefined) {
          goneSince = Date.now();
          w.onGone?.(
            `its coordinator (pid ${w.coordinatorPid}) is gone: finishing the running trial (its result waits on ` +
              `the broker for a --resume), taking no new one; one still running in ${w.graceMs / 1000} s goes back`,
          );
        }
        if (Date.now() - goneSince >= w.graceMs) {
          orphaned(`its coordinator (pid ${w.coordinatorPid}) has been gone for ${w.graceMs / 1000} s`);
        }
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(check, w.pollMs ?? ORPHAN_POLL_MS);
  Deno.unrefTimer(timer);
  await check();
  return () => {
    done = true;
    clearInterval(timer);
  };
}
