import { z } from "zod";
import { MAX_CUTS, TrialConfigSchema } from "../spec/schema.ts";

/** Version of every message on the wire; a receiver rejects any other. */
export const WIRE_VERSION = 1;
/** Largest message a receiver accepts (a LeNet-300-100 ticket is about 45 kB of base64). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const id = z.string().regex(/^[A-Za-z0-9_-]{1,80}$/);
const paramValue = z.union([z.number(), z.string(), z.boolean()]);

/** A trial on its way to a worker. */
export const TrialMessageSchema = z.object({
  v: z.literal(WIRE_VERSION),
  sweep_id: id,
  trial_id: id,
  params: z.record(z.string(), paramValue),
  seed: z.number().int(),
  config: TrialConfigSchema,
  max_attempts: z.number().int().positive(),
  /** A secret of this trial that its result must carry: only a worker given the trial knows it. */
  claim: z.string().regex(/^[0-9a-f]{32}$/),
  /**
   * Early stopping (spec `early_stop`): the epochs (ascending, each below the trial's epochs) after which the
   * trial reports its current ticket's point; absent when the sweep does not stop trials early.
   */
  rungs: z.array(z.number().int().positive()).max(64).optional(),
}).strict();
export type TrialMessage = z.infer<typeof TrialMessageSchema>;

/**
 * The broker's deduplication key of a published trial: its id and claim (a new run of the sweep has a new
 * secret, hence new keys), and the republication number when the coordinator queues it again.
 */
export const trialDedupeKey = (t: TrialMessage, republish = 0) =>
  `${t.trial_id}.${t.claim.slice(0, 16)}${republish ? `.${republish}` : ""}`;

/** The worker and machine that produced a result. */
export const WorkerInfoSchema = z.object({
  id: z.string(),
  host: z.string(),
  backend: z.string(),
  device: z.string(),
  deno: z.string(),
}).strict();
export type WorkerInfo = z.infer<typeof WorkerInfoSchema>;

const layerSparsity = z.object({
  layer: z.string(),
  shape: z.array(z.number().int()),
  total: z.number().int(),
  kept: z.number().int(),
  sparsity: z.number(),
}).strict();

export const MetricsSchema = z.object({
  accuracy: z.number().min(0).max(1),
  /** Validation accuracy; null without a validation split, absent in results from before it existed. */
  val_accuracy: z.number().min(0).max(1).nullable().optional(),
  soft_accuracy: z.number().min(0).max(1).nullable(),
  sparsity: z.number().min(0).max(1),
  layers: z.array(layerSparsity),
  masked_layers: z.array(z.string()),
  loss_curve: z.array(
    z.object({
      epoch: z.number().int(),
      step: z.number().int(),
      loss: z.number(),
      task_loss: z.number(),
      train_accuracy: z.number(),
    }).strict(),
  ),
  steps: z.number().int(),
  steps_per_s: z.number(),
  train_s: z.number(),
  wall_s: z.number(),
  backend: z.string(),
  device: z.string(),
  data: z.string(),
  ticket: z.object({ bits_b64: z.string(), sha256: z.string().length(64), masked_weights: z.number().int() })
    .strict().nullable(),
  /** The ticket ladder: every cut's point and the per-weight levels that rebuild its mask; absent in older results. */
  cuts: z.object({
    rule: z.enum(["test_gate", "s", "keep_fraction"]),
    levels: z.object({ bits: z.number().int().min(1).max(8), b64: z.string(), sha256: z.string().length(64) })
      .strict(),
    points: z.array(
      z.object({
        cut: z.number(),
        sparsity: z.number().min(0).max(1),
        kept: z.array(z.number().int().nonnegative()),
        accuracy: z.number().min(0).max(1),
        val_accuracy: z.number().min(0).max(1).nullable(),
        sha256: z.string().length(64),
      }).strict(),
    ).max(255),
  }).strict().nullable().optional(),
  /**
   * Set on a trial stopped early (status `stopped`): the epochs it trained (fractional: steps / steps per epoch)
   * of those planned, and the epoch of the last rung it reported. Its point is the partial ticket's.
   */
  stopped: z.object({
    epochs: z.number().min(0),
    planned_epochs: z.number().int().positive(),
    rung_epoch: z.number().int().nonnegative(),
  }).strict().optional(),
}).strict();

/**
 * Why a trial failed, as a typed field (never parsed out of `error`): `error` (training threw on its last
 * attempt), `gave_up` (delivered more than `max_attempts` times: its workers died or stopped answering),
 * `refused` (over a worker's resource limits), `cancelled` (its sweep was cancelled).
 */
export const FAILURES = ["error", "gave_up", "refused", "cancelled"] as const;
export type Failure = typeof FAILURES[number];

/**
 * The one outcome of a trial: done with metrics, stopped early (dominated at a rung; metrics of its partial
 * ticket, with `metrics.stopped`), or failed with the reason.
 */
export const ResultMessageSchema = z.object({
  v: z.literal(WIRE_VERSION),
  sweep_id: id,
  trial_id: id,
  status: z.enum(["done", "failed", "stopped"]),
  attempt: z.number().int().positive(),
  error: z.string().max(4096).optional(),
  /** Set on every failed result; absent on done ones (and on results recorded before it existed). */
  failure: z.enum(FAILURES).optional(),
  metrics: MetricsSchema.optional(),
  worker: WorkerInfoSchema,
  finished_at: z.string(),
  /** The trial's claim, echoed; a result without the right one is rejected. */
  claim: z.string().max(64),
}).strict().refine((r) => (r.status !== "failed") === (r.metrics !== undefined), {
  message: "a done or stopped result carries metrics and a failed one does not",
}).refine((r) => (r.status === "stopped") === (r.metrics?.stopped !== undefined), {
  message: "a stopped result, and only a stopped one, carries metrics.stopped",
}).refine((r) => r.status === "failed" || r.failure === undefined, {
  message: "only a failed result carries a failure kind",
});
export type ResultMessage = z.infer<typeof ResultMessageSchema>;

