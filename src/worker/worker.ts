import type { Transport, TrialDelivery } from "../broker/transport.ts";
import {
  encodeMessage,
  type Failure,
  MAX_MESSAGE_BYTES,
  type ProgressMessage,
  type ResultMessage,
  type TrialMessage,
  WIRE_VERSION,
  type WorkerInfo,
} from "../broker/messages.ts";
import type { Engine } from "../engine/engine.ts";
import { type EngineChoice, selectEngine } from "../engine/select.ts";
import type { Backend } from "../spec/schema.ts";
import { packKey, runTrials, type TrialHooks, TrialStopped } from "../train/trial.ts";
import { type PackSample, PackTuner } from "./pack_tuner.ts";
import { checkTrialLimits, freeMemory, resolveLimits, type TrialLimits } from "./limits.ts";
import type { TrialMetrics } from "../train/result.ts";
import { clip } from "../util/clip.ts";

/** What a worker needs: a transport, how to pick its engine, and a way to be stopped. */
export interface WorkerOptions {
  transport: Transport;
  /** `auto` (default) follows each trial's spec; anything else overrides it. */
  backend?: Backend;
  /** OpenBLAS threads for the `blas` engine. */
  threads?: number;
  /** `--device N`: the GPU this worker uses on a multi-GPU machine (see `selectEngine`). */
  device?: number;
  /**
   * `auto` reuses this machine's cached engine probe (`--reprobe`: probe again); the first trial then starts
   * without loading and timing every engine. Off by default (tests, the in-process worker).
   */
  engineCache?: boolean | "reprobe";
  id?: string;
  log?: (line: string) => void;
  /** Aborting stops pulling; a running trial is given back (nak) within about a second. */
  signal?: AbortSignal;
  /**
   * Aborting stops pulling too, but what runs is finished and its result published first (a local worker whose
   * coordinator was killed: a trial it has not started waits on the broker for --resume, instead of running here
   * while no coordinator can record it, and again after the resume).
   */
  drain?: AbortSignal;
  /** Stop after this many trials (tests). */
  maxTrials?: number;
  /** Stop after the queue has been empty this long; never by default. */
  idleExitMs?: number;
  /** How often a running trial reports progress and extends its ack deadline. */
  heartbeatMs?: number;
  /** How often the worker's presence (what it runs, how fast) is refreshed; it expires 20 s after the last. */
  presenceMs?: number;
  /**
   * Trials trained together (`--pack K`): up to K compatible trials pulled at once share the frozen network,
   * the data and the batches, and train in lockstep; each keeps its own result and ack. `auto` (the CLI's
   * default) measures: K doubles while the packs' steps/s improve ({@link PackTuner}). Default here: 1.
   */
  pack?: number | "auto";
  /**
   * How long a finished trial's result is retried while the broker is unreachable, before the trial is given
   * back to the queue (default {@link RESULT_RETRY_MS}).
   */
  resultRetryMs?: number;
  /** Trials over these are refused, failed for good (`--max-weights`, `--max-steps`; default: `DEFAULT_LIMITS`). */
  limits?: Partial<TrialLimits>;
  /** Replaces the trainer (the dispatch benchmark uses a no-op one); packing is then off. */
  runTrial?: (trial: TrialMessage, engine: Engine, hooks: TrialHooks) => Promise<TrialMetrics>;
}

/** What a worker is doing, for its presence heartbeat. */
interface Activity {
  sweep: string | null;
  trial: string | null;
  step: number;
  totalSteps: number;
  stepsPerS: number | null;
  lastStepAt: number;
  /** How many more trials train in the lead trial's pack. */
  packed: number;
  engine?: Engine;
}

/** Counts of what a worker did. */
export interface WorkerSummary {
  done: number;
  failed: number;
  released: number;
  /** Trials dropped because their sweep was cancelled. */
  cancelled: number;
}

/**
 * Pulls trials one at a time and runs them until stopped: each ends with exactly one of a published result
 * and an ack, or a nak that gives it to another worker. A trial delivered more than its `max_attempts` times
 * (its workers died or timed out) is recorded as failed without running again.
 */
