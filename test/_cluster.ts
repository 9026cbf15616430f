// Helpers for tests with a real nats-server, a coordinator process and worker processes.
import { brokerConfig } from "../src/broker/config.ts";
import { freePort, type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import { type LocalWorkers, spawnLocalWorkers } from "../src/coordinator/local_workers.ts";
import { parseSpec } from "../src/spec/load.ts";
import { expandTrials, sweepIdOf } from "../src/spec/expand.ts";
import { ROOT, tinySpecText } from "./_fixtures.ts";
export { readResults as recorded } from "./_fixtures.ts";

/**
 * A spec file of `n` synthetic trials, each training `epochs` epochs: about 5 ms an epoch (7 steps) on a cluster
 * worker's `js` engine (measured on a 2-core machine shared with other work: 400 epochs in about 2 s), so
 * `epochs` sets how long a trial stays running.
 */
export async function writeSpec(dir: string, name: string, n: number, epochs: number, extra = ""): Promise<{
  path: string;
  sweepId: string;
  trialIds: string[];
}> {
  const text = tinySpecText(name, n, extra, epochs);
  const path = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(path, text);
  const spec = parseSpec(text);
  return { path, sweepId: sweepIdOf(spec), trialIds: expandTrials(spec).map((t) => t.id).sort() };
}

/** A coordinator process; `status` resolves once it exited and its output is in the log file. */
export interface Coordinator {
  status: Promise<Deno.CommandStatus>;
  kill(signal: Deno.Signal): void;
}

/** Starts `deno task sweep` as a process against a broker; its output goes to the file `log`. */
export function startCoordinator(args: string[], server: { url: string; token: string }, log: string): Coordinator {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/sweep.ts`, ...args, "--nats", server.url],
    env: { NATS_TOKEN: server.token, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const piped = (async () => {
    const f = await Deno.open(log, { create: true, append: true, write: true });
    const copy = async (r: ReadableStream<Uint8Array>) => {
      for await (const chunk of r) await f.write(chunk);
    };
    await Promise.all([copy(p.stdout), copy(p.stderr)]).catch(() => {});
    f.close();
  })();
  return {
    status: (async () => {
      const st = await p.status;
      await piped;
      return st;
    })(),
    kill: (sig) => p.kill(sig),
  };
}

/** Waits until `cond` holds (polling), or fails after `ms`. */
export async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A nats-server in a temp dir on the configuration `deno task broker-config` generates: users "coordinator" and
 * "worker" (or worker, worker2, ... for several passwords) with these passwords.
 */
export async function rolesBroker(coordinatorPassword: string, workerPassword: string | string[]) {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const cfg = brokerConfig({ host: "127.0.0.1", port, storeDir: `${dir}/js`, coordinatorPassword, workerPassword });
  await Deno.writeTextFile(`${dir}/nats-server.conf`, cfg.conf);
  const server = await startLocalServer(`${dir}/js`, { port, token: "", configFile: `${dir}/nats-server.conf` });
  return { dir, port, server, cfg };
}

/** A test cluster: a broker and worker processes in a temp dir; `close` tears everything down. */
export async function cluster(workers: number, opts: { port?: number } = {}): Promise<{
  dir: string;
  server: LocalServer;
  workers: LocalWorkers[];
  addWorkers(n: number, args?: string[]): Promise<LocalWorkers>;
  close(): Promise<void>;
}> {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`, opts);
  const c = {
    dir,
    server,
    workers: [] as LocalWorkers[],
    async addWorkers(n: number, args: string[] = []) {
      const w = await spawnLocalWorkers(n, { url: c.server.url, token: c.server.token }, `${dir}/logs`, [
        "--backend",
        "js",
        ...args,
      ]);
      c.workers.push(w);
      return w;
    },
    async close() {
      for (const w of c.workers) await w.stop().catch(() => {});
      await c.server.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  if (workers) await c.addWorkers(workers);
  return c;
}

/** Speaks the NATS text protocol: the server's INFO line, then its answer to CONNECT (with `auth`) and PING. */
export async function rawConnect(
  port: number,
  auth: Record<string, string>,
): Promise<{ info: string; answer: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(4096);
  let text = "";
  const read = async () => {
    const n = await conn.read(buf).catch(() => null);
    if (n) text += new TextDecoder().decode(buf.subarray(0, n));
    return n;
  };
  while (!text.includes("\r\n") && (await read())) { /* the INFO line */ }
  const info = text;
  text = "";
  await conn.write(new TextEncoder().encode(`CONNECT ${JSON.stringify({ verbose: false, ...auth })}\r\nPING\r\n`));
  const deadline = Date.now() + 3000;
  while (!/PONG|-ERR/.test(text) && Date.now() < deadline && (await read())) { /* more */ }
  conn.close();
  return { info, answer: text };
}
