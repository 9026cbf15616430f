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
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { BrokerError } from "../util/errors.ts";
import {
  type ControlMessage,
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
  type TrialMessage,
  TrialMessageSchema,
  unknownSweepState,
  WIRE_VERSION,
  type WorkerPresence,
  WorkerPresenceSchema,
} from "./messages.ts";
import type { RejectCounts, Subscription, Transport, TrialDelivery } from "./transport.ts";

export const TRIAL_STREAM = "TICKETSWEEP_TRIALS";
export const RESULT_STREAM = "TICKETSWEEP_RESULTS";
export const SWEEP_BUCKET = "ticketsweep_sweeps";
export const WORKER_BUCKET = "ticketsweep_workers";
/** A worker's presence entry expires this long after its last heartbeat. */
export const PRESENCE_TTL_MS = 20_000;
/** The durable pull consumer all workers share for one sweep's trials. */
export const workerConsumer = (sweep: string) => `w-${sweep}`;
export const trialSubject = (sweep: string) => `ticketsweep.trial.${sweep}`;
export const controlSubject = (sweep: string) => `ticketsweep.control.${sweep}`;
export const resultSubject = (sweep: string) => `ticketsweep.result.${sweep}`;
export const progressSubject = (sweep: string, trial: string) => `ticketsweep.progress.${sweep}.${trial}`;

/** How to reach a broker. */
export interface NatsOptions {
  servers: string;
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

/** Connects to a NATS server with JetStream; reconnects forever after a loss. */
export async function connectNats(opts: NatsOptions): Promise<NatsTransport> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.servers,
      token: opts.token,
      user: opts.user,
      pass: opts.pass,
      ...(opts.creds ? { authenticator: credsAuthenticator(await Deno.readFile(opts.creds)) } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      name: opts.name ?? "ticketsweep",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (e) {
    throw new BrokerError(
      `cannot connect to NATS at ${opts.servers}: ${(e as Error).message}. ` +
        "Check the URL, that nats-server runs with JetStream (-js), and the token or user/password.",
      { cause: e },
    );
  }
  const jsm = await jetstreamManager(nc).catch((e) => {
    nc.close();
    throw new BrokerError(`NATS at ${opts.servers} has no JetStream: start nats-server with -js`, { cause: e });
  });
  return new NatsTransport(nc, jsm, opts);
}

/** The JetStream work queue (see DESIGN.md, "Wire protocol"). */
export class NatsTransport implements Transport {
  readonly kind = "nats" as const;
  readonly nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #opts: NatsOptions;
  readonly #rejected: RejectCounts = {};
  readonly #consumers = new Map<string, Consumer>();
  readonly #opened = new Set<string>();
  /** Sweeps workers serve, refreshed from the sweep bucket, and when each was last found empty. */
  #served: { at: number; ids: string[] } = { at: 0, ids: [] };
  #turn = 0;
  #sweepKv?: Promise<KV>;
  #workerKv?: Promise<KV>;

  constructor(nc: NatsConnection, jsm: JetStreamManager, opts: NatsOptions) {
    this.nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#opts = opts;
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
  }

