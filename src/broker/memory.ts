import type { ProgressMessage, ResultMessage, TrialMessage } from "./messages.ts";
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
  #closed = false;

  constructor(opts: MemoryTransportOptions = {}) {
    this.#ackWait = opts.ackWaitMs ?? 30_000;
  }

  setup(): Promise<void> {
    return Promise.resolve();
  }

  publishTrial(trial: TrialMessage): Promise<void> {
    this.#enqueue({ trial: structuredClone(trial), deliveries: 0, notBefore: 0 });
    return Promise.resolve();
  }

  #enqueue(q: Queued): void {
    this.#queue.push(q);
    this.#waiters.splice(0).forEach((w) => w());
  }

  async pullTrial(expiresMs: number): Promise<TrialDelivery | null> {
    const deadline = Date.now() + expiresMs;
    while (!this.#closed) {
      const now = Date.now();
      const i = this.#queue.findIndex((q) => q.notBefore <= now);
      if (i >= 0) return this.#deliver(this.#queue.splice(i, 1)[0]!);
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
    };
  }

  async publishResult(result: ResultMessage): Promise<void> {
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

  rejected(): RejectCounts {
    return {};
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#waiters.splice(0).forEach((w) => w());
    return Promise.resolve();
  }
}