export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const log = opts.log ?? (() => {});
  const id = opts.id ?? `${Deno.hostname()}-${Deno.pid}`;
  const engines = new Map<string, Promise<EngineChoice>>();
  const engineFor = (b: Backend): Promise<EngineChoice> => {
    const name = opts.backend && opts.backend !== "auto" ? opts.backend : b;
    let p = engines.get(name);
    if (!p) {
      p = selectEngine(name, {
        threads: opts.threads ?? 1,
        device: opts.device,
        cache: Boolean(opts.engineCache),
        reprobe: opts.engineCache === "reprobe",
      });
      p.then((c) => log(`worker ${id}: engine ${c.engine.name} (${c.engine.device}); ${c.reason}`), () => {});
      engines.set(name, p);
    }
    return p;
  };
  const summary: WorkerSummary = { done: 0, failed: 0, released: 0, cancelled: 0 };
  // the engine of this worker's --backend is made while it connects and waits for work, not when a trial waits
  if (opts.engineCache && !opts.runTrial) engineFor(opts.backend ?? "auto").catch(() => {});
  let idleSince = Date.now();
  // a worker may start before any coordinator has created the queue; with least-privilege credentials it
  // cannot create it, and waits for the coordinator to
  await opts.transport.setup().catch((e) => log(`worker ${id}: broker setup incomplete (${(e as Error).message})`));
  const cancelled = new Set<string>();
  const stopRequested = new Set<string>();
  const control = opts.transport.subscribeControl((c) => {
    if (c.action === "stop_trial" && c.trial_id) {
      // early stopping: only the trials this worker runs are asked; the set is small (one id per decision)
      if (stopRequested.size > 10_000) stopRequested.clear();
      stopRequested.add(`${c.sweep_id}/${c.trial_id}`);
    }
    if (c.action === "cancel" && !cancelled.has(c.sweep_id)) {
      cancelled.add(c.sweep_id);
      log(`worker ${id}: sweep ${c.sweep_id} cancelled`);
    }
  });
  const activity: Activity = {
    sweep: null,
    trial: null,
    packed: 0,
    step: 0,
    totalSteps: 0,
    stepsPerS: null,
    lastStepAt: 0,
  };
  const beat = () =>
    opts.transport.putPresence({
      v: WIRE_VERSION,
      worker: id,
      host: Deno.hostname(),
      backend: activity.engine?.name ?? "none",
      device: activity.engine?.device ?? "none",
      deno: Deno.version.deno,
      sweep_id: activity.sweep,
      trial_id: activity.trial,
      packed: activity.packed,
      step: activity.step,
      total_steps: activity.totalSteps,
      steps_per_s: activity.stepsPerS,
      done: summary.done,
      failed: summary.failed,
      rejected: opts.transport.rejected(),
      updated_at: new Date().toISOString(),
    }).catch(() => {}); // presence is best effort: a broker blip must not stop the work
  const presence = setInterval(beat, opts.presenceMs ?? 5000);
  beat();
  const tuner = opts.pack === "auto" && !opts.runTrial ? new PackTuner() : null;
  const onPack = (sample: PackSample) => {
    const line = tuner?.record(sample);
    if (line) log(`worker ${id}: ${line}`);
  };
  const ctx: DeliveryContext = { id, engineFor, opts, log, cancelled, stopRequested, activity, beat, onPack };
  // says what stopping means now: a running trial goes back to the queue; an idle worker just stops
  const onAbort = () =>
    log(activity.trial ? `stopping: trial ${activity.trial} goes back to the queue` : `worker ${id}: stopping`);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!opts.signal?.aborted && !opts.drain?.aborted) {
      if (opts.maxTrials !== undefined && summary.done + summary.failed >= opts.maxTrials) break;
      const d = await opts.transport.pullTrial(1000);
      if (d && opts.drain?.aborted) {
        d.nak(); // pulled as the drain began: it stays queued
        summary.released++;
        break;
      }
      if (!d) {
        if (opts.idleExitMs !== undefined && Date.now() - idleSince > opts.idleExitMs) break;
        continue;
      }
      const batch = [d];
      const room = opts.maxTrials === undefined ? Infinity : opts.maxTrials - summary.done - summary.failed;
      const fixed = opts.runTrial || typeof opts.pack !== "number" ? 1 : Math.max(1, opts.pack);
      const want = Math.min(tuner?.k ?? fixed, room);
      while (batch.length < want && !opts.signal?.aborted && !opts.drain?.aborted) {
        const more = await opts.transport.pullTrial(PACK_FILL_MS);
        if (!more) break;
        batch.push(more);
      }
      if (opts.signal?.aborted) {
        for (const b of batch) b.nak();
        summary.released += batch.length;
        break;
      }
      for (const outcome of await handleDeliveries(batch, ctx)) summary[outcome]++;
      Object.assign(activity, { sweep: null, trial: null, packed: 0, step: 0, totalSteps: 0 });
      idleSince = Date.now();
    }
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    clearInterval(presence);
    await control.stop();
    for (const p of engines.values()) await p.then((c) => c.engine.close(), () => {});
  }
  return summary;
}

