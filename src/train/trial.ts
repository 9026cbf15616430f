import type { Engine } from "../engine/engine.ts";
import type { TicketsConfig, TrialConfig } from "../spec/schema.ts";
import { Rng, RNG_STREAMS } from "../util/rng.ts";
import { augmentInto } from "./data/augment.ts";
import type { Dataset, DataSplit } from "./data/dataset.ts";
import { loadDataset } from "./data/load.ts";
import { createMethod } from "./masks/registry.ts";
import type { MaskMethod } from "./masks/method.ts";
import { maskedWeights } from "./masks/method.ts";
import { buildNet } from "./nets/build.ts";
import type { Net } from "./nets/net.ts";
import type { CutLadder, LayerSparsity, LossPoint, TrialMetrics } from "./result.ts";
import { buildLadder, cutValues, encodeLevels, masksSha256 } from "./ladder.ts";
import type { CutRule } from "./masks/method.ts";
import { encodeTicket } from "../ticket/bits.ts";

/** Hooks the worker passes to a running trial. */
export interface TrialHooks {
  /** Called about every `progressEveryMs` with the fraction done; may be async (a heartbeat). */
  onProgress?: (info: { epoch: number; step: number; totalSteps: number; loss: number }) => void | Promise<void>;
  progressEveryMs?: number;
  /** Checked between steps; when it returns true the trial stops with a {@link TrialStopped}. */
  shouldStop?: () => boolean;
  /**
   * Early stopping: after each of these epochs (below the trial's epochs) the current ticket, and every cut of the
   * trial's ladder (spec `tickets.cuts`), is evaluated on the validation split (test without one) and passed to
   * `onRung`.
   */
  rungs?: readonly number[];
  onRung?: (point: RungReport) => void;
  /**
   * Checked before every step: when it returns true the trial ends there and resolves with the metrics of its
   * current ticket, marked `stopped` (no ladder).
   */
  stopEarly?: () => boolean;
}

/** A rung report: the trial's current ticket after `epoch` epochs, and its ladder's cuts, on validation accuracy. */
export interface RungReport {
  epoch: number;
  sparsity: number;
  val_accuracy: number;
  ladder?: { sparsity: number; val_accuracy: number }[];
}

/** Thrown when a trial is stopped from outside (cancel, shutdown). */
export class TrialStopped extends Error {
  constructor() {
    super("trial stopped");
    this.name = "TrialStopped";
  }
}

/** Per-layer and overall sparsity of a binary ticket, over the masked layers only. */
export function ticketSparsity(net: Net, masks: Uint8Array[]): { sparsity: number; layers: LayerSparsity[] } {
  let total = 0, kept = 0;
  const layers = net.maskedParams.map((layer, l) => {
    const m = masks[l]!;
    let k = 0;
    for (let i = 0; i < m.length; i++) k += m[i]!;
    total += m.length;
    kept += k;
    return { layer: layer.name, shape: layer.shape, total: m.length, kept: k, sparsity: 1 - k / m.length };
  });
  return { sparsity: 1 - kept / total, layers };
}

/**
 * Test accuracy of a binary ticket: the frozen weights under `masks`, batch-norm statistics calibrated on the
 * training data. The one function both trials and `ticket verify` use, so that they agree exactly.
 */
export function ticketAccuracy(net: Net, masks: Uint8Array[], train: Dataset, test: Dataset): number {
  return ticketAccuracies(net, masks, train, test, null).accuracy;
}

/**
 * Test and validation accuracy of a binary ticket (validation null without a validation set): one calibration,
 * then test, then validation. Trials, ticket ladders and `ticket verify` all go through it.
 */
export function ticketAccuracies(
  net: Net,
  masks: Uint8Array[],
  train: Dataset,
  test: Dataset,
  validation: Dataset | null,
): { accuracy: number; val_accuracy: number | null } {
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  maskedWeights(net, masks, weff);
  return weightsAccuracies(net, weff, train, test, validation);
}

function weightsAccuracies(
  net: Net,
  weff: Float32Array[],
  train: Dataset,
  test: Dataset,
  validation: Dataset | null,
): { accuracy: number; val_accuracy: number | null } {
  net.useEffectiveWeights(weff);
  net.calibrate(train);
  const accuracy = net.evaluate(test);
  return { accuracy, val_accuracy: validation ? net.evaluate(validation) : null };
}

function weightsAccuracy(net: Net, weff: Float32Array[], train: Dataset, test: Dataset): number {
  return weightsAccuracies(net, weff, train, test, null).accuracy;
}

/**
 * A trial's ticket ladder (spec `tickets.cuts`): the cut values ({@link cutValues}), each cut's ticket by the
 * method's rule with its sparsity and test and validation accuracy, and the levels that rebuild every cut.
 */
