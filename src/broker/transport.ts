import type {
  ControlMessage,
  ProgressMessage,
  ResultMessage,
  SweepState,
  TrialMessage,
  WorkerPresence,
} from "./messages.ts";

/** A trial handed to one worker; it must end with `ack`, `nak` or `term`. */
export interface TrialDelivery {
  trial: TrialMessage;
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** Done: removes the trial from the queue. */
  ack(): Promise<void>;
  /** Give it back for another worker (after `delayMs`). */
  nak(delayMs?: number): void;
  /** Still training: extends the ack deadline. */
  working(): void;
  /** Drop it for good, without redelivery (its sweep was cancelled). */
  term(): void;
}

/** Counts of messages rejected by validation, by kind. */
export type RejectCounts = Record<string, number>;

/** A running subscription. */
export interface Subscription {
  stop(): Promise<void>;
}

/**
 * The work queue between a coordinator and its workers: JetStream over NATS, or an in-memory twin for the
 * embedded default and unit tests. Every message is validated on receipt; a bad one is rejected, logged and
 * counted, and never reaches the caller.
 */
export interface Transport {
  readonly kind: "nats" | "memory";
  /** Creates streams and buckets if missing (idempotent). */
  setup(): Promise<void>;
  /** Queues a trial; the first trial of a sweep opens its queue (and marks the sweep running if unknown). */
  publishTrial(trial: TrialMessage): Promise<void>;
  /**
   * The next trial, or null when none arrives within `expiresMs`. Sweeps take turns, so that several sweeps
   * on one broker all progress.
   */
  pullTrial(expiresMs: number): Promise<TrialDelivery | null>;
  /** Publishes a result; a second result for the same trial id is dropped by the broker where it can. */
  publishResult(result: ResultMessage): Promise<void>;
  /** Delivers every result of a sweep, including those that arrived while nobody listened; `handler` acks. */
  consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<Subscription>;
  publishProgress(p: ProgressMessage): void;
  subscribeProgress(sweepId: string, handler: (p: ProgressMessage) => void): Subscription;
  /** Publishes a sweep's state for `status` (and for workers: only running sweeps are served). */
  putSweepState(state: SweepState): Promise<void>;
  getSweepState(sweepId: string): Promise<SweepState | null>;
  listSweepStates(): Promise<SweepState[]>;
  /** A worker's heartbeat; it expires by itself when the worker stops sending it. */
  putPresence(p: WorkerPresence): Promise<void>;
  listPresence(): Promise<WorkerPresence[]>;
  /**
   * Cancels a sweep: removes its queued trials, marks it cancelled and tells every process to stop its
   * running trials. Returns how many unfinished trials were removed from the queue (running ones included).
   */
  cancelSweep(sweepId: string): Promise<number>;
  subscribeControl(handler: (c: ControlMessage) => void): Subscription;
  /** Messages rejected so far by this client. */
  rejected(): RejectCounts;
  close(): Promise<void>;
}
