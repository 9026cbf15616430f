import { connect, credsAuthenticator, nanos, type NatsConnection } from "@nats-io/transport-node";
import type { z } from "zod";
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { BrokerError } from "../util/errors.ts";
import {
  type ControlMessage,
  controlMessage,
  ControlMessageSchema,
  decodeMessage,
  encodeMessage,
  InvalidMessage,
  type ProgressMessage,
  ProgressMessageSchema,
  type ResultMessage,
  ResultMessageSchema,
  type SweepState,
  SweepStateSchema,
  trialDedupeKey,
  type TrialMessage,
  TrialMessageSchema,
  unknownSweepState,
  type WorkerPresence,
  WorkerPresenceSchema,
} from "./messages.ts";
import type {
  QueueInfo,
  RejectCounts,
  ResultSubscription,
  Subscription,
  Transport,
  TrialDelivery,
} from "./transport.ts";
import { maskedUrls } from "../util/redact.ts";

export const TRIAL_STREAM = "TICKETSWEEP_TRIALS";
export const RESULT_STREAM = "TICKETSWEEP_RESULTS";
export const SWEEP_BUCKET = "ticketsweep_sweeps";
export const WORKER_BUCKET = "ticketsweep_workers";
/**
 * A worker's presence entry (its heartbeat, written every 5 s by default: `presenceMs` in src/worker/worker.ts)
 * expires this long after it was last written: the bucket's TTL.
 */
export const PRESENCE_TTL_MS = 20_000;
/** The durable pull consumer all workers share for one sweep's trials. */
export const workerConsumer = (sweep: string) => `w-${sweep}`;
export const trialSubject = (sweep: string) => `ticketsweep.trial.${sweep}`;
export const controlSubject = (sweep: string) => `ticketsweep.control.${sweep}`;
export const resultSubject = (sweep: string) => `ticketsweep.result.${sweep}`;
export const progressSubject = (sweep: string, trial: string) => `ticketsweep.progress.${sweep}.${trial}`;

/** How to reach a broker. */
export interface NatsOptions {
  /**
   * The broker's URL, or the URLs of a cluster's nodes (an array, or one string separated by commas): the
   * client connects to one of them and fails over to the others.
   */
  servers: string | string[];
  token?: string;
  user?: string;
  pass?: string;
  /** A credentials file (JWT and NKey seed) for decentralised auth. */
  creds?: string;
  /** TLS: CA to verify the server, client certificate and key for mutual TLS (file paths). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Shown in the server's connection list. */
  name?: string;
  /** Ack deadline of a delivered trial; workers extend it while training. */
  ackWaitMs?: number;
  /** Log function for rejected messages and connection events. */
  log?: (line: string) => void;
  /**
   * Replicas of the streams and buckets this client creates: by default 3 when the server says it is part of
   * a cluster (the `cluster` field of its INFO), 1 otherwise.
   */
  replicas?: number;
  /**
   * How long a stream or bucket creation waits for a cluster to place its replicas (its nodes may still be joining
   * when everything starts at once) before it fails with what to do; default {@link PLACEMENT_WAIT_MS}.
   */
  placementWaitMs?: number;
}

/** How long a creation waits for a cluster to place its replicas by default (nodes joining take a few seconds). */
export const PLACEMENT_WAIT_MS = 30_000;