interface DeliveryContext {
  id: string;
  engineFor: (b: Backend) => Promise<EngineChoice>;
  opts: WorkerOptions;
  log: (line: string) => void;
  cancelled: Set<string>;
  /** `<sweep>/<trial>` of the trials the coordinator told to stop early (control `stop_trial`). */
  stopRequested: Set<string>;
  activity: Activity;
  beat: () => void;
  /** Told what each finished pack measured (for `--pack auto`). */
  onPack: (sample: PackSample) => void;
}

/** How long a worker waits for each further trial when filling a pack (the first waits up to 1 s). */
const PACK_FILL_MS = 100;

/** How long a finished trial's result is retried while the broker is unreachable (a restart, a network blip). */
export const RESULT_RETRY_MS = 120_000;

/**
 * Publishes a result (done or failed), retrying with backoff while the broker is away; false when it could not
 * within `resultRetryMs` (the caller then gives the trial back, and it runs again; the coordinator records one
 * result per trial whatever arrives).
 */
async function publishPatiently(
  opts: WorkerOptions,
  r: ResultMessage,
  log: (l: string) => void,
  alive: () => void,
): Promise<boolean | "too large"> {
  const size = encodeMessage(r).length;
  if (size > MAX_MESSAGE_BYTES) return "too large"; // no retry makes it fit
  const deadline = Date.now() + (opts.resultRetryMs ?? RESULT_RETRY_MS);
  for (let wait = 250;; wait = Math.min(wait * 2, 5000)) {
    alive(); // the trial stays this worker's while it retries
    try {
      await opts.transport.publishResult(r);
      return true;
    } catch (e) {
      if (/max_payload|payload.*exceed|over the limit/i.test(String(e))) return "too large";
      if (Date.now() + wait > deadline) {
        log(`trial ${r.trial_id}: result not published (${(e as Error).message}); releasing it`);
        return false;
      }
      log(`trial ${r.trial_id}: publishing the result failed (${(e as Error).message}); retrying`);
      await new Promise((res) => setTimeout(res, wait));
    }
  }
}

/** A delivery ready to train: its trial, the engine it asked for, its hooks, and how to report its end. */
interface Job {
  d: TrialDelivery;
  backend: Backend;
  hooks: TrialHooks;
  settle(metrics: Promise<TrialMetrics>, engine: Engine | undefined): Promise<keyof WorkerSummary>;
}

/**
 * Handles a pulled batch: trials of cancelled sweeps and trials out of attempts end at once; the rest are
 * grouped by engine and {@link packKey} and each group trains as one pack while the later groups' deliveries
 * are kept alive.
 */
async function handleDeliveries(ds: TrialDelivery[], ctx: DeliveryContext): Promise<(keyof WorkerSummary)[]> {
  const outcomes: (keyof WorkerSummary)[] = [];
  const groups = new Map<string, Job[]>();
  for (const d of ds) {
    const job = await prepare(d, ctx);
    if (typeof job === "string") outcomes.push(job);
    else {
      const key = `${job.backend} ${packKey(d.trial.config)}`;
      groups.set(key, [...(groups.get(key) ?? []), job]);
    }
  }
  const waiting = new Set([...groups.values()].flat().map((j) => j.d));
  const keepAlive = setInterval(() => waiting.forEach((d) => d.working()), ctx.opts.heartbeatMs ?? 1000);
  try {
    for (const jobs of groups.values()) {
      jobs.forEach((j) => waiting.delete(j.d));
      outcomes.push(...await trainPack(jobs, ctx));
    }
  } finally {
    clearInterval(keepAlive);
  }
  return outcomes;
}