  /** The sweep state bucket, or the expiring worker presence bucket (created on first use). */
  #kv(which: "sweeps" | "workers"): Promise<KV> {
    const kvm = new Kvm(this.nc);
    // open first: a least-privilege worker may use a bucket but not create one
    const openOrCreate = async (name: string, opts: Parameters<Kvm["create"]>[1]) => {
      try {
        const info = await this.#jsm.streams.info(`KV_${name}`);
        if (info) return await kvm.open(name);
      } catch { /* not there yet */ }
      return await kvm.create(name, opts);
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
      max_deliver: 25,
      filter_subject: trialSubject(sweepId),
    });
    if (!(await this.getSweepState(sweepId))) {
      await this.putSweepState(unknownSweepState(sweepId));
    }
    this.#opened.add(sweepId);
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
    try {
      await this.#jsm.streams.info(name);
    } catch {
      await this.#jsm.streams.add({ name, ...cfg });
    }
  }

  #reject(kind: string, e: unknown): void {
    this.#rejected[kind] = (this.#rejected[kind] ?? 0) + 1;
    this.#opts.log?.(e instanceof InvalidMessage ? e.message : `rejected ${kind} message: ${String(e)}`);
  }

  async publishTrial(trial: TrialMessage): Promise<void> {
    await this.#openSweep(trial.sweep_id);
    await this.#js.publish(trialSubject(trial.sweep_id), encodeMessage(trial), { msgID: trial.trial_id });
  }

  /** The running sweeps, from the sweep bucket (cached for a second). */
  async #servedSweeps(): Promise<string[]> {
    if (Date.now() - this.#served.at > 500) {
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

  async pullTrial(expiresMs: number): Promise<TrialDelivery | null> {
    const deadline = Date.now() + expiresMs;
    while (Date.now() < deadline) {
      const sweeps = await this.#servedSweeps();
      if (sweeps.length === 1) return await this.#pullFrom(sweeps[0]!, deadline - Date.now()); // long poll
      // several sweeps take turns: starting after the one served last, the first with queued trials
      for (let i = 0; i < sweeps.length; i++) {
        const sweep = sweeps[(this.#turn + i) % sweeps.length]!;
        if (!(await this.#hasPending(sweep))) continue;
        const d = await this.#pullFrom(sweep, 1000);
        if (d) {
          this.#turn = (sweeps.indexOf(sweep) + 1) % sweeps.length;
          return d;
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
    return null;
  }

  /** Whether a sweep's worker consumer has trials waiting (false when it does not exist). */
  async #hasPending(sweep: string): Promise<boolean> {
    const c = await this.#consumer(sweep);
    if (!c) return false;
    try {
      return (await c.info()).num_pending > 0;
    } catch {
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

  async #pullFrom(sweep: string, expiresMs: number): Promise<TrialDelivery | null> {
    const consumer = await this.#consumer(sweep);
    if (!consumer) {
      await new Promise((r) => setTimeout(r, Math.min(250, expiresMs)));
      return null;
    }
    const deadline = Date.now() + expiresMs;
    while (true) {
      const m = await consumer.next({ expires: Math.max(1000, deadline - Date.now()) }).catch(() => null);
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
    await this.#js.publish(resultSubject(result.sweep_id), encodeMessage(result), { msgID: result.trial_id });
  }

  async consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<Subscription> {
    const durable = `coord-${sweepId}`;
    await this.#ensureConsumer(RESULT_STREAM, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      filter_subject: resultSubject(sweepId),
    });
    const consumer = await this.#js.consumers.get(RESULT_STREAM, durable);
    const messages = await consumer.consume({ max_messages: 64 });
    const done = (async () => {
      for await (const m of messages) {
        let r: ResultMessage;
        try {
          r = decodeMessage(ResultMessageSchema, "result", m.data);
        } catch (e) {
          this.#reject("result", e);
          m.term();
          continue;
        }
        try {
          await handler(r);
          m.ack();
        } catch (e) {
          this.#opts.log?.(`result ${r.trial_id} not recorded yet: ${(e as Error).message}`);
          m.nak(1000);
        }
      }
    })();
    return {
      stop: async () => {
        await messages.close();
        await done.catch(() => {});
      },
    };
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
    let purged = 0;
    try {
      purged = (await this.#jsm.streams.purge(TRIAL_STREAM, { filter: trialSubject(sweepId) })).purged;
    } catch (e) {
      this.#opts.log?.(`cancel ${sweepId}: purge failed: ${(e as Error).message}`);
    }
    const msg: ControlMessage = { v: WIRE_VERSION, sweep_id: sweepId, action: "cancel", at: new Date().toISOString() };
    this.nc.publish(controlSubject(sweepId), encodeMessage(msg));
    await this.nc.flush();
    return purged;
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
    await this.nc.drain().catch(() => this.nc.close());
  }
}