export function ticketLadder(net: Net, rule: CutRule, tickets: TicketsConfig, data: DataSplit): CutLadder | null {
  const sizes = net.maskedParams.map((l) => l.w.length);
  const built = buildLadder(rule, sizes, cutValues(rule, sizes, tickets.cuts));
  if (!built) return null;
  return {
    rule: rule.rule,
    levels: encodeLevels(built),
    points: built.cuts.map(({ cut, masks }) => {
      const { sparsity, layers } = ticketSparsity(net, masks);
      const acc = ticketAccuracies(net, masks, data.train, data.test, data.validation);
      return { cut, sparsity, kept: layers.map((l) => l.kept), ...acc, sha256: masksSha256(masks) };
    }),
  };
}

/** Fills a training batch from rows `order[from…]`, augmenting images when asked. */
function fillBatch(
  train: Dataset,
  order: Uint32Array,
  from: number,
  xb: Float32Array,
  yb: Uint8Array,
  augment: Rng | null,
): void {
  const d = train.dim;
  for (let i = 0; i < yb.length; i++) {
    const r = order[from + i]!;
    const src = train.x.subarray(r * d, (r + 1) * d);
    if (augment) augmentInto(src, train.shape, augment, xb.subarray(i * d, (i + 1) * d));
    else xb.set(src, i * d);
    yb[i] = train.y[r]!;
  }
}

/** What makes trials packable together: they see the same frozen network and the same batches in the same order. */
export function packKey(cfg: TrialConfig): string {
  return JSON.stringify([cfg.dataset, cfg.model, cfg.seed, cfg.training.batch_size]);
}

/** How a trial's promise is settled from inside the lockstep loop. */
interface Settler {
  resolve: (m: TrialMetrics) => void;
  reject: (e: unknown) => void;
}

/** A trial with its hooks, as given to {@link runTrials}. */
export interface PackedTrial {
  cfg: TrialConfig;
  hooks?: TrialHooks;
}

/** One trial's own state inside a run: its net (sharing the frozen weights), method, buffers and curve. */
class TrialRun {
  readonly weff: Float32Array[];
  readonly dweff: Float32Array[];
  readonly curve: LossPoint[] = [];
  readonly epochs: number;
  step = 0;
  /** Milliseconds of this trial's own steps plus its share of the batches it was fed. */
  busyMs = 0;
  taskSum = 0;
  correct = 0;
  lastLoss = NaN;
  settled = false;
  /** The epoch of the last rung reported (0 before any). */
  lastRung = 0;

  constructor(
    readonly cfg: TrialConfig,
    readonly hooks: TrialHooks,
    readonly net: Net,
    readonly method: MaskMethod,
    readonly resolve: (m: TrialMetrics) => void,
    readonly reject: (e: unknown) => void,
  ) {
    this.epochs = cfg.training.epochs;
    this.weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
    this.dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
    net.useEffectiveWeights(this.weff);
    net.useGradients(this.dweff);
  }

  /** One optimisation step on the batch. */
  train(xb: Float32Array, yb: Uint8Array, bs: number): void {
    this.method.effectiveWeights(this.weff);
    this.net.forward(xb, bs, true);
    const ce = this.net.crossEntropy(yb, bs, true);
    this.net.backward(bs);
    this.method.applyGradients(this.dweff);
    this.step++;
    this.taskSum += ce.loss;
    this.correct += ce.correct;
    this.lastLoss = ce.loss;
  }

  endEpoch(epoch: number, stepsPerEpoch: number, bs: number): void {
    this.curve.push({
      epoch,
      step: this.step,
      loss: this.taskSum / stepsPerEpoch + this.method.penalty(),
      task_loss: this.taskSum / stepsPerEpoch,
      train_accuracy: this.correct / (stepsPerEpoch * bs),
    });
    this.taskSum = 0;
    this.correct = 0;
  }

  fail(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(e);
  }

  /**
   * Early stopping: the current ticket's sparsity and accuracy on the validation split (test without one), and
   * the same for each cut of the ladder the trial would build now (its spec's `tickets.cuts`); one calibration
   * and one evaluation per ticket; the training buffers are put back.
   */
  rungPoint(data: DataSplit): Omit<RungReport, "epoch"> | null {
    if (this.method.trainsWeights) return null; // the dense reference has no ticket
    const { net, method } = this;
    const evalSet = data.validation ?? data.test;
    const point = (masks: Uint8Array[]) => ({
      sparsity: ticketSparsity(net, masks).sparsity,
      val_accuracy: ticketAccuracies(net, masks, data.train, evalSet, null).accuracy,
    });
    const own = point(net.maskedParams.map((_, l) => method.binaryMask(l)));
    const rule = this.cfg.tickets && method.cuts;
    let ladder: RungReport["ladder"];
    if (rule) {
      const sizes = net.maskedParams.map((l) => l.w.length);
      ladder = cutValues(rule, sizes, this.cfg.tickets!.cuts).map((c) => point(sizes.map((_, l) => rule.mask(l, c))));
    }
    net.useEffectiveWeights(this.weff);
    return { ...own, ...(ladder?.length ? { ladder } : {}) };
  }

