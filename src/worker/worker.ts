import type { Transport, TrialDelivery } from "../broker/transport.ts";
import { type ProgressMessage, type ResultMessage, WIRE_VERSION, type WorkerInfo } from "../broker/messages.ts";
import type { Engine } from "../engine/engine.ts";
import { type EngineChoice, selectEngine } from "../engine/select.ts";
import type { Backend } from "../spec/schema.ts";
import { runTrial, TrialStopped } from "../train/trial.ts";

/** What a worker needs: a transport, how to pick its engine, and a way to be stopped. */
export interface WorkerOptions {
  transport: Transport;
  /** `auto` (default) follows each trial's spec; anything else overrides it. */
  backend?: Backend;
  /** OpenBLAS threads for the `blas` engine. */
  threads?: number;
  id?: string;
  log?: (line: string) => void;
  /** Aborting stops pulling; a running trial is given back (nak) within about a second. */
  signal?: AbortSignal;
  /** Stop after this many trials (tests). */
  maxTrials?: number;
  /** Stop after the queue has been empty this long; never by default. */
  idleExitMs?: number;
  /** How often a running trial reports progress and extends its ack deadline. */
  heartbeatMs?: number;
}

/** Counts of what a worker did. */
export interface WorkerSummary {
  done: number;
  failed: number;
  released: number;
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
      p = selectEngine(name, { threads: opts.threads ?? 1 });
      p.then((c) => log(`worker ${id}: engine ${c.engine.name} (${c.engine.device}); ${c.reason}`), () => {});
      engines.set(name, p);
    }
    return p;
  };
  const summary: WorkerSummary = { done: 0, failed: 0, released: 0 };
  let idleSince = Date.now();
  await opts.transport.setup(); // a worker may start before any coordinator has created the queue
  try {
    while (!opts.signal?.aborted) {
      if (opts.maxTrials !== undefined && summary.done + summary.failed >= opts.maxTrials) break;
      const d = await opts.transport.pullTrial(1000);
      if (!d) {
        if (opts.idleExitMs !== undefined && Date.now() - idleSince > opts.idleExitMs) break;
        continue;
      }
      if (opts.signal?.aborted) {
        d.nak();
        summary.released++;
        break;
      }
      const outcome = await handleDelivery(d, id, engineFor, opts, log);
      summary[outcome]++;
      idleSince = Date.now();
    }
  } finally {
    for (const p of engines.values()) await p.then((c) => c.engine.close(), () => {});
  }
  return summary;
}

async function handleDelivery(
  d: TrialDelivery,
  id: string,
  engineFor: (b: Backend) => Promise<EngineChoice>,
  opts: WorkerOptions,
  log: (line: string) => void,
): Promise<keyof WorkerSummary> {
  const t = d.trial;
  const info = (engine?: Engine): WorkerInfo => ({
    id,
    host: Deno.hostname(),
    backend: engine?.name ?? "none",
    device: engine?.device ?? "none",
    deno: Deno.version.deno,
  });
  const result = (status: "done" | "failed", extra: Partial<ResultMessage>, engine?: Engine): ResultMessage => ({
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    status,
    attempt: d.deliveryCount,
    worker: info(engine),
    finished_at: new Date().toISOString(),
    ...extra,
  });
  const progress = (p: Pick<ProgressMessage, "step" | "total_steps" | "loss" | "error">): ProgressMessage => ({
    v: WIRE_VERSION,
    sweep_id: t.sweep_id,
    trial_id: t.trial_id,
    worker: id,
    host: Deno.hostname(),
    attempt: d.deliveryCount,
    ...p,
  });
  if (d.deliveryCount > t.max_attempts) {
    await opts.transport.publishResult(result("failed", {
      error: `gave up after ${t.max_attempts} attempts: the workers running it died or stopped answering each time`,
    }));
    await d.ack();
    log(`trial ${t.trial_id}: delivered ${d.deliveryCount} times, recorded as failed`);
    return "failed";
  }
  let engine: Engine | undefined;
  try {
    engine = (await engineFor(t.config.backend)).engine;
    log(`trial ${t.trial_id}: start (attempt ${d.deliveryCount})`);
    const metrics = await runTrial(t.config, engine, {
      progressEveryMs: opts.heartbeatMs ?? 1000,
      shouldStop: () => opts.signal?.aborted ?? false,
      onProgress: ({ step, totalSteps, loss }) => {
        d.working();
        opts.transport.publishProgress(
          progress({ step, total_steps: totalSteps, loss: Number.isFinite(loss) ? loss : null }),
        );
      },
    });
    await opts.transport.publishResult(result("done", { metrics }, engine));
    await d.ack();
    log(`trial ${t.trial_id}: done, accuracy ${metrics.accuracy.toFixed(4)}, sparsity ${metrics.sparsity.toFixed(4)}`);
    return "done";
  } catch (e) {
    if (e instanceof TrialStopped) {
      d.nak();
      log(`trial ${t.trial_id}: released (worker stopping)`);
      return "released";
    }
    const reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (d.deliveryCount >= t.max_attempts) {
      await opts.transport.publishResult(result("failed", { error: reason }, engine));
      await d.ack();
      log(`trial ${t.trial_id}: failed for good: ${reason}`);
      return "failed";
    }
    opts.transport.publishProgress(progress({ step: 0, total_steps: 0, loss: null, error: reason }));
    d.nak(500);
    log(`trial ${t.trial_id}: attempt ${d.deliveryCount} failed (${reason}); given back`);
    return "released";
  }
}
