import { BrokerError } from "../util/errors.ts";

/** A private nats-server on a free loopback port, with a random token and its store in a given directory. */
export interface LocalServer {
  url: string;
  token: string;
  port: number;
  process: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** Whether `nats-server` can be started (on PATH, or named by `NATS_SERVER_BIN`). */
export async function natsServerBinary(): Promise<string | null> {
  const bin = Deno.env.get("NATS_SERVER_BIN") ?? "nats-server";
  try {
    const out = await new Deno.Command(bin, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return out.success ? bin : null;
  } catch {
    return null;
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The name of the private broker's configuration file in its store directory. */
export const LOCAL_SERVER_CONFIG = "nats-server.conf";
/**
 * The private broker's log file in its store directory. Not its stderr: that pipe ends with the coordinator, and
 * nats-server dies of SIGPIPE at its next line (without writing its store out) once a killed coordinator is gone.
 */
export const LOCAL_SERVER_LOG = "nats-server.log";

/**
 * Writes `storeDir/nats-server.conf` (mode 0600, replacing any earlier one): 127.0.0.1:`port`, JetStream stored
 * in `storeDir`, its log in `storeDir/nats-server.log`, and the token (none when empty). Returns its path.
 */
async function writeServerConfig(storeDir: string, port: number, token: string): Promise<string> {
  const path = `${storeDir}/${LOCAL_SERVER_CONFIG}`;
  // JSON strings are valid quoted strings of the nats-server configuration format
  const conf = [
    `host: "127.0.0.1"`,
    `port: ${port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `log_file: ${JSON.stringify(`${storeDir}/${LOCAL_SERVER_LOG}`)}`,
    ...(token ? [`authorization { token: ${JSON.stringify(token)} }`] : []),
    "",
  ].join("\n");
  await Deno.remove(path).catch(() => {}); // a new file, so that its mode is ours whatever the old one's
  await Deno.writeTextFile(path, conf, { mode: 0o600, createNew: true });
  await Deno.chmod(path, 0o600); // the umask only narrows it; this makes sure
  return path;
}

/**
 * Starts nats-server with JetStream on 127.0.0.1 only, and waits until it accepts connections.
 * @param opts.port a fixed port (restart tests reuse one); a free one by default.
 */
export async function startLocalServer(
  storeDir: string,
  opts: { port?: number; token?: string; bin?: string; extraArgs?: string[]; configFile?: string } = {},
): Promise<LocalServer> {
  const bin = opts.bin ?? (await natsServerBinary());
  if (!bin) throw new BrokerError("nats-server is not on PATH; install it (apt-get install nats-server)");
  const port = opts.port ?? freePort();
  const token = opts.token ?? crypto.randomUUID().replaceAll("-", "");
  await Deno.mkdir(storeDir, { recursive: true });
  // with a configuration file (broker-config's), it decides address, store and auth; only the port is forced.
  // Otherwise ours, readable by its owner only: a token on the command line would show in `ps`.
  const args = opts.configFile
    ? ["-c", opts.configFile, "-p", String(port)]
    : ["-c", await writeServerConfig(storeDir, port, token), ...(opts.extraArgs ?? [])];
  // its own process group: a Ctrl-C in the coordinator's terminal reaches the coordinator alone, which then stops
  // the sweep (and this broker) in order, instead of the broker vanishing under it
  const process = new Deno.Command(bin, { args, stdout: "null", stderr: "piped", stdin: "null", detached: true })
    .spawn();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        try {
          process.kill("SIGKILL");
        } catch { /* it exited by itself */ }
        throw new BrokerError(`nats-server did not start on 127.0.0.1:${port}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    token,
    port,
    process,
    async stop() {
      try {
        process.kill("SIGTERM");
      } catch { /* already gone */ }
      await process.stderr.cancel().catch(() => {});
      await process.status;
    },
  };
}

/** The watchdog process of a private broker ({@link spawnBrokerWatchdog}). */
export interface BrokerWatchdog {
  pid: number;
  /** Stops the watchdog (not the broker). */
  stop(): Promise<void>;
}

/**
 * Starts the watchdog of a private broker (src/broker/watchdog.ts): a process of its own, so that it outlives a
 * coordinator killed with SIGKILL, which stops the broker once its store is deleted and this coordinator is gone,
 * another coordinator holds `runDir`, or no coordinator has held `runDir` for `graceMs`; it exits when the broker
 * does. Its lines go to `logFile`.
 */
export async function spawnBrokerWatchdog(
  server: Pick<LocalServer, "url" | "process">,
  storeDir: string,
  runDir: string,
  graceMs: number,
  logFile: string,
): Promise<BrokerWatchdog> {
  await Deno.mkdir(logFile.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      new URL("./watchdog.ts", import.meta.url).pathname,
      "--broker-pid",
      String(server.process.pid),
      "--store",
      storeDir,
      "--run-dir",
      runDir,
      "--coordinator-pid",
      String(Deno.pid),
      "--grace-ms",
      String(graceMs),
      "--log",
      logFile,
      // last: `sweep`'s orphan check knows the processes of a run by the broker URL on their command line
      "--url",
      server.url,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true, // its own process group, like the broker: a Ctrl-C in the terminal reaches the coordinator
  }).spawn();
  return {
    pid: proc.pid,
    async stop() {
      try {
        proc.kill("SIGTERM");
      } catch { /* gone */ }
      await proc.status;
    },
  };
}