  /**
   * Evaluates the ticket (or the trained weights of the dense reference) and settles the trial; `stoppedAt`
   * (steps per epoch) marks a trial stopped early.
   */
  finish(engine: Engine, data: DataSplit, t0: number, stoppedAt?: number): void {
    if (this.settled) return;
    try {
      this.settled = true;
      const m = this.#metrics(engine, data, t0, stoppedAt !== undefined);
      if (stoppedAt !== undefined) {
        m.stopped = { epochs: this.step / stoppedAt, planned_epochs: this.epochs, rung_epoch: this.lastRung };
      }
      this.resolve(m);
    } catch (e) {
      this.reject(e);
    }
  }

  #metrics(engine: Engine, data: DataSplit, t0: number, partial = false): TrialMetrics {
    const { net, method, weff } = this;
    const { train, test, validation, source } = data;
    const trainS = this.busyMs / 1000;
    const common = {
      masked_layers: net.maskedParams.map((l) => l.name),
      loss_curve: this.curve,
      steps: this.step,
      steps_per_s: this.step / trainS,
      train_s: trainS,
      backend: engine.name,
      device: engine.device,
      data: source,
    };
    if (method.trainsWeights) {
      method.softWeights(weff);
      const { accuracy, val_accuracy } = weightsAccuracies(net, weff, train, test, validation);
      const { layers } = ticketSparsity(net, net.maskedParams.map((l) => new Uint8Array(l.w.length).fill(1)));
      return {
        ...common,
        accuracy,
        val_accuracy,
        soft_accuracy: null,
        sparsity: 0,
        layers,
        wall_s: (performance.now() - t0) / 1000,
        ticket: null,
      };
    }
    const masks = net.maskedParams.map((_, l) => method.binaryMask(l));
    const { accuracy, val_accuracy } = ticketAccuracies(net, masks, train, test, validation);
    let softAccuracy: number | null = null;
    if (method.softWeights(weff)) {
      const soft = weightsAccuracy(net, weff, train, test);
      softAccuracy = soft === accuracy ? null : soft;
    }
    const { sparsity, layers } = ticketSparsity(net, masks);
    // a trial stopped early has no ladder: its partial point is not offered to the fronts as tickets
    const cuts = this.cfg.tickets && method.cuts && !partial
      ? ticketLadder(net, method.cuts, this.cfg.tickets, data)
      : null;
    return {
      ...common,
      accuracy,
      val_accuracy,
      soft_accuracy: softAccuracy,
      sparsity,
      layers,
      wall_s: (performance.now() - t0) / 1000,
      ticket: encodeTicket(masks),
      ...(this.cfg.tickets ? { cuts } : {}),
    };
  }
}

/**
 * Trains the masks of K packed trials in lockstep and evaluates their tickets (the dense reference trains the
 * weights instead and has no ticket). The trials must share a {@link packKey}: they are built on one copy of
 * the frozen weights (never written) and fed the same batches, filled once per step. Each keeps its own
 * method, optimiser state, epochs, stop hook and result: a trial settles as soon as it finishes, fails or is
 * stopped, without waiting for the others, and a packed trial gives exactly the numbers it gives alone.
 *
 * @returns one promise per trial, in order: its metrics (including the packed binary ticket), or its error
 *   ({@link TrialStopped} when its `shouldStop` hook asked for it).
 */
export function runTrials(trials: PackedTrial[], engine: Engine): Promise<TrialMetrics>[] {
  const keys = new Set(trials.map((t) => packKey(t.cfg)));
  if (keys.size > 1) throw new Error("packed trials must share dataset, model, seed and batch size");
  const settlers: Settler[] = [];
  const promises = trials.map(() => new Promise<TrialMetrics>((resolve, reject) => settlers.push({ resolve, reject })));
  trainLockstep(trials, engine, settlers).catch((e) => settlers.forEach((s) => s.reject(e)));
  return promises;
}

/** Trains one trial alone: {@link runTrials} with K = 1. */
export function runTrial(cfg: TrialConfig, engine: Engine, hooks: TrialHooks = {}): Promise<TrialMetrics> {
  return runTrials([{ cfg, hooks }], engine)[0]!;
}