/** Trains one pack of compatible jobs on their engine; each job reports its own end as soon as it has one. */
async function trainPack(jobs: Job[], ctx: DeliveryContext): Promise<(keyof WorkerSummary)[]> {
  const { activity, opts, log } = ctx;
  const lead = jobs[0]!.d.trial;
  let engine: Engine | undefined;
  let runs: Promise<TrialMetrics>[];
  try {
    engine = (await ctx.engineFor(jobs[0]!.backend)).engine;
    Object.assign(activity, {
      sweep: lead.sweep_id,
      trial: lead.trial_id,
      packed: jobs.length - 1,
      step: 0,
      totalSteps: 0,
      lastStepAt: Date.now(),
      engine,
    });
    ctx.beat();
    for (const j of jobs) log(`trial ${j.d.trial.trial_id}: start (attempt ${j.d.deliveryCount})`);
    if (jobs.length > 1) log(`packed ${jobs.length} trials: ${jobs.map((j) => j.d.trial.trial_id).join(", ")}`);
    const e = engine;
    runs = opts.runTrial
      ? jobs.map((j) => opts.runTrial!(j.d.trial, e, j.hooks))
      : runTrials(jobs.map((j) => ({ cfg: j.d.trial.config, hooks: j.hooks })), e);
  } catch (err) {
    runs = jobs.map(() => Promise.reject(err));
  }
  let steps = 0, trainS = 0, weights = 0;
  const measured = runs.map((r) =>
    r.then((m) => {
      steps += m.steps;
      trainS += m.train_s;
      weights = m.layers.reduce((n, l) => n + l.total, 0);
      return m;
    })
  );
  const outcomes = await Promise.all(jobs.map((j, i) => j.settle(measured[i]!, engine)));
  if (steps > 0) ctx.onPack({ k: jobs.length, steps, trainS, weights });
  return outcomes;
}