/** Lossy progress of a running trial (or of a failed attempt). */
export const ProgressMessageSchema = z.object({
  v: z.literal(WIRE_VERSION),
  sweep_id: id,
  trial_id: id,
  worker: z.string(),
  host: z.string(),
  step: z.number().int(),
  total_steps: z.number().int(),
  loss: z.number().nullable(),
  attempt: z.number().int(),
  error: z.string().max(4096).optional(),
  /**
   * Early stopping: the trial's current ticket after `epoch` epochs (one of its `rungs`), its validation accuracy
   * (test accuracy without a validation split).
   */
  rung: z.object({
    epoch: z.number().int().positive(),
    sparsity: z.number().min(0).max(1),
    val_accuracy: z.number().min(0).max(1),
    /** The trial's claim (as in its result): a report without it is not judged. */
    claim: z.string().min(1).max(128),
    /** The trial's ladder at the rung (spec `tickets.cuts`): each cut's sparsity and validation accuracy. */
    ladder: z.array(
      z.object({
        sparsity: z.number().min(0).max(1),
        val_accuracy: z.number().min(0).max(1),
      }).strict(),
    ).max(MAX_CUTS).optional(),
  }).strict().optional(),
}).strict();
export type ProgressMessage = z.infer<typeof ProgressMessageSchema>;

/** Why a message was rejected, for logs and counters. */
export class InvalidMessage extends Error {
  constructor(kind: string, reason: string) {
    super(`rejected ${kind} message: ${reason}`);
    this.name = "InvalidMessage";
  }
}

/**
 * Decodes and validates a message; never throws anything but {@link InvalidMessage}.
 */
export function decodeMessage<S extends z.ZodTypeAny>(schema: S, kind: string, bytes: Uint8Array): z.output<S> {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new InvalidMessage(kind, `${bytes.length} bytes is over the limit`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new InvalidMessage(kind, `not JSON (${(e as Error).message})`);
  }
  if (raw && typeof raw === "object" && "v" in raw && (raw as { v: unknown }).v !== WIRE_VERSION) {
    throw new InvalidMessage(kind, `unknown schema version ${JSON.stringify((raw as { v: unknown }).v)}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new InvalidMessage(kind, `${first.path.join(".") || "(root)"}: ${first.message}`);
  }
  return parsed.data;
}

export function encodeMessage(msg: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg));
}

/** The state of a sweep as the coordinator publishes it (KV `ticketsweep_sweeps`), for `status` anywhere. */
export const SweepStateSchema = z.object({
  v: z.literal(WIRE_VERSION),
  sweep_id: id,
  name: z.string(),
  status: z.enum(["running", "complete", "cancelled", "stopped"]),
  total: z.number().int().nonnegative(),
  done: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  eta_s: z.number().nullable(),
  coordinator: z.string(),
  rejected: z.record(z.string(), z.number().int()),
  updated_at: z.string(),
}).strict();
export type SweepState = z.infer<typeof SweepStateSchema>;

/** The state of a sweep first seen through one of its trials (its coordinator fills in the rest). */
export function unknownSweepState(sweepId: string): SweepState {
  return {
    v: WIRE_VERSION,
    sweep_id: sweepId,
    name: sweepId,
    status: "running",
    total: 0,
    done: 0,
    failed: 0,
    eta_s: null,
    coordinator: "unknown",
    rejected: {},
    updated_at: new Date().toISOString(),
  };
}

/** A worker's heartbeat (KV `ticketsweep_workers`, expiring): what it runs and how fast. */
export const WorkerPresenceSchema = z.object({
  v: z.literal(WIRE_VERSION),
  worker: z.string(),
  host: z.string(),
  backend: z.string(),
  device: z.string(),
  deno: z.string(),
  sweep_id: z.string().nullable(),
  /** The trial it trains (the first of its pack), or null when idle. */
  trial_id: z.string().nullable(),
  /** How many more trials train in the same pack as `trial_id` (0 when alone). */
  packed: z.number().int().nonnegative().optional(),
  step: z.number().int(),
  total_steps: z.number().int(),
  steps_per_s: z.number().nullable(),
  done: z.number().int(),
  failed: z.number().int(),
  rejected: z.record(z.string(), z.number().int()),
  updated_at: z.string(),
}).strict();
export type WorkerPresence = z.infer<typeof WorkerPresenceSchema>;

/**
 * A command to every process of a sweep: `cancel` it, or `stop_trial` (early stopping: the worker running
 * `trial_id` stops it at its next step and reports it `stopped`).
 */
export const ControlMessageSchema = z.object({
  v: z.literal(WIRE_VERSION),
  sweep_id: id,
  action: z.enum(["cancel", "stop_trial"]),
  trial_id: id.optional(),
  at: z.string(),
}).strict().refine((c) => (c.action === "stop_trial") === (c.trial_id !== undefined), {
  message: "a stop_trial message, and only one, names its trial_id",
});
export type ControlMessage = z.infer<typeof ControlMessageSchema>;

/** A control message: cancel a sweep, or stop one of its trials (`trialId`). */
export function controlMessage(sweepId: string, trialId?: string): ControlMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: sweepId,
    ...(trialId === undefined ? { action: "cancel" as const } : { action: "stop_trial" as const, trial_id: trialId }),
    at: new Date().toISOString(),
  };
}
