import { brokerConfig, clusterBrokerConfig, type ClusterNode } from "../broker/config.ts";
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

With --cluster N (3 or more): DIR/node-1.conf ... DIR/node-N.conf instead of nats-server.conf, one per
machine of a JetStream cluster (server names node-1 ..., routes between them with a random password, the
same users): start each with nats-server -c node-I.conf on its host; NATS_URL lists every node, clients
fail over between them, and ticketsweep keeps 3 replicas of its streams, so losing one node loses nothing.

Options:
  --out DIR        where the files go (created)
  --host H         address the broker listens on (default 0.0.0.0)
  --port P         port (default 4222)
  --public-url U   the URL workers use to reach it (default nats://<this host name>:<port>)
  --store DIR      JetStream store directory (default DIR/jetstream; with --cluster, node-I in it)
  --worker-users N one worker user per worker machine (default 1: the user worker)
  --tls-cert FILE  serve TLS with this certificate and --tls-key FILE (add --tls-ca FILE to require
                   client certificates)
  --cluster N      a cluster of N nodes (see above)
  --hosts H1,...   with --cluster: each node's host name or address, N of them (default: all on this
                   host; nodes that share a host get ports P, P+1, ...)
  --route-port R   with --cluster: the port nodes connect to each other on (default 6222)
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
    cluster: { type: "string" },
    hosts: { type: "string" },
    "route-port": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, BROKER_CONFIG_USAGE);
  if (typeof values.out !== "string") throw new TicketsweepError(`--out DIR is required\n\n${BROKER_CONFIG_USAGE}`);
  const out = values.out;
  const port = intFlag("port", values.port, 4222);
  checkPort("port", port, port);
  const cert = values["tls-cert"] as string | undefined, key = values["tls-key"] as string | undefined;
  if ((cert === undefined) !== (key === undefined)) throw new TicketsweepError("--tls-cert and --tls-key go together");
  const tls = cert && key ? { tls: { cert, key, ca: values["tls-ca"] as string | undefined } } : {};
  const workerPassword = Array.from(
    { length: Math.max(1, intFlag("worker-users", values["worker-users"], 1)) },
    () => randomHex(24),
  );
  if (values.cluster !== undefined) return await clusterMain(values, out, port, workerPassword, tls);
  if (values.hosts !== undefined || values["route-port"] !== undefined) {
    throw new TicketsweepError("--hosts and --route-port go with --cluster N");
  }
  await Deno.mkdir(out, { recursive: true });
  const storeDir = typeof values.store === "string" ? values.store : `${await Deno.realPath(out)}/jetstream`;
  const cfg = brokerConfig({
    host: typeof values.host === "string" ? values.host : "0.0.0.0",
    port,
    storeDir,
    coordinatorPassword: randomHex(24),
    workerPassword,
    ...tls,
  });
  const scheme = cert ? "tls" : "nats";
  const url = typeof values["public-url"] === "string"
    ? values["public-url"]
    : `${scheme}://${Deno.hostname()}:${port}`;
  await Deno.writeTextFile(`${out}/nats-server.conf`, cfg.conf, { mode: 0o600 });
  const envFiles = await writeEnvFiles(out, url, cfg);
  console.log(`wrote ${out}/nats-server.conf, ${out}/coordinator.env, ${envFiles.join(", ")}
start the broker:   nats-server -c ${out}/nats-server.conf
coordinator:        set -a; . ${out}/coordinator.env; set +a; deno task sweep sweeps/quickstart.yaml
each worker:        set -a; . ./worker.env; set +a; deno task worker   (copy worker.env to the machine)`);
  return 0;
}

/** DIR/coordinator.env and one DIR/<worker user>.env per worker user (owner-only); returns the workers' files. */
async function writeEnvFiles(
  out: string,
  url: string,
  cfg: { coordinator: { user: string; password: string }; workers: { user: string; password: string }[] },
): Promise<string[]> {
  const env = (u: { user: string; password: string }) =>
    `NATS_URL=${url}\nNATS_USER=${u.user}\nNATS_PASSWORD=${u.password}\n`;
  await Deno.writeTextFile(`${out}/coordinator.env`, env(cfg.coordinator), { mode: 0o600 });
  const envFiles = cfg.workers.map((w) => `${out}/${w.user}.env`);
  for (const [i, w] of cfg.workers.entries()) await Deno.writeTextFile(envFiles[i]!, env(w), { mode: 0o600 });
  return envFiles;
}

