import { brokerConfig } from "../broker/config.ts";
import { randomHex } from "../util/hash.ts";
import { TicketsweepError } from "../util/errors.ts";
import { intFlag, parseCli } from "./common.ts";

export const BROKER_CONFIG_USAGE = `Usage: deno task broker-config --out DIR [options]

Writes a least-privilege nats-server setup for coordinator and workers on several machines:
  DIR/nats-server.conf   the broker: JetStream, two users with random passwords and per-role permissions
  DIR/coordinator.env    NATS_URL, NATS_USER, NATS_PASSWORD for deno task sweep / status / cancel
  DIR/worker.env         the same for workers: they can pull and ack trials, publish results, progress and
                         presence; they cannot create, delete or purge streams, publish trials or cancel,
                         and they receive replies on their own inbox prefix only
                         (with --worker-users N: DIR/worker-1.env ... DIR/worker-N.env, one user each, so
                         that no worker machine can see the trials another one pulls)
(the .env files are readable by their owner only). Then: nats-server -c DIR/nats-server.conf, and on
each worker machine: set -a; . ./worker.env; deno task worker.

Options:
  --out DIR        where the files go (created)
  --host H         address the broker listens on (default 0.0.0.0)
  --port P         port (default 4222)
  --public-url U   the URL workers use to reach it (default nats://<this host name>:<port>)
  --store DIR      JetStream store directory (default DIR/jetstream)
  --worker-users N one worker user per worker machine (default 1: the user worker)
  --tls-cert FILE  serve TLS with this certificate and --tls-key FILE (add --tls-ca FILE to require
                   client certificates)
  -h, --help       this text`;

/** `deno task broker-config`. */
export async function brokerConfigMain(args: string[]): Promise<number> {
  const { values } = parseCli(args, {
    out: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    "public-url": { type: "string" },
    store: { type: "string" },
    "worker-users": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "tls-ca": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, BROKER_CONFIG_USAGE);
  if (typeof values.out !== "string") throw new TicketsweepError(`--out DIR is required\n\n${BROKER_CONFIG_USAGE}`);
  const out = values.out;
  const port = intFlag("port", values.port, 4222);
  const cert = values["tls-cert"] as string | undefined, key = values["tls-key"] as string | undefined;
  if ((cert === undefined) !== (key === undefined)) throw new TicketsweepError("--tls-cert and --tls-key go together");
  await Deno.mkdir(out, { recursive: true });
  const storeDir = typeof values.store === "string" ? values.store : `${await Deno.realPath(out)}/jetstream`;
  const cfg = brokerConfig({
    host: typeof values.host === "string" ? values.host : "0.0.0.0",
    port,
    storeDir,
    coordinatorPassword: randomHex(24),
    workerPassword: Array.from(
      { length: Math.max(1, intFlag("worker-users", values["worker-users"], 1)) },
      () => randomHex(24),
    ),
    ...(cert && key ? { tls: { cert, key, ca: values["tls-ca"] as string | undefined } } : {}),
  });
  const scheme = cert ? "tls" : "nats";
  const url = typeof values["public-url"] === "string"
    ? values["public-url"]
    : `${scheme}://${Deno.hostname()}:${port}`;
  await Deno.writeTextFile(`${out}/nats-server.conf`, cfg.conf, { mode: 0o600 });
  const env = (u: { user: string; password: string }) =>
    `NATS_URL=${url}\nNATS_USER=${u.user}\nNATS_PASSWORD=${u.password}\n`;
  await Deno.writeTextFile(`${out}/coordinator.env`, env(cfg.coordinator), { mode: 0o600 });
  const envFiles = cfg.workers.map((w) => `${out}/${w.user}.env`);
  for (const [i, w] of cfg.workers.entries()) await Deno.writeTextFile(envFiles[i]!, env(w), { mode: 0o600 });
  console.log(`wrote ${out}/nats-server.conf, ${out}/coordinator.env, ${envFiles.join(", ")}
start the broker:   nats-server -c ${out}/nats-server.conf
coordinator:        set -a; . ${out}/coordinator.env; set +a; deno task sweep sweeps/quickstart.yaml
each worker:        set -a; . ./worker.env; set +a; deno task worker   (copy worker.env to the machine)`);
  return 0;
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => brokerConfigMain(Deno.args));
}
