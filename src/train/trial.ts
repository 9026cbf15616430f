import type { Engine } from "../engine/engine.ts";
import type { TrialConfig } from "../spec/schema.ts";
import { Rng } from "../util/rng.ts";
import type { Dataset } from "./data/dataset.ts";
import { loadDataset } from "./data/load.ts";
import { BernoulliGates } from "./masks/gates.ts";
import { maskedWeights } from "./masks/method.ts";
import { buildMlp, type FrozenNet, MlpPass } from "./nets/mlp.ts";
import type { LayerSparsity, LossPoint, TrialMetrics } from "./result.ts";
import { encodeTicket } from "./ticket.ts";

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

const EVAL_CHUNK = 500;

/** Test accuracy of a network under given effective weights. */
export function evaluate(pass: MlpPass, data: Dataset, weff: Float32Array[]): number {
  let correct = 0;
  for (let start = 0; start < data.n; start += EVAL_CHUNK) {
    const b = Math.min(EVAL_CHUNK, data.n - start);
    pass.forward(data.x.subarray(start * data.dim, (start + b) * data.dim), b, weff);
    correct += pass.crossEntropy(data.y.subarray(start, start + b), b).correct;
  }
  return correct / data.n;
}

/** Per-layer and overall sparsity of a binary ticket. */
export function ticketSparsity(net: FrozenNet, masks: Uint8Array[]): { sparsity: number; layers: LayerSparsity[] } {
  let total = 0, kept = 0;
  const layers = net.layers.map((layer, l) => {
    const m = masks[l]!;
    let k = 0;
    for (let i = 0; i < m.length; i++) k += m[i]!;
    total += m.length;
    kept += k;
    return { layer: layer.name, shape: [layer.out, layer.in], total: m.length, kept: k, sparsity: 1 - k / m.length };
  });
  return { sparsity: 1 - kept / total, layers };
}

/**
 * Trains the mask of one trial on a frozen network and evaluates its ticket. Weights are never written.
 *
 * @returns the metrics a trial reports, including the packed binary ticket.
 * @throws {TrialStopped} when `hooks.shouldStop` asks for it.
 */
export async function runTrial(cfg: TrialConfig, engine: Engine, hooks: TrialHooks = {}): Promise<TrialMetrics> {
  const t0 = performance.now();
  const { train, test, source } = await loadDataset(cfg.dataset);
  const net = buildMlp(cfg.model, train.dim, train.classes);
  const rng = new Rng(cfg.seed, 2);
  const method = new BernoulliGates(net, cfg.method, cfg.training, rng);
  const bs = Math.min(cfg.training.batch_size, train.n);
  const pass = new MlpPass(net, engine, Math.max(bs, EVAL_CHUNK));
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  const dweff = net.layers.map((l) => new Float32Array(l.w.length));
  const dlogits = new Float32Array(bs * train.classes);
  const xb = new Float32Array(bs * train.dim);
  const yb = new Uint8Array(bs);
  const order = Uint32Array.from({ length: train.n }, (_, i) => i);
  const orderRng = new Rng(cfg.seed, 3);
  const stepsPerEpoch = Math.floor(train.n / bs);
  const totalSteps = stepsPerEpoch * cfg.training.epochs;
  const curve: LossPoint[] = [];
  const every = hooks.progressEveryMs ?? 1000;
  let lastBeat = performance.now();
  let step = 0;
  const tTrain = performance.now();
  for (let epoch = 1; epoch <= cfg.training.epochs; epoch++) {
    orderRng.shuffle(order);
    let taskSum = 0, correct = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      for (let i = 0; i < bs; i++) {
        const r = order[s * bs + i]!;
        xb.set(train.x.subarray(r * train.dim, (r + 1) * train.dim), i * train.dim);
        yb[i] = train.y[r]!;
      }
      method.effectiveWeights(weff);
      pass.forward(xb, bs, weff);
      const ce = pass.crossEntropy(yb, bs, dlogits);
      pass.backward(xb, bs, weff, dlogits, dweff);
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
  const masks = net.layers.map((_, l) => method.binaryMask(l));
  maskedWeights(net, masks, weff);
  const accuracy = evaluate(pass, test, weff);
  let softAccuracy: number | null = null;
  if (method.softWeights(weff)) {
    const soft = evaluate(pass, test, weff);
    softAccuracy = soft === accuracy ? null : soft;
  }
  const { sparsity, layers } = ticketSparsity(net, masks);
  return {
    accuracy,
    soft_accuracy: softAccuracy,
    sparsity,
    layers,
    masked_layers: net.layers.map((l) => l.name),
    loss_curve: curve,
    steps: step,
    steps_per_s: step / trainS,
    train_s: trainS,
    wall_s: (performance.now() - t0) / 1000,
    backend: engine.name,
    device: engine.device,
    data: source,
    ticket: encodeTicket(masks),
  };
}
