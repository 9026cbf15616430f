import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
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
import { BrokerError } from "../util/errors.ts";
import {
  decodeMessage,
  encodeMessage,
  InvalidMessage,
  type ProgressMessage,
  ProgressMessageSchema,
  type ResultMessage,
  ResultMessageSchema,
  type TrialMessage,
  TrialMessageSchema,
} from "./messages.ts";
import type { RejectCounts, Subscription, Transport, TrialDelivery } from "./transport.ts";

export const TRIAL_STREAM = "TICKETSWEEP_TRIALS";
export const RESULT_STREAM = "TICKETSWEEP_RESULTS";
export const WORKER_CONSUMER = "workers";
export const trialSubject = (sweep: string) => `ticketsweep.trial.${sweep}`;
export const resultSubject = (sweep: string) => `ticketsweep.result.${sweep}`;
export const progressSubject = (sweep: string, trial: string) => `ticketsweep.progress.${sweep}.${trial}`;

/** How to reach a broker. */
export interface NatsOptions {
  servers: string;
  token?: string;
  user?: string;
  pass?: string;
  /** Shown in the server's connection list. */
  name?: string;
  /** Ack deadline of a delivered trial; workers extend it while training. */
  ackWaitMs?: number;
  /** Log function for rejected messages and connection events. */
  log?: (line: string) => void;
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
  #workers?: Consumer;

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
    await this.#ensureConsumer(TRIAL_STREAM, {
      durable_name: WORKER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.#opts.ackWaitMs ?? 30_000),
      max_deliver: 25,
      filter_subject: "ticketsweep.trial.>",
    });
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
    await this.#js.publish(trialSubject(trial.sweep_id), encodeMessage(trial), { msgID: trial.trial_id });
  }

  async pullTrial(expiresMs: number): Promise<TrialDelivery | null> {
    const deadline = Date.now() + expiresMs;
    this.#workers ??= await this.#js.consumers.get(TRIAL_STREAM, WORKER_CONSUMER);
    while (Date.now() < deadline) {
      const m = await this.#workers.next({ expires: Math.max(1000, deadline - Date.now()) });
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
      };
    }
    return null;
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

  rejected(): RejectCounts {
    return { ...this.#rejected };
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