async function trainLockstep(
  trials: PackedTrial[],
  engine: Engine,
  settlers: Settler[],
): Promise<void> {
  const t0 = performance.now();
  const first = trials[0]!.cfg;
  const data = await loadDataset(first.dataset);
  const { train } = data;
  let frozen: Net | null = null;
  const runs: TrialRun[] = [];
  trials.forEach(({ cfg, hooks }, i) => {
    const { resolve, reject } = settlers[i]!;
    try {
      const net = buildNet(cfg.model, train.shape, train.classes, engine);
      if (frozen) shareFrozenWeights(frozen, net);
      else frozen = net;
      const method = createMethod(cfg, net, new Rng(cfg.seed, RNG_STREAMS.method), engine.kernels);
      runs.push(new TrialRun(cfg, hooks ?? {}, net, method, resolve, reject));
    } catch (e) {
      reject(e);
    }
  });
  const bs = Math.min(first.training.batch_size, train.n);
  const xb = new Float32Array(bs * train.dim);
  const yb = new Uint8Array(bs);
  const order = Uint32Array.from({ length: train.n }, (_, i) => i);
  const orderRng = new Rng(first.seed, RNG_STREAMS.batchOrder);
  const augment = first.dataset.augment ? new Rng(first.seed, RNG_STREAMS.augment) : null;
  const stepsPerEpoch = Math.floor(train.n / bs);
  const every = Math.min(...trials.map((t) => t.hooks?.progressEveryMs ?? 1000));
  let lastBeat = performance.now();
  let listenUntil = 0;
  const live = (epoch: number) => runs.filter((r) => !r.settled && epoch <= r.epochs);
  for (let epoch = 1; live(epoch).length; epoch++) {
    let active = live(epoch);
    for (const r of active) guard(r, () => r.method.beginEpoch(epoch - 1, r.epochs));
    orderRng.shuffle(order);
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (active.some((r) => r.settled)) active = active.filter((r) => !r.settled); // rare: no copy per step
      if (!active.length) break;
      const tFill = performance.now();
      fillBatch(train, order, s * bs, xb, yb, augment);
      const fillShare = (performance.now() - tFill) / active.length;
      for (const r of active) {
        if (r.hooks.stopEarly?.()) {
          r.finish(engine, data, t0, stepsPerEpoch);
          continue;
        }
        const t = performance.now();
        guard(r, () => r.train(xb, yb, bs));
        r.busyMs += performance.now() - t + fillShare;
      }
      if (performance.now() - lastBeat >= every) {
        for (const r of active) {
          if (r.hooks.shouldStop?.()) r.fail(new TrialStopped());
          else {
            const totalSteps = stepsPerEpoch * r.epochs;
            try {
              await r.hooks.onProgress?.({ epoch, step: r.step, totalSteps, loss: r.lastLoss });
            } catch (e) {
              r.fail(e);
            }
          }
        }
        await new Promise((res) => setTimeout(res, 0)); // let heartbeats and signals through
        lastBeat = performance.now();
      }
    }
    for (const r of active) {
      if (r.settled) continue;
      r.endEpoch(epoch, stepsPerEpoch, bs);
      if (epoch === r.epochs) r.finish(engine, data, t0);
      else if (r.hooks.rungs?.includes(epoch) && r.hooks.onRung) {
        guard(r, () => {
          const p = r.rungPoint(data);
          if (!p) return;
          r.lastRung = epoch;
          r.hooks.onRung!({ epoch, ...p });
        });
      }
    }
    if (runs.some((r) => !r.settled && r.hooks.rungs?.includes(epoch))) listenUntil = performance.now() + LISTEN_MS;
    if (performance.now() < listenUntil) {
      // after a rung report, the coordinator's decision is let through at every epoch's end for a while (short
      // epochs would otherwise run to the end between two heartbeats)
      await new Promise((res) => setTimeout(res, 0));
    }
  }
}

/** How long after a rung report a trial yields at every epoch's end, so that a stop decision reaches it. */
const LISTEN_MS = 5000;

/** Runs `f` for one trial; an error fails that trial only. */
function guard(r: TrialRun, f: () => void): void {
  try {
    f();
  } catch (e) {
    r.fail(e);
  }
}

/** Points `net`'s frozen tensors at `from`'s (same model config, so the same values): one copy for a pack. */
function shareFrozenWeights(from: Net, net: Net): void {
  net.params.forEach((p, i) => {
    const shared = from.params[i]!.w;
    if (p.weff === p.w) p.weff = shared;
    p.w = shared;
  });
}
