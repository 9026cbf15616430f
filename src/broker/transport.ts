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
  /**
   * Done: removes the trial from the queue. It may reject when the acknowledgement is lost (the broker out of
   * reach, the sweep forgotten meanwhile); the worst that follows is a redelivery.
   */
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

/** Where a sweep's unfinished work is, as the broker sees it (for the coordinator's reconciliation). */
export interface QueueInfo {
  /** Trials never delivered yet, waiting for a worker (JetStream's `num_pending`). */
  queued: number;
  /**
   * Trials delivered and neither acked nor termed (JetStream's `num_ack_pending`): with a worker, given back
   * with `nak` or past their ack deadline and awaiting redelivery.
   */
  running: number;
  /** Results published but not yet handled by this client's `consumeResults` handler (0 when none runs). */
  unrecorded: number;
}

/** A running subscription. */
export interface Subscription {
  stop(): Promise<void>;
}

/** A running subscription to a sweep's results ({@link Transport.consumeResults}). */
export interface ResultSubscription extends Subscription {
  /**
   * Resolves once the handler has settled (resolved, or thrown: that result comes again later, as always) on every
   * result of the sweep that was stored on the broker when `consumeResults` was called: those that arrived while
   * no coordinator listened (a worker that finished its trial after its coordinator was killed). Results published
   * later do not delay it. It also resolves when the subscription stops, and when this client forgets the sweep.
   */
  readonly caughtUp: Promise<void>;
}

/**
 * The work queue between a coordinator and its workers: JetStream over NATS, or an in-memory twin for the
 * embedded default and unit tests. Every message is validated on receipt; a bad one is rejected, logged and
 * counted, and never reaches the caller (the in-memory transport refuses it already when it is sent, with an
 * error; a NATS client counts it where it arrives). test/transport_test.ts holds both to this contract.
 */
export interface Transport {
  readonly kind: "nats" | "memory";
  /** Creates streams and buckets if missing (idempotent). */
  setup(): Promise<void>;
  /**
   * Queues a trial; the first trial of a sweep opens its queue (and marks the sweep running if unknown).
   * Publishing the same trial (same id and claim) again within the broker's duplicate window (an hour) is a
   * no-op, so a resumed coordinator does not queue a trial twice; `republish` (1, 2, ...) makes a new copy
   * that is queued whatever the window remembers (the coordinator's reconciliation uses it for trials that
   * are nowhere). A new run of a sweep has a new secret, hence new claims, so it is never deduplicated
   * against an earlier run.
   */
  publishTrial(trial: TrialMessage, republish?: number): Promise<void>;
  /**
   * The next trial, or null when none arrives within `expiresMs`. Sweeps take turns, so that several sweeps
   * on one broker all progress.
   */
  pullTrial(expiresMs: number): Promise<TrialDelivery | null>;
  /**
   * Publishes a result. The broker never drops one as a duplicate (no client can make it discard another's
   * result): the coordinator records the first valid result of each trial and ignores the rest.
   */
  publishResult(result: ResultMessage): Promise<void>;
  /**
   * Delivers every result of a sweep stored on the broker, from the first (those that arrived while nobody
   * listened, and those an earlier coordinator already handled), then new ones as they come, one at a time
   * and only after this call has resolved. A result is done when `handler` resolves; when it throws, the same
   * result is delivered again about a second later, and the next ones go on meanwhile. Its `caughtUp` says when
   * the results stored before the call have all been handed over (a coordinator records them before it publishes).
   */
  consumeResults(sweepId: string, handler: (r: ResultMessage) => Promise<void>): Promise<ResultSubscription>;
  /** Where the sweep's unfinished work is: queued, running, results not yet handled. */
  queueInfo(sweepId: string): Promise<QueueInfo>;
  /**
   * Forgets a sweep on the broker (its queued trials, stored results, queue and state), so that a run that
   * starts over (`--fresh`) cannot receive anything of the earlier one: a delivery that is out is never
   * redelivered, and running consumers get only results published from now on. The duplicate window is not
   * forgotten: the very same trial (same claim) published again within it is still a no-op (it opens the sweep
   * again, though); a run that starts over has a new secret, hence new claims.
   */
  forgetSweep(sweepId: string): Promise<void>;
  publishProgress(p: ProgressMessage): void;
  subscribeProgress(sweepId: string, handler: (p: ProgressMessage) => void): Subscription;
  /** Publishes a sweep's state for `status` (and for workers: a `complete` or `cancelled` sweep is not served). */
  putSweepState(state: SweepState): Promise<void>;
  getSweepState(sweepId: string): Promise<SweepState | null>;
  listSweepStates(): Promise<SweepState[]>;
  /** A worker's heartbeat; it expires by itself when the worker stops sending it. */
  putPresence(p: WorkerPresence): Promise<void>;
  listPresence(): Promise<WorkerPresence[]>;
  /**
   * Cancels a sweep: removes its queued trials, marks it cancelled and tells every process to stop its
   * running trials. Returns how many unfinished trials were removed from the queue (running ones included:
   * none of them is delivered again). A cancelled sweep is not served: a trial published to it afterwards stays
   * queued. Throws a BrokerError when the broker knows no such sweep.
   */
  cancelSweep(sweepId: string): Promise<number>;
  /**
   * Early stopping: tells the worker running `trialId` to stop it at its next step and report it `stopped`
   * (a `stop_trial` control message; lossy: a trial that already finished, or a worker that missed it, just
   * goes on to its end). Only the coordinator's role may publish it.
   */
  stopTrial(sweepId: string, trialId: string): Promise<void>;
  subscribeControl(handler: (c: ControlMessage) => void): Subscription;
  /** Messages rejected so far by this client. */
  rejected(): RejectCounts;
  close(): Promise<void>;
}