/** Ends a delivery that must not run (cancelled sweep, out of attempts), or makes it a {@link Job}. */
async function prepare(d: TrialDelivery, ctx: DeliveryContext): Promise<keyof WorkerSummary | Job> {
  const { id, opts, log, cancelled, stopRequested, activity } = ctx;
  const t = d.trial;
  if (cancelled.has(t.sweep_id)) {
    // a sweep cancelled earlier may have started over (--fresh: same id, its state running again)
    const state = await opts.transport.getSweepState(t.sweep_id).catch(() => null);
    if (state && state.status !== "cancelled") {
      cancelled.delete(t.sweep_id);
      log(`worker ${id}: sweep ${t.sweep_id} runs again (${state.status})`);
    } else {
      d.term();
      log(`trial ${t.trial_id}: dropped (sweep cancelled)`);
      return "cancelled";
    }
  }
  const info = (engine?: Engine): WorkerInfo => ({
    id,
    host: Deno.hostname(),
    backend: engine?.name ?? "none",
    device: engine?.device ?? "none",
    deno: Deno.version.deno,
  });
  const result = (status: ResultMessage["status"], extra: Partial<ResultMessage>, engine?: Engine): ResultMessage => ({
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    status,
    attempt: d.deliveryCount,
    worker: info(engine),
    finished_at: new Date().toISOString(),
    claim: t.claim,
    ...extra,
  });
  const progress = (
    p: Pick<ProgressMessage, "step" | "total_steps" | "loss" | "error" | "rung">,
  ): ProgressMessage => ({
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    worker: id,
    host: Deno.hostname(),
    attempt: d.deliveryCount,
    ...p,
  });
  const alive = () => d.working();
  /** Publishes a failed outcome and acks; when the broker stays away, gives the trial back instead. */
  const fail = async (failure: Failure, error: string, engine?: Engine): Promise<keyof WorkerSummary> => {
    const sent = await publishPatiently(opts, result("failed", { error: clip(error), failure }, engine), log, alive);
    if (sent !== true) {
      d.nak();
      return "released";
    }
    await d.ack().catch(() => {}); // a lost ack means a redelivery; the coordinator records one outcome
    return "failed";
  };
  if (d.deliveryCount > t.max_attempts) {
    const outcome = await fail(
      "gave_up",
      `gave up after ${t.max_attempts} attempts: the workers running it died or stopped answering each time`,
    );
    log(`trial ${t.trial_id}: delivered ${d.deliveryCount} times, recorded as failed`);
    return outcome;
  }
  // a trial passes the schema with any sizes: refuse one this machine cannot hold before building anything
  const refusal = checkTrialLimits(t.config, resolveLimits(opts.limits), freeMemory());
  if (refusal) {
    log(`trial ${t.trial_id}: ${refusal}; recorded as failed`);
    return await fail("refused", refusal);
  }
  const lead = () => activity.trial === t.trial_id;
  const stopKey = `${t.sweep_id}/${t.trial_id}`;
  stopRequested.delete(stopKey); // a request seen by an earlier attempt is not this one's
  let lastStep = 0, lastTotal = 0;
  const hooks: TrialHooks = {
    ...(t.rungs?.length
      ? {
        rungs: t.rungs,
        onRung: (point) => {
          const rung = { ...point, claim: t.claim };
          opts.transport.publishProgress(progress({ step: lastStep, total_steps: lastTotal, loss: null, rung }));
        },
        stopEarly: () => stopRequested.has(stopKey),
      }
      : {}),
    progressEveryMs: opts.heartbeatMs ?? 1000,
    shouldStop: () => (opts.signal?.aborted ?? false) || cancelled.has(t.sweep_id),
    onProgress: ({ step, totalSteps, loss }) => {
      d.working();
      lastStep = step;
      lastTotal = totalSteps;
      const now = Date.now();
      if (lead()) {
        if (step > activity.step && now > activity.lastStepAt) {
          activity.stepsPerS = (step - activity.step) / ((now - activity.lastStepAt) / 1000);
        }
        const first = activity.totalSteps === 0;
        Object.assign(activity, { step, totalSteps, lastStepAt: now });
        if (first) ctx.beat(); // status shows the step from the first progress on, not after the next heartbeat
      }
      opts.transport.publishProgress(
        progress({ step, total_steps: totalSteps, loss: Number.isFinite(loss) ? loss : null }),
      );
    },
  };
  const backend = opts.backend && opts.backend !== "auto" ? opts.backend : t.config.backend;
  const settle = async (run: Promise<TrialMetrics>, engine: Engine | undefined): Promise<keyof WorkerSummary> => {
    try {
      const metrics = await run;
      const status = metrics.stopped ? "stopped" : "done";
      stopRequested.delete(stopKey);
      const sent = await publishPatiently(opts, result(status, { metrics }, engine), log, alive);
      if (sent === "too large") {
        const kb = (encodeMessage(result(status, { metrics }, engine)).length / 1024).toFixed(0);
        log(`trial ${t.trial_id}: its result (${kb} kB) is over the broker's message limit; recorded as failed`);
        return await fail(
          "error",
          `its result is ${kb} kB, over the ${MAX_MESSAGE_BYTES / 1024} kB message limit (a ticket of ` +
            `${
              metrics.ticket?.masked_weights ?? 0
            } masked weights): mask fewer layers (model.masked) or a smaller network`,
          engine,
        );
      }
      if (!sent) {
        d.nak();
        return "released";
      }
      await d.ack().catch(() => {}); // a lost ack only means a redelivery; only a trial's first result is recorded
      if (metrics.stopped) {
        log(
          `trial ${t.trial_id}: stopped early after ${metrics.stopped.epochs.toFixed(2)} of ` +
            `${metrics.stopped.planned_epochs} epochs (dominated at its rung), accuracy ${
              metrics.accuracy.toFixed(4)
            }, ` +
            `sparsity ${metrics.sparsity.toFixed(4)}`,
        );
        return "done";
      }
      log(
        `trial ${t.trial_id}: done, accuracy ${metrics.accuracy.toFixed(4)}, sparsity ${metrics.sparsity.toFixed(4)}`,
      );
      return "done";
    } catch (e) {
      if (e instanceof TrialStopped) {
        if (cancelled.has(t.sweep_id)) {
          d.term();
          log(`trial ${t.trial_id}: stopped (sweep cancelled)`);
          return "cancelled";
        }
        d.nak();
        log(`trial ${t.trial_id}: released (worker stopping)`);
        return "released";
      }
      const reason = clip(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      if (d.deliveryCount >= t.max_attempts) {
        log(`trial ${t.trial_id}: failed for good: ${reason}`);
        return await fail("error", reason, engine);
      }
      opts.transport.publishProgress(progress({ step: 0, total_steps: 0, loss: null, error: reason }));
      d.nak(500);
      log(`trial ${t.trial_id}: attempt ${d.deliveryCount} failed (${reason}); given back`);
      return "released";
    }
  };
  return { d, backend, hooks, settle };
}
