import type { z } from "zod";
import {
  type ControlMessage,
  controlMessage,
  decodeMessage,
  encodeMessage,
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
import { BrokerError } from "../util/errors.ts";

interface Queued {
  trial: TrialMessage;
  deliveries: number;
  notBefore: number;
  /** Ends the delivery that is out, if any, with no redelivery (a purge: cancel or forget). */
  settle?: () => void;
}

/** One `consumeResults` subscription: its handler and how far it got in the sweep's stored results. */
interface ResultReader {
  sweep: string;
  handler: (r: ResultMessage) => Promise<void>;
  /** Index of the next stored result never handed over yet. */
  next: number;
  /** Results whose handler threw, each handed over again a second later (the others go on meanwhile). */
  retries: Set<{ r: ResultMessage; timer?: ReturnType<typeof setTimeout> }>;
  /** Retries that are due, handed over before new results. */
  due: ResultMessage[];
  /** A result is with the handler now. */
  busy: boolean;
  stopped: boolean;
  /** How many results were stored when the reader was made: `caughtUp` once the handler settled on as many. */
  stored: number;
  /** Resolves its `caughtUp`. */
  caughtUp: () => void;
}

/** Options of the in-memory work queue, mirroring the JetStream consumer's. */
export interface MemoryTransportOptions {
  /** How long a delivered trial may go without `working()` before it is redelivered. */
  ackWaitMs?: number;
}

/**
 * The same protocol as the NATS transport inside one process: a work queue with ack deadlines and
 * redelivery, every result stored and replayed to each new consumer. Used by the embedded default (no broker)
 * and unit tests; test/transport_test.ts runs the same conformance suite against both.
 */
export class MemoryTransport implements Transport {
  readonly kind = "memory" as const;
  readonly #queue: Queued[] = [];
  /** Every result published, per sweep, in order (the results stream). */
  readonly #results = new Map<string, ResultMessage[]>();
  readonly #readers = new Set<ResultReader>();
  /** Deduplication keys of published trials (the broker's duplicate window). */
  readonly #trialKeys = new Set<string>();
  /** Delivered, not yet settled. */
  readonly #inFlight = new Set<Queued>();
  readonly #progress = new Set<{ sweep: string; fn: (p: ProgressMessage) => void }>();
  readonly #waiters: (() => void)[] = [];
  readonly #ackWait: number;
  readonly #states = new Map<string, SweepState>();
  readonly #presence = new Map<string, { p: WorkerPresence; at: number }>();
  readonly #control = new Set<(c: ControlMessage) => void>();
  #turn = 0;
  #closed = false;
  readonly #rejected: RejectCounts = {};

  constructor(opts: MemoryTransportOptions = {}) {
    this.#ackWait = opts.ackWaitMs ?? 30_000;
  }

  setup(): Promise<void> {
    return Promise.resolve();
  }

  /** Every message crosses the same encode → validate boundary as on the wire; a bad one is rejected here. */
  #check<S extends z.ZodTypeAny>(schema: S, kind: string, msg: unknown): z.output<S> {
    try {
      return decodeMessage(schema, kind, encodeMessage(msg));
    } catch (e) {
      this.#rejected[kind] = (this.#rejected[kind] ?? 0) + 1;
      throw e;
    }
  }

  // deno-lint-ignore require-await
  async publishTrial(trial: TrialMessage, republish = 0): Promise<void> {
    trial = this.#check(TrialMessageSchema, "trial", trial);
    // the sweep is opened first, as on NATS, even when the copy is then dropped as a duplicate
    if (!this.#states.has(trial.sweep_id)) {
      this.#states.set(trial.sweep_id, unknownSweepState(trial.sweep_id));
    }
    const key = trialDedupeKey(trial, republish);
    if (this.#trialKeys.has(key)) return; // like the duplicate window of the trial stream
    this.#trialKeys.add(key);
    this.#enqueue({ trial: structuredClone(trial), deliveries: 0, notBefore: 0 });
  }

  /** The next ready queued trial, sweeps taking turns (the one after the sweep served last goes first). */
  #takeReady(now: number): Queued | undefined {
    const sweeps = [...new Set(this.#queue.map((q) => q.trial.sweep_id))].sort();
    for (let i = 0; i < sweeps.length; i++) {
      const sweep = sweeps[(this.#turn + i) % sweeps.length]!;
      const status = this.#states.get(sweep)?.status;
      if (status === "cancelled" || status === "complete") continue;
      const at = this.#queue.findIndex((q) => q.trial.sweep_id === sweep && q.notBefore <= now);
      if (at >= 0) {
        this.#turn = (sweeps.indexOf(sweep) + 1) % sweeps.length;
        return this.#queue.splice(at, 1)[0];
      }
    }
    return undefined;
  }

  #enqueue(q: Queued): void {
    this.#queue.push(q);
    this.#waiters.splice(0).forEach((w) => w());
  }

  async pullTrial(expiresMs: number): Promise<TrialDelivery | null> {
    const deadline = Date.now() + expiresMs;
    // a macrotask turn, as a network round trip would give: a worker training in this process between pulls
    // must not starve the coordinator's file writes and timers
    await new Promise((r) => setTimeout(r, 0));
    while (!this.#closed) {
      const now = Date.now();
      const q = this.#takeReady(now);
      if (q) return this.#deliver(q);
      if (now >= deadline) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(deadline - now, 100));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return null;
  }

  #deliver(q: Queued): TrialDelivery {
    q.deliveries++;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.#inFlight.add(q);
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      this.#inFlight.delete(q);
    };
    q.settle = settle;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!settled) {
          settle();
          this.#enqueue(q); // ack deadline passed: redeliver
        }
      }, this.#ackWait);
    };
    arm();
    return {
      trial: structuredClone(q.trial),
      deliveryCount: q.deliveries,
      ack: () => {
        if (!settled) settle();
        return Promise.resolve();
      },
      nak: (delayMs = 0) => {
        if (settled) return;
        settle();
        q.notBefore = Date.now() + delayMs;
        this.#enqueue(q);
      },
      working: () => {
        if (!settled) arm();
      },
      term: () => {
        if (!settled) settle();
      },
    };
  }

  // deno-lint-ignore require-await
  async publishResult(result: ResultMessage): Promise<void> {
    result = this.#check(ResultMessageSchema, "result", result);
    const r = structuredClone(result);
    const list = this.#results.get(r.sweep_id) ?? [];
    list.push(r);
    this.#results.set(r.sweep_id, list);
    for (const reader of this.#readers) if (reader.sweep === r.sweep_id) this.#pump(reader);
  }

  /**
   * Hands a reader its results one at a time, in order (due retries first); a result counts as handled only
   * once the handler resolves; when it throws, the same result is handed over again a second later and the
   * next ones go on meanwhile (as a JetStream consumer's nak with a delay).
   */
  async #pump(reader: ResultReader): Promise<void> {
    if (reader.busy || reader.stopped) return;
    reader.busy = true;
    try {
      for (;;) {
        if (reader.stopped) return;
        let r = reader.due.shift();
        if (!r) {
          const list = this.#results.get(reader.sweep) ?? [];
          if (reader.next >= list.length) return;
          r = list[reader.next++]!;
        }
        try {
          await reader.handler(structuredClone(r));
        } catch {
          const retry: { r: ResultMessage; timer?: ReturnType<typeof setTimeout> } = { r };
          retry.timer = setTimeout(() => {
            reader.retries.delete(retry);
            reader.due.push(retry.r);
            this.#pump(reader);
          }, 1000);
          reader.retries.add(retry);
        }
        if (reader.next >= reader.stored) reader.caughtUp();
      }
    } finally {
      reader.busy = false;
    }
  }

  /** Stops a reader's retries (and, with `stop`, the reader). */
  #resetReader(reader: ResultReader, stop: boolean): void {
    if (stop) reader.stopped = true;
    reader.caughtUp(); // stopped, or its stored results forgotten: nothing more to catch up with
    for (const retry of reader.retries) clearTimeout(retry.timer);
    reader.retries.clear();
    reader.due = [];
  }

  consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<ResultSubscription> {
    let caughtUp!: () => void;
    const settled = new Promise<void>((r) => (caughtUp = r));
    const reader: ResultReader = {
      sweep: sweepId,
      handler,
      next: 0,
      retries: new Set(),
      due: [],
      busy: false,
      stopped: false,
      stored: this.#results.get(sweepId)?.length ?? 0,
      caughtUp,
    };
    if (reader.stored === 0) caughtUp();
    this.#readers.add(reader);
    // as a JetStream consumer: results are handed over after the subscription is returned, never before
    const start = setTimeout(() => this.#pump(reader), 0);
    return Promise.resolve({
      caughtUp: settled,
      stop: () => {
        clearTimeout(start);
        this.#resetReader(reader, true);
        this.#readers.delete(reader);
        return Promise.resolve();
      },
    });
  }

  queueInfo(sweepId: string): Promise<QueueInfo> {
    const mine = [...this.#readers].filter((r) => r.sweep === sweepId);
    const stored = this.#results.get(sweepId)?.length ?? 0;
    const queue = this.#queue.filter((q) => q.trial.sweep_id === sweepId);
    return Promise.resolve({
      // as JetStream's num_pending and num_ack_pending: a trial given back or past its deadline is running
      queued: queue.filter((q) => q.deliveries === 0).length,
      running: queue.filter((q) => q.deliveries > 0).length +
        [...this.#inFlight].filter((q) => q.trial.sweep_id === sweepId).length,
      unrecorded: mine.length
        ? Math.max(...mine.map((r) => stored - r.next + r.retries.size + r.due.length + (r.busy ? 1 : 0)))
        : 0,
    });
  }

  forgetSweep(sweepId: string): Promise<void> {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.trial.sweep_id === sweepId) this.#queue.splice(i, 1);
    }
    // deliveries that are out are never redelivered (the queue is gone)
    for (const q of [...this.#inFlight]) if (q.trial.sweep_id === sweepId) q.settle?.();
    this.#results.delete(sweepId);
    // its consumers stay and get the results published from now on
    for (const r of this.#readers) {
      if (r.sweep === sweepId) {
        this.#resetReader(r, false);
        r.next = 0;
      }
    }
    this.#states.delete(sweepId);
    return Promise.resolve();
  }

  publishProgress(p: ProgressMessage): void {
    try {
      p = this.#check(ProgressMessageSchema, "progress", p);
    } catch {
      return; // progress is lossy
    }
    for (const s of this.#progress) if (s.sweep === p.sweep_id) s.fn(structuredClone(p));
  }

  subscribeProgress(sweepId: string, fn: (p: ProgressMessage) => void): Subscription {
    const s = { sweep: sweepId, fn };
    this.#progress.add(s);
    return {
      stop: () => {
        this.#progress.delete(s);
        return Promise.resolve();
      },
    };
  }

  // deno-lint-ignore require-await
  async putSweepState(state: SweepState): Promise<void> {
    state = this.#check(SweepStateSchema, "sweep state", state); // as a broker's reader would: never returned
    this.#states.set(state.sweep_id, structuredClone(state));
  }

  getSweepState(sweepId: string): Promise<SweepState | null> {
    return Promise.resolve(structuredClone(this.#states.get(sweepId) ?? null));
  }

  listSweepStates(): Promise<SweepState[]> {
    return Promise.resolve([...this.#states.values()].map((s) => structuredClone(s)));
  }

  // deno-lint-ignore require-await
  async putPresence(p: WorkerPresence): Promise<void> {
    p = this.#check(WorkerPresenceSchema, "presence", p); // as a broker's reader would: never listed
    this.#presence.set(`${p.host}.${p.worker}`, { p: structuredClone(p), at: Date.now() });
  }

  listPresence(): Promise<WorkerPresence[]> {
    const now = Date.now();
    return Promise.resolve(
      [...this.#presence.values()].filter((e) => now - e.at < 20_000).map((e) => structuredClone(e.p)),
    );
  }

  cancelSweep(sweepId: string): Promise<number> {
    const state = this.#states.get(sweepId);
    if (!state) {
      return Promise.reject(new BrokerError(`no sweep ${sweepId} on this broker (deno task status lists them)`));
    }
    this.#states.set(sweepId, { ...state, status: "cancelled", updated_at: new Date().toISOString() });
    let purged = 0;
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.trial.sweep_id === sweepId) {
        this.#queue.splice(i, 1);
        purged++;
      }
    }
    // as JetStream's purge: the deliveries that are out count too, and are never redelivered
    for (const q of [...this.#inFlight]) {
      if (q.trial.sweep_id !== sweepId) continue;
      q.settle?.();
      purged++;
    }
    const msg = controlMessage(sweepId);
    for (const fn of this.#control) fn(structuredClone(msg));
    return Promise.resolve(purged);
  }

  stopTrial(sweepId: string, trialId: string): Promise<void> {
    const msg = controlMessage(sweepId, trialId);
    for (const fn of this.#control) fn(structuredClone(msg));
    return Promise.resolve();
  }

  subscribeControl(fn: (c: ControlMessage) => void): Subscription {
    this.#control.add(fn);
    return {
      stop: () => {
        this.#control.delete(fn);
        return Promise.resolve();
      },
    };
  }

  rejected(): RejectCounts {
    return { ...this.#rejected };
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const r of this.#readers) this.#resetReader(r, true);
    this.#waiters.splice(0).forEach((w) => w());
    return Promise.resolve();
  }
}
