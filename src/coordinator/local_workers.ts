/** Worker processes this coordinator started on its own machine. */
export interface LocalWorkers {
  count: number;
  /** Their process ids. */
  pids: number[];
  /** Sends a signal to worker `i` (0-based), e.g. SIGKILL in fault-injection tests. */
  kill(i: number, signal: Deno.Signal): void;
  stop(): Promise<void>;
}

const ROOT = new URL("../../", import.meta.url);

/**
 * The worker flags that make a local worker stop by itself when this coordinator is killed (SIGKILL, a crash):
 * `graceS` seconds after this process is gone (what it finishes meanwhile waits on the broker for a `--resume`),
 * or as soon as `runDir` is deleted; it gives its running trial back either way.
 */
export function orphanWatchArgs(runDir: string, graceS: number): string[] {
  return ["--coordinator", String(Deno.pid), "--orphan-grace", String(graceS), "--run-dir", runDir];
}

/**
 * Spawns `count` worker processes (`workers/worker.ts`) connected to a broker; each gets one OpenBLAS thread.
 * Their output goes to `<logDir>/worker-<i>.log`.
 */
export async function spawnLocalWorkers(
  count: number,
  nats: { url: string; token?: string },
  logDir: string,
  extraArgs: string[] = [],
): Promise<LocalWorkers> {
  await Deno.mkdir(logDir, { recursive: true });
  const procs: Deno.ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    // the worker writes its log file itself (a shell opens it, then becomes the worker: the same pid): its lines
    // go on when this coordinator is killed, down to why it stopped. Through a pipe they were lost with the
    // coordinator, and the file's writable stream had kept them all until the worker exited.
    const proc = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'log=$1; shift; exec "$@" >>"$log" 2>&1',
        "sh",
        `${logDir}/worker-${i + 1}.log`,
        Deno.execPath(),
        "run",
        "-A",
        "--config",
        new URL("deno.json", ROOT).pathname,
        new URL("workers/worker.ts", ROOT).pathname,
        "--nats",
        nats.url,
        "--id",
        `local-${i + 1}`,
        ...extraArgs,
      ],
      env: { NATS_TOKEN: nats.token ?? "", OPENBLAS_NUM_THREADS: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true, // a Ctrl-C in the terminal reaches the coordinator only; it stops these in order
    }).spawn();
    procs.push(proc);
  }
  return {
    count,
    pids: procs.map((p) => p.pid),
    kill(i, signal) {
      procs[i]!.kill(signal);
    },
    async stop() {
      for (const p of procs) {
        try {
          p.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const timeout = setTimeout(() =>
        procs.forEach((p) => {
          try {
            p.kill("SIGKILL");
          } catch { /* gone */ }
        }), 5000);
      await Promise.all(procs.map((p) => p.status));
      clearTimeout(timeout);
    },
  };
}
