import type { z } from "zod";
import {
  type ControlMessage,
  decodeMessage,
  encodeMessage,
  type ProgressMessage,
  ProgressMessageSchema,
  type ResultMessage,
  ResultMessageSchema,
  type SweepState,
  type TrialMessage,
  TrialMessageSchema,
  unknownSweepState,
  WIRE_VERSION,
  type WorkerPresence,
} from "./messages.ts";
import type { RejectCounts, Subscription, Transport, TrialDelivery } from "./transport.ts";

interface Queued {
  trial: TrialMessage;
  deliveries: number;
  notBefore: number;
}

/** Options of the in-memory work queue, mirroring the JetStream consumer's. */
export interface MemoryTransportOptions {
  /** How long a delivered trial may go without `working()` before it is redelivered. */
  ackWaitMs?: number;
}

/**
 * The same protocol as the NATS transport inside one process: a work queue with ack deadlines and
 * redelivery, results deduplicated by trial id. Used by the embedded default (no broker) and unit tests.
 */
export class MemoryTransport implements Transport {
  readonly kind = "memory" as const;
  readonly #queue: Queued[] = [];
  readonly #results = new Map<string, ResultMessage[]>();
  readonly #seenResults = new Set<string>();
  readonly #resultHandlers = new Map<string, Set<(r: ResultMessage) => Promise<void>>>();
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
  async publishTrial(trial: TrialMessage): Promise<void> {
    trial = this.#check(TrialMessageSchema, "trial", trial);
    if (!this.#states.has(trial.sweep_id)) {
      this.#states.set(trial.sweep_id, unknownSweepState(trial.sweep_id));
    }
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
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!settled) {
          settled = true;
          this.#enqueue(q); // ack deadline passed: redeliver
        }
      }, this.#ackWait);
    };
    arm();
    return {
      trial: structuredClone(q.trial),
      deliveryCount: q.deliveries,
      ack: () => {
        settled = true;
        clearTimeout(timer);
        return Promise.resolve();
      },
      nak: (delayMs = 0) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        q.notBefore = Date.now() + delayMs;
        this.#enqueue(q);
      },
      working: () => {
        if (!settled) arm();
      },
      term: () => {
        settled = true;
        clearTimeout(timer);
      },
    };
  }

  async publishResult(result: ResultMessage): Promise<void> {
    result = this.#check(ResultMessageSchema, "result", result);
    if (this.#seenResults.has(result.trial_id)) return; // like Nats-Msg-Id deduplication
    this.#seenResults.add(result.trial_id);
    const r = structuredClone(result);
    const list = this.#results.get(r.sweep_id) ?? [];
    list.push(r);
    this.#results.set(r.sweep_id, list);
    for (const h of this.#resultHandlers.get(r.sweep_id) ?? []) await h(r);
  }

  async consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<Subscription> {
    for (const r of this.#results.get(sweepId) ?? []) await handler(r);
    const set = this.#resultHandlers.get(sweepId) ?? new Set();
    set.add(handler);
    this.#resultHandlers.set(sweepId, set);
    return {
      stop: () => {
        set.delete(handler);
        return Promise.resolve();
      },
    };
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

  putSweepState(state: SweepState): Promise<void> {
    this.#states.set(state.sweep_id, structuredClone(state));
    return Promise.resolve();
  }

  getSweepState(sweepId: string): Promise<SweepState | null> {
    return Promise.resolve(structuredClone(this.#states.get(sweepId) ?? null));
  }

  listSweepStates(): Promise<SweepState[]> {
    return Promise.resolve([...this.#states.values()].map((s) => structuredClone(s)));
  }

  putPresence(p: WorkerPresence): Promise<void> {
    this.#presence.set(`${p.host}.${p.worker}`, { p: structuredClone(p), at: Date.now() });
    return Promise.resolve();
  }

  listPresence(): Promise<WorkerPresence[]> {
    const now = Date.now();
    return Promise.resolve([...this.#presence.values()].filter((e) => now - e.at < 20_000).map((e) => e.p));
  }

  cancelSweep(sweepId: string): Promise<number> {
    const state = this.#states.get(sweepId);
    if (state) this.#states.set(sweepId, { ...state, status: "cancelled", updated_at: new Date().toISOString() });
    let purged = 0;
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.trial.sweep_id === sweepId) {
        this.#queue.splice(i, 1);
        purged++;
      }
    }
    const msg: ControlMessage = { v: WIRE_VERSION, sweep_id: sweepId, action: "cancel", at: new Date().toISOString() };
    for (const fn of this.#control) fn(structuredClone(msg));
    return Promise.resolve(purged);
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
    this.#waiters.splice(0).forEach((w) => w());
    return Promise.resolve();
  }
}