/** `broker-config --cluster N`: DIR/node-I.conf for each node, and env files listing every node's URL. */
async function clusterMain(
  values: Record<string, string | boolean | undefined>,
  out: string,
  port: number,
  workerPassword: string[],
  tls: { tls?: { cert: string; key: string; ca?: string } },
): Promise<number> {
  const n = intFlag("cluster", values.cluster, 3);
  if (n > MAX_CLUSTER) {
    // every node routes to every other: a typo of 100000 would write 10^10 route lines
    throw new TicketsweepError(`--cluster takes at most ${MAX_CLUSTER} nodes: current value is ${n}`);
  }
  if (n < 3) {
    throw new TicketsweepError(
      `--cluster needs 3 nodes or more (a JetStream cluster keeps working while a majority of its nodes is up): ` +
        `current value is ${n}`,
    );
  }
  const hosts = typeof values.hosts === "string"
    ? values.hosts.split(",").map((h) => h.trim())
    : Array.from({ length: n }, () => Deno.hostname());
  if (hosts.length !== n || hosts.some((h) => !/^[A-Za-z0-9._-]+$|^\[[0-9a-fA-F:.]+\]$/.test(h))) {
    throw new TicketsweepError(
      `--hosts must name ${n} hosts (one per node, separated by commas): current value is '${values.hosts}'`,
    );
  }
  const routePort = intFlag("route-port", values["route-port"], 6222);
  await Deno.mkdir(out, { recursive: true });
  const storeBase = typeof values.store === "string" ? values.store : `${await Deno.realPath(out)}/jetstream`;
  const seen = new Map<string, number>();
  const nodes: ClusterNode[] = hosts.map((host, i) => {
    const k = seen.get(host) ?? 0; // nodes sharing a host: each its own ports
    seen.set(host, k + 1);
    return {
      name: `node-${i + 1}`,
      host,
      port: port + k,
      routePort: routePort + k,
      storeDir: `${storeBase}/node-${i + 1}`,
    };
  });
  const shared = Math.max(...seen.values()); // nodes on the busiest host: ports port ... port + shared - 1
  checkPort("port", port + shared - 1, port);
  checkPort("route-port", routePort + shared - 1, routePort);
  if (port < routePort + shared && routePort < port + shared) {
    throw new TicketsweepError(
      `--port ${port} and --route-port ${routePort} overlap: a host's ${shared} node${shared === 1 ? "" : "s"} ` +
        `listen${shared === 1 ? "s" : ""} for clients on ${port}-${port + shared - 1} and for the other nodes on ` +
        `${routePort}-${routePort + shared - 1}; choose ports apart`,
    );
  }
  const cfg = clusterBrokerConfig({
    listen: typeof values.host === "string" ? values.host : "0.0.0.0",
    nodes,
    routePassword: randomHex(24),
    coordinatorPassword: randomHex(24),
    workerPassword,
    ...tls,
  });
  const confFiles = nodes.map((node) => `${out}/${node.name}.conf`);
  for (const [i, file] of confFiles.entries()) await Deno.writeTextFile(file, cfg.confs[i]!, { mode: 0o600 });
  const url = typeof values["public-url"] === "string" ? values["public-url"] : cfg.urls.join(",");
  const envFiles = await writeEnvFiles(out, url, cfg);
  const width = Math.max(...hosts.map((h) => h.length));
  console.log(`wrote ${confFiles.join(", ")}, ${out}/coordinator.env, ${envFiles.join(", ")}
start the ${n} nodes, each on its host (copy ${out}/node-I.conf there):
${nodes.map((node, i) => `  on ${node.host.padEnd(width)}  nats-server -c ${confFiles[i]}`).join("\n")}
(clients use ports ${[...new Set(nodes.map((x) => x.port))].join(", ")}, the nodes each other's ${
    [
      ...new Set(nodes.map((x) => x.routePort)),
    ].join(", ")
  }; JetStream answers once a majority of the nodes is up)
coordinator:        set -a; . ${out}/coordinator.env; set +a; deno task sweep sweeps/quickstart.yaml
each worker:        set -a; . ./worker.env; set +a; deno task worker   (copy worker.env to the machine)`);
  return 0;
}

/** Most nodes `--cluster` writes (each routes to every other one). */
const MAX_CLUSTER = 32;

/** A TCP port (`last`: the highest a flag's nodes use, `given` the flag's value) in 1-65535, or an error. */
function checkPort(flag: string, last: number, given: number): void {
  if (given < 1 || last > 65_535) {
    throw new TicketsweepError(
      `--${flag} must be a TCP port from 1 to 65535${last !== given ? ` (its nodes use ${given}-${last})` : ""}: ` +
        `current value is ${given}`,
    );
  }
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => brokerConfigMain(Deno.args));
}