/** The URLs of `servers`: an array, or one string separated by commas (blanks around them ignored). */
export function serverList(servers: string | string[]): string[] {
  return (typeof servers === "string" ? servers.split(",") : servers).map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * How many replicas ticketsweep's streams and buckets get: `explicit` when given, else 3 on a clustered broker
 * (its INFO names a cluster: it has routes to other nodes, and JetStream keeps each replica on a different node,
 * so losing one node of three loses nothing) and 1 on a single server.
 */
export function replicasFor(info: { cluster?: string } | undefined, explicit?: number): number {
  return explicit ?? (info?.cluster ? 3 : 1);
}

/**
 * The inbox prefix of a client: `_INBOX_<user>` for a named user (the generated broker configuration lets
 * each user subscribe to its own prefix only, so no client sees the replies meant for another: the trials
 * other workers pull, their claims, the coordinator's answers), `_INBOX` otherwise (token or no auth).
 */
export function inboxPrefixOf(user?: string): string {
  return user ? `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, "_")}` : "_INBOX";
}

/** Rejects with a clear error when `p` takes longer than `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((
      _,
      reject,
    ) => (timer = setTimeout(() => reject(new BrokerError(`${what} timed out after ${ms} ms`)), ms))),
  ]);
}

/** How long past its expiry a pull is waited for before it is given up (see {@link nextWithin}). */
const PULL_GRACE_MS = 2000;

/**
 * `consumer.next`, bounded: a pull in flight when the connection drops is never answered (nats.js 3.4 waits
 * through the reconnects forever), which kept a stopping worker whose broker was gone alive until SIGKILL. Null
 * when nothing came within `expiresMs` and a grace; a message the abandoned pull still brings goes back at once.
 */
async function nextWithin(consumer: Consumer, expiresMs: number): Promise<JsMsg | null> {
  const pull = consumer.next({ expires: expiresMs });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<"gave up">((r) => (timer = setTimeout(() => r("gave up"), expiresMs + PULL_GRACE_MS)));
  const m = await Promise.race([pull, gaveUp]).finally(() => clearTimeout(timer));
  if (m !== "gave up") return m;
  pull.then((late) => late?.nak(), () => {});
  return null;
}

/** Connects to a NATS server with JetStream; reconnects forever after a loss. */
export async function connectNats(opts: NatsOptions): Promise<NatsTransport> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: serverList(opts.servers),
      token: opts.token,
      user: opts.user,
      pass: opts.pass,
      ...(opts.creds ? { authenticator: credsAuthenticator(await Deno.readFile(opts.creds)) } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      name: opts.name ?? "ticketsweep",
      inboxPrefix: inboxPrefixOf(opts.user),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (e) {
    throw new BrokerError(
      `cannot connect to NATS at ${maskedUrls(serverList(opts.servers).join(","))}: ${(e as Error).message}. ` +
        "Check the URL, that nats-server runs with JetStream (-js), and the token or user/password.",
      { cause: e },
    );
  }
  // a cluster that has just started answers JetStream requests once its nodes have elected a meta leader
  const jsDeadline = Date.now() + (nc.info?.cluster ? 15_000 : 0);
  let jsm: JetStreamManager;
  for (;;) {
    try {
      jsm = await jetstreamManager(nc);
      break;
    } catch (e) {
      if (Date.now() < jsDeadline) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      nc.close();
      throw new BrokerError(
        `NATS at ${maskedUrls(serverList(opts.servers).join(","))} has no JetStream: start nats-server with -js`,
        { cause: e },
      );
    }
  }
  return new NatsTransport(nc, jsm, opts);
}

/** The {@link Transport} over NATS JetStream (docs/architecture.md, "Wire protocol"). */
/**
 * How often a worker reads the list of sweeps it serves (new ones to take turns with, cancelled or finished ones to
 * leave). At 500 ms, 64 worker connections made 128 reads a second: a no-op dispatch of 20,000 trials
 * (bench/dispatch.ts, 2026-12-01, load ~5) cost nats-server 11.1 CPU seconds and the workers 11.2; at 2 s, 9.4 and 9.8.
 */
const SERVED_REFRESH_MS = 2000;

export class NatsTransport implements Transport {
  readonly kind = "nats" as const;
  readonly nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #opts: NatsOptions;
  /** Replicas of the streams and buckets this client creates (see {@link replicasFor}). */
  readonly replicas: number;
  readonly #rejected: RejectCounts = {};
  readonly #consumers = new Map<string, Consumer>();
  readonly #opened = new Set<string>();
  /** The results consumer of each sweep this client consumes. */
  readonly #resultConsumers = new Map<string, string>();
  /** The `caughtUp` of each results subscription not caught up yet, resolved at once when its sweep is forgotten. */
  readonly #catchingUp = new Set<{ sweep: string; resolve: () => void }>();
  /** The sweeps this client serves as a worker (see {@link NatsTransport.pullTrial}) and when the list was read. */
  #served: { at: number; ids: string[] } = { at: 0, ids: [] };
  #turn = 0;
  #sweepKv?: Promise<KV>;
  #workerKv?: Promise<KV>;

  constructor(nc: NatsConnection, jsm: JetStreamManager, opts: NatsOptions) {
    this.nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#opts = opts;
    this.replicas = replicasFor(nc.info, opts.replicas);
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnect") opts.log?.(`nats: ${s.type}`);
      }
    })().catch(() => {});
  }

  async setup(): Promise<void> {
    await this.#ensureStream(TRIAL_STREAM, {
      subjects: ["ticketsweep.trial.>"],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(60 * 60 * 1000),
      max_msg_size: 1024 * 1024,
    });
    await this.#ensureStream(RESULT_STREAM, {
      subjects: ["ticketsweep.result.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: nanos(60 * 60 * 1000),
      max_msg_size: 1024 * 1024,
    });
    await this.#kv("sweeps");
    await this.#kv("workers");
    for (const bucket of [SWEEP_BUCKET, WORKER_BUCKET]) {
      await this.#replicate(`KV_${bucket}`, (await this.#jsm.streams.info(`KV_${bucket}`)).config.num_replicas);
    }
  }

  /** The sweep state bucket, or the expiring worker presence bucket (created on first use). */
  #kv(which: "sweeps" | "workers"): Promise<KV> {
    const kvm = new Kvm(this.nc);
    // open first: a least-privilege worker may use a bucket but not create one
    const openOrCreate = async (name: string, opts: Parameters<Kvm["create"]>[1]) => {
      if ((await this.#streamReplicas(`KV_${name}`)) !== null) return await kvm.open(name);
      return await this.#placed(`KV_${name}`, () => kvm.create(name, { ...opts, replicas: this.replicas }));
    };
    if (which === "sweeps") {
      this.#sweepKv ??= openOrCreate(SWEEP_BUCKET, { history: 1, storage: StorageType.File });
      this.#sweepKv.catch(() => (this.#sweepKv = undefined));
      return this.#sweepKv;
    }
    this.#workerKv ??= openOrCreate(WORKER_BUCKET, { history: 1, ttl: PRESENCE_TTL_MS, storage: StorageType.File });
    this.#workerKv.catch(() => (this.#workerKv = undefined));
    return this.#workerKv;
  }

  /** Creates the sweep's worker consumer and, when the sweep is unknown, marks it running. */
  async #openSweep(sweepId: string): Promise<void> {
    if (this.#opened.has(sweepId)) return;
    await this.#ensureConsumer(TRIAL_STREAM, {
      durable_name: workerConsumer(sweepId),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.#opts.ackWaitMs ?? 30_000),
      // unbounded: a worker records a trial delivered more than its max_attempts times as failed (gave up),
      // so a trial never sits in the queue undeliverable
      max_deliver: -1,
      filter_subject: trialSubject(sweepId),
    });
    if (!(await this.getSweepState(sweepId))) {
      await this.putSweepState(unknownSweepState(sweepId));
    }
    this.#opened.add(sweepId);
    // a client that opens a sweep it does not serve yet reads the list again at its next pull, not SERVED_REFRESH_MS on
    if (!this.#served.ids.includes(sweepId)) this.#served.at = 0;
  }

  /** Creates a durable consumer unless it exists; an existing one keeps its settings (adding would update them). */
  async #ensureConsumer(stream: string, cfg: Parameters<JetStreamManager["consumers"]["add"]>[1]): Promise<void> {
    try {
      await this.#jsm.consumers.info(stream, cfg.durable_name!);
      return;
    } catch {
      // not there yet
    }
    await this.#jsm.consumers.add(stream, cfg).catch((e) => {
      if (!/already in use|exists/i.test(String(e))) throw e;
    });
  }

  async #ensureStream(name: string, cfg: Record<string, unknown>): Promise<void> {
    const replicas = await this.#streamReplicas(name);
    if (replicas === null) {
      await this.#placed(name, () => this.#jsm.streams.add({ name, ...cfg, num_replicas: this.replicas }));
    } else {
      await this.#replicate(name, replicas);
    }
  }

  /**
   * The replicas of a stream, or null when it does not exist. Any other failure (a timeout while a cluster elects
   * the stream's leader, say) is tried again for up to 10 s, then thrown: creating the stream then would fail, or
   * replace nothing.
   */
  async #streamReplicas(name: string): Promise<number | null> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return (await this.#jsm.streams.info(name)).config.num_replicas;
      } catch (e) {
        if (/stream not found/i.test(String(e))) return null;
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Raises a stream's replicas to {@link replicas}: one created while the broker was a single server gets its
   * copies on the other nodes once the broker is a cluster (JetStream copies the stored messages over).
   */
  async #replicate(stream: string, current: number): Promise<void> {
    if (current >= this.replicas) return;
    await this.#placed(stream, () => this.#jsm.streams.update(stream, { num_replicas: this.replicas }));
    this.#opts.log?.(`nats: ${stream} now has ${this.replicas} replicas (it had ${current})`);
  }

  /**
   * Runs a stream creation or update. When the cluster cannot place its replicas (yet: nodes started at the same
   * time are still joining), it tries again every half second for {@link NatsOptions.placementWaitMs}, then says what
   * to do.
   */
  async #placed<T>(stream: string, f: () => Promise<T>): Promise<T> {
    const waitMs = this.#opts.placementWaitMs ?? PLACEMENT_WAIT_MS;
    const deadline = Date.now() + waitMs;
    for (let tries = 0;; tries++) {
      try {
        return await f();
      } catch (e) {
        if (this.replicas <= 1 || !/insufficient resources|replicas|no suitable peers/i.test(String(e))) throw e;
        if (Date.now() < deadline) {
          if (tries === 0) {
            this.#opts.log?.(
              `nats: waiting up to ${Math.round(waitMs / 1000)} s for the cluster to place ${this.replicas} replicas ` +
                `of ${stream} (${(e as Error).message}): its nodes may still be joining`,
            );
          }
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw new BrokerError(
          `the broker is a cluster, but it cannot keep ${this.replicas} replicas of ${stream} (${
            (e as Error).message
          }, for ${Math.round(waitMs / 1000)} s): start all of its nodes (3 for the configuration broker-config ` +
            "--cluster 3 writes), or set TICKETSWEEP_REPLICAS to the number of nodes with JetStream",
          { cause: e },
        );
      }
    }
  }

  #reject(kind: string, e: unknown): void {
    this.#rejected[kind] = (this.#rejected[kind] ?? 0) + 1;
    this.#opts.log?.(e instanceof InvalidMessage ? e.message : `rejected ${kind} message: ${String(e)}`);
  }

  async publishTrial(trial: TrialMessage, republish = 0): Promise<void> {
    await this.#openSweep(trial.sweep_id);
    await this.#js.publish(trialSubject(trial.sweep_id), encodeMessage(trial), {
      msgID: trialDedupeKey(trial, republish),
    });
  }

  /**
   * The sweeps a worker serves, sorted: those whose state in the sweep bucket is `running`, or `stopped` (its
   * coordinator exited before the end: workers go on with its queued trials, their results wait on the broker
   * for `--resume`), not `complete` or `cancelled`. Read again at most every {@link SERVED_REFRESH_MS} (and at once
   * after this client opened a sweep it did not serve); when the bucket cannot be read, the last list stands.
   */
  async #servedSweeps(): Promise<string[]> {
    // read again every SERVED_REFRESH_MS: each read is a stream-info request and a get per sweep, per worker
    if (Date.now() - this.#served.at > SERVED_REFRESH_MS) {
      const states = await this.listSweepStates().catch(() => null);
      if (states) {
        this.#served = {
          at: Date.now(),
          ids: states.filter((s) => s.status === "running" || s.status === "stopped").map((s) => s.sweep_id).sort(),
        };
      }
    }
    return this.#served.ids;
  }

  /**
   * Serves the sweeps of `#servedSweeps`: one is long-polled on its consumer (3 s at most, then the list is read
   * again); several take turns, starting after the sweep served last: the first whose consumer has a trial to
   * deliver (`#hasPending`) is pulled from; with none, it waits. Null when nothing came before the deadline.
   */
  async pullTrial(expiresMs: number): Promise<TrialDelivery | null> {
    const deadline = Date.now() + expiresMs;
    // JetStream holds a pull request 1 s at least: a shorter wait (a worker filling a pack, which an adaptive
    // search's one trial per worker leaves empty) pulls only once a trial is queued, else it would stall its worker
    const onlyQueued = expiresMs < 1000;
    while (Date.now() < deadline) {
      const sweeps = await this.#servedSweeps();
      if (sweeps.length === 1) {
        // long poll (a few seconds at most, then look for new sweeps); a sweep without a queue (yet) answers
        // at once: go on waiting until the deadline
        const d = await this.#pullFrom(sweeps[0]!, Math.min(3000, deadline - Date.now()), onlyQueued);
        if (d) return d;
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
        continue;
      }
      // several sweeps take turns: starting after the one served last, the first with trials to deliver
      for (let i = 0; i < sweeps.length; i++) {
        const sweep = sweeps[(this.#turn + i) % sweeps.length]!;
        if (!(await this.#hasPending(sweep))) continue;
        const d = await this.#pullFrom(sweep, onlyQueued ? Math.max(0, deadline - Date.now()) : 1000, onlyQueued);
        if (d) {
          this.#turn = (sweeps.indexOf(sweep) + 1) % sweeps.length;
          return d;
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
    return null;
  }

  /**
   * Whether a sweep's worker consumer may have a trial to deliver (false when it does not exist): new ones
   * (`num_pending`) or delivered ones not acked (`num_ack_pending`), which include expired deliveries waiting
   * to be redelivered, so that a redelivery is always pulled even while another sweep shares the broker.
   */
  async #hasPending(sweep: string): Promise<boolean> {
    const c = await this.#consumer(sweep);
    if (!c) return false;
    try {
      const info = await c.info();
      return info.num_pending + info.num_ack_pending > 0;
    } catch {
      this.#consumers.delete(sweep); // deleted (a sweep started over): look it up again next time
      return false;
    }
  }

  /** Whether a sweep's worker consumer has a trial no worker was given yet (false when it is gone). */
  async #queued(sweep: string, consumer: Consumer): Promise<boolean> {
    try {
      return (await consumer.info()).num_pending > 0;
    } catch {
      this.#consumers.delete(sweep); // deleted (a sweep started over): look it up again next time
      return false;
    }
  }

  async #consumer(sweep: string): Promise<Consumer | null> {
    let consumer = this.#consumers.get(sweep);
    if (!consumer) {
      try {
        consumer = await this.#js.consumers.get(TRIAL_STREAM, workerConsumer(sweep));
      } catch {
        return null; // the sweep's queue is not there (yet, or any more)
      }
      this.#consumers.set(sweep, consumer);
    }
    return consumer;
  }

  async #pullFrom(sweep: string, expiresMs: number, onlyQueued: boolean): Promise<TrialDelivery | null> {
    const consumer = await this.#consumer(sweep);
    if (!consumer) {
      await new Promise((r) => setTimeout(r, Math.min(250, expiresMs)));
      return null;
    }
    const deadline = Date.now() + expiresMs;
    while (true) {
      if (onlyQueued && !(await this.#queued(sweep, consumer))) {
        const left = deadline - Date.now();
        if (left <= 0) return null;
        await new Promise((r) => setTimeout(r, Math.min(50, left)));
        continue;
      }
      const m = await nextWithin(consumer, Math.max(1000, deadline - Date.now())).catch((e) => {
        if (/not found|deleted/i.test(String(e))) this.#consumers.delete(sweep); // the sweep started over
        return null;
      });
      if (!m) return null;
      let trial: TrialMessage;
      try {
        trial = decodeMessage(TrialMessageSchema, "trial", m.data);
      } catch (e) {
        this.#reject("trial", e);
        m.term();
        continue;
      }
      return {
        trial,
        deliveryCount: m.info.deliveryCount,
        ack: async () => {
          await m.ackAck();
        },
        nak: (delayMs) => m.nak(delayMs),
        working: () => m.working(),
        term: () => m.term(),
      };
    }
  }

  async publishResult(result: ResultMessage): Promise<void> {
    // no message id: the broker's deduplication must never let one client's message drop another's result
    await this.#js.publish(resultSubject(result.sweep_id), encodeMessage(result));
  }

  async consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<ResultSubscription> {
    // the stream sequence of the sweep's last stored result (0: none), read before the consumer exists: the consumer
    // delivers every stored result in stream order first, so once the handler has settled on this one, it has
    // settled on every result stored now (caughtUp)
    const lastStored = await this.#jsm.streams.getMessage(RESULT_STREAM, { last_by_subj: resultSubject(sweepId) });
    const last = lastStored?.seq ?? 0;
    const catching = { sweep: sweepId, resolve: () => {} };
    const caughtUp = new Promise<void>((r) => (catching.resolve = r));
    if (last === 0) catching.resolve();
    // a consumer of this coordinator alone, from the first stored result: a result an earlier coordinator
    // handled but did not keep (a torn results.jsonl line) is delivered again; the broker removes the
    // consumer a few minutes after this coordinator is gone
    const name = `coord-${sweepId}-${crypto.randomUUID().slice(0, 8)}`;
    await this.#jsm.consumers.add(RESULT_STREAM, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      filter_subject: resultSubject(sweepId),
      inactive_threshold: nanos(5 * 60_000),
    });
    this.#resultConsumers.set(sweepId, name);
    const consumer = await this.#js.consumers.get(RESULT_STREAM, name);
    // pull requests of 5 s (heartbeats every 2.5 s) rather than nats.js's 30 s: after a failover (the node with the
    // consumer's leader lost, or this client's connection moved to another node) the client finds the consumer's
    // new leader and pulls again within seconds; with 30 s it waits that long after each failed look-up
    const messages = await consumer.consume({ max_messages: 64, expires: 5000 });
    if (last > 0) {
      this.#catchingUp.add(catching); // forgetSweep resolves it
      caughtUp.then(() => this.#catchingUp.delete(catching));
    }
    const done = (async () => {
      for await (const m of messages) {
        let r: ResultMessage;
        try {
          r = decodeMessage(ResultMessageSchema, "result", m.data);
        } catch (e) {
          this.#reject("result", e);
          m.term();
          if (m.seq >= last) catching.resolve();
          continue;
        }
        try {
          await handler(r);
          m.ack();
        } catch {
          m.nak(1000); // the handler said why; the same result comes back in a second
        }
        if (m.seq >= last) catching.resolve();
      }
    })().finally(() => catching.resolve());
    return {
      caughtUp,
      stop: async () => {
        catching.resolve();
        await messages.close();
        await done.catch(() => {});
        if (this.#resultConsumers.get(sweepId) === name) this.#resultConsumers.delete(sweepId);
        await this.#jsm.consumers.delete(RESULT_STREAM, name).catch(() => {});
      },
    };
  }

  async queueInfo(sweepId: string): Promise<QueueInfo> {
    const out: QueueInfo = { queued: 0, running: 0, unrecorded: 0 };
    try {
      const w = await this.#jsm.consumers.info(TRIAL_STREAM, workerConsumer(sweepId));
      out.queued = w.num_pending;
      out.running = w.num_ack_pending;
    } catch (e) {
      if (!/not found/i.test(String(e))) throw e;
    }
    const mine = this.#resultConsumers.get(sweepId);
    if (mine) {
      const c = await this.#jsm.consumers.info(RESULT_STREAM, mine);
      out.unrecorded = c.num_pending + c.num_ack_pending;
    }
    return out;
  }

  async forgetSweep(sweepId: string): Promise<void> {
    // a broker that never held the sweep (a new private broker's empty store) has nothing to forget
    const absent = (e: unknown) => {
      if (!/not found/i.test(String(e))) throw e;
    };
    await this.#jsm.streams.purge(TRIAL_STREAM, { filter: trialSubject(sweepId) }).catch(absent);
    await this.#jsm.streams.purge(RESULT_STREAM, { filter: resultSubject(sweepId) }).catch(absent);
    await this.#jsm.consumers.delete(TRIAL_STREAM, workerConsumer(sweepId)).catch(absent);
    for (const c of this.#catchingUp) if (c.sweep === sweepId) c.resolve(); // its stored results are gone
    await (await this.#kv("sweeps")).delete(sweepId);
    this.#opened.delete(sweepId);
    this.#consumers.delete(sweepId);
  }

  publishProgress(p: ProgressMessage): void {
    try {
      this.nc.publish(progressSubject(p.sweep_id, p.trial_id), encodeMessage(p));
    } catch {
      // progress is lossy by design
    }
  }

  subscribeProgress(sweepId: string, fn: (p: ProgressMessage) => void): Subscription {
    const sub = this.nc.subscribe(`ticketsweep.progress.${sweepId}.>`, {
      callback: (err, m) => {
        if (err) return;
        try {
          fn(decodeMessage(ProgressMessageSchema, "progress", m.data));
        } catch (e) {
          this.#reject("progress", e);
        }
      },
    });
    return {
      stop: () => {
        sub.unsubscribe();
        return Promise.resolve();
      },
    };
  }

  async putSweepState(state: SweepState): Promise<void> {
    await (await this.#kv("sweeps")).put(state.sweep_id, encodeMessage(state));
  }

  async getSweepState(sweepId: string): Promise<SweepState | null> {
    const e = await (await this.#kv("sweeps")).get(sweepId);
    if (!e || e.operation !== "PUT") return null;
    try {
      return decodeMessage(SweepStateSchema, "sweep state", e.value);
    } catch (err) {
      this.#reject("sweep state", err);
      return null;
    }
  }

  async listSweepStates(): Promise<SweepState[]> {
    return await this.#listBucket("sweeps", SweepStateSchema, "sweep state");
  }

  async putPresence(p: WorkerPresence): Promise<void> {
    await (await this.#kv("workers")).put(`${p.host}.${p.worker}`.replace(/[^-/_=.a-zA-Z0-9]/g, "_"), encodeMessage(p));
  }

  async listPresence(): Promise<WorkerPresence[]> {
    return await this.#listBucket("workers", WorkerPresenceSchema, "presence");
  }

  /**
   * Every live entry of a bucket. The keys come from one stream-info request listing the bucket's subjects
   * (not from an ordered consumer, which a least-privilege worker could not create and which can stall), each
   * value from a direct get; the whole call gives up after 5 s.
   */
  async #listBucket<T>(which: "sweeps" | "workers", schema: z.ZodType<T>, kind: string): Promise<T[]> {
    return await withTimeout(this.#listBucketNow(which, schema, kind), 5000, `listing ${kind} entries`);
  }

  async #listBucketNow<T>(which: "sweeps" | "workers", schema: z.ZodType<T>, kind: string): Promise<T[]> {
    const kv = await this.#kv(which);
    const bucket = which === "sweeps" ? SWEEP_BUCKET : WORKER_BUCKET;
    const prefix = `$KV.${bucket}.`;
    const info = await this.#jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
    const keys = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
    const out: T[] = [];
    for (const key of keys) {
      const e = await kv.get(key);
      if (!e || e.operation !== "PUT") continue;
      try {
        out.push(decodeMessage(schema, kind, e.value));
      } catch (err) {
        this.#reject(kind, err);
      }
    }
    return out;
  }

  async cancelSweep(sweepId: string): Promise<number> {
    const state = await this.getSweepState(sweepId);
    if (!state) throw new BrokerError(`no sweep ${sweepId} on this broker (deno task status lists them)`);
    await this.putSweepState({ ...state, status: "cancelled", updated_at: new Date().toISOString() });
    this.#served.at = 0; // this client serves it no more from now on (others within SERVED_REFRESH_MS)
    let purged = 0;
    try {
      purged = (await this.#jsm.streams.purge(TRIAL_STREAM, { filter: trialSubject(sweepId) })).purged;
    } catch (e) {
      this.#opts.log?.(`cancel ${sweepId}: purge failed: ${(e as Error).message}`);
    }
    const msg = controlMessage(sweepId);
    this.nc.publish(controlSubject(sweepId), encodeMessage(msg));
    await this.nc.flush();
    return purged;
  }

  async stopTrial(sweepId: string, trialId: string): Promise<void> {
    const msg = controlMessage(sweepId, trialId);
    this.nc.publish(controlSubject(sweepId), encodeMessage(msg));
    await this.nc.flush();
  }

  subscribeControl(fn: (c: ControlMessage) => void): Subscription {
    const sub = this.nc.subscribe("ticketsweep.control.>", {
      callback: (err, m) => {
        if (err) return;
        try {
          fn(decodeMessage(ControlMessageSchema, "control", m.data));
        } catch (e) {
          this.#reject("control", e);
        }
      },
    });
    return {
      stop: () => {
        sub.unsubscribe();
        return Promise.resolve();
      },
    };
  }

  rejected(): RejectCounts {
    return { ...this.#rejected };
  }

  async close(): Promise<void> {
    // draining waits for the broker; while it is unreachable, close at once
    await withTimeout(this.nc.drain(), 5000, "draining the connection").catch(() => this.nc.close());
  }
}
