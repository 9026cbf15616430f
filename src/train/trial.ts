import type { Engine } from "../engine/engine.ts";
import type { TrialConfig } from "../spec/schema.ts";
import { Rng } from "../util/rng.ts";
import { augmentInto } from "./data/augment.ts";
import type { Dataset } from "./data/dataset.ts";
import { loadDataset } from "./data/load.ts";
import { createMethod } from "./masks/create.ts";
import { maskedWeights } from "./masks/method.ts";
import { buildNet } from "./nets/build.ts";
import type { Net } from "./nets/net.ts";
import type { LayerSparsity, LossPoint, TrialMetrics } from "./result.ts";
import { encodeTicket } from "../ticket/bits.ts";

/** Hooks the worker passes to a running trial. */
export interface TrialHooks {
  /** Called about every `progressEveryMs` with the fraction done; may be async (a heartbeat). */
  onProgress?: (info: { epoch: number; step: number; totalSteps: number; loss: number }) => void | Promise<void>;
  progressEveryMs?: number;
  /** Checked between steps; when it returns true the trial stops with a {@link TrialStopped}. */
  shouldStop?: () => boolean;
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
  const layers = net.layers.map((layer, l) => {
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
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  maskedWeights(net, masks, weff);
  return weightsAccuracy(net, weff, train, test);
}

function weightsAccuracy(net: Net, weff: Float32Array[], train: Dataset, test: Dataset): number {
  net.useEffectiveWeights(weff);
  net.calibrate(train);
  return net.evaluate(test);
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

/**
 * Trains the mask of one trial on a frozen network and evaluates its ticket (the dense reference trains the
 * weights instead and has no ticket). The frozen weights are never written.
 *
 * @returns the metrics a trial reports, including the packed binary ticket.
 * @throws {TrialStopped} when `hooks.shouldStop` asks for it.
 */
export async function runTrial(cfg: TrialConfig, engine: Engine, hooks: TrialHooks = {}): Promise<TrialMetrics> {
  const t0 = performance.now();
  const { train, test, source } = await loadDataset(cfg.dataset);
  const net = buildNet(cfg.model, train.shape, train.classes, engine);
  const method = createMethod(cfg, net, new Rng(cfg.seed, 2), engine.kernels);
  const bs = Math.min(cfg.training.batch_size, train.n);
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  const dweff = net.layers.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const xb = new Float32Array(bs * train.dim);
  const yb = new Uint8Array(bs);
  const order = Uint32Array.from({ length: train.n }, (_, i) => i);
  const orderRng = new Rng(cfg.seed, 3);
  const augment = cfg.dataset.augment ? new Rng(cfg.seed, 4) : null;
  const epochs = cfg.training.epochs;
  const stepsPerEpoch = Math.floor(train.n / bs);
  const totalSteps = stepsPerEpoch * epochs;
  const curve: LossPoint[] = [];
  const every = hooks.progressEveryMs ?? 1000;
  let lastBeat = performance.now();
  let step = 0;
  const tTrain = performance.now();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    method.beginEpoch(epoch - 1, epochs);
    orderRng.shuffle(order);
    let taskSum = 0, correct = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      fillBatch(train, order, s * bs, xb, yb, augment);
      method.effectiveWeights(weff);
      net.forward(xb, bs, true);
      const ce = net.crossEntropy(yb, bs, true);
      net.backward(bs);
      method.applyGradients(dweff);
      step++;
      taskSum += ce.loss;
      correct += ce.correct;
      if (performance.now() - lastBeat >= every) {
        if (hooks.shouldStop?.()) throw new TrialStopped();
        await hooks.onProgress?.({ epoch, step, totalSteps, loss: ce.loss });
        await new Promise((r) => setTimeout(r, 0)); // let heartbeats and signals through
        lastBeat = performance.now();
      }
    }
    curve.push({
      epoch,
      step,
      loss: taskSum / stepsPerEpoch + method.penalty(),
      task_loss: taskSum / stepsPerEpoch,
      train_accuracy: correct / (stepsPerEpoch * bs),
    });
  }
  const trainS = (performance.now() - tTrain) / 1000;
  const common = {
    masked_layers: net.layers.map((l) => l.name),
    loss_curve: curve,
    steps: step,
    steps_per_s: step / trainS,
    train_s: trainS,
    backend: engine.name,
    device: engine.device,
    data: source,
  };
  if (method.trainsWeights) {
    method.softWeights(weff);
    const accuracy = weightsAccuracy(net, weff, train, test);
    const { layers } = ticketSparsity(net, net.layers.map((l) => new Uint8Array(l.w.length).fill(1)));
    return {
      ...common,
      accuracy,
      soft_accuracy: null,
      sparsity: 0,
      layers,
      wall_s: (performance.now() - t0) / 1000,
      ticket: null,
    };
  }
  const masks = net.layers.map((_, l) => method.binaryMask(l));
  const accuracy = ticketAccuracy(net, masks, train, test);
  let softAccuracy: number | null = null;
  if (method.softWeights(weff)) {
    const soft = weightsAccuracy(net, weff, train, test);
    softAccuracy = soft === accuracy ? null : soft;
  }
  const { sparsity, layers } = ticketSparsity(net, masks);
  return {
    ...common,
    accuracy,
    soft_accuracy: softAccuracy,
    sparsity,
    layers,
    wall_s: (performance.now() - t0) / 1000,
    ticket: encodeTicket(masks),
  };
}
