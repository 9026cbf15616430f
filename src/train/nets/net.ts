import type { Engine } from "../../engine/engine.ts";
import type { Dataset } from "../data/dataset.ts";
import { type Module, type Param, sizeOf } from "./module.ts";
import { isCalibratable } from "./layers/norm.ts";
import { FLT_NORMAL_MIN } from "../float32.ts";

/** What mask methods see of a network: its masked weight tensors, in order. */
export interface FrozenNet {
  maskedParams: Param[];
}

const EVAL_CHUNK = 500;
/** Training samples used to calibrate batch-norm statistics for evaluation (the first ones, in order). */
export const CALIBRATION_SAMPLES = 2048;

/**
 * A network with frozen seeded weights, of which the tensors in `maskedParams` are masked; ends in logits for a
 * softmax cross-entropy. `params` are all weight tensors, masked or not.
 */
export class Net implements FrozenNet {
  readonly maskedParams: Param[];
  readonly params: Param[];
  readonly inputShape: number[];
  readonly classes: number;
  readonly engine: Engine;
  readonly #body: Module;
  readonly #calibratable: boolean;
  #logits: Float32Array = new Float32Array(0);
  #dlogits: Float32Array = new Float32Array(0);

  constructor(body: Module, inputShape: number[], classes: number, engine: Engine) {
    if (sizeOf(body.outShape) !== classes) {
      throw new Error(`the network ends in ${body.outShape} outputs, expected ${classes} classes`);
    }
    this.#body = body;
    this.params = body.params();
    this.maskedParams = this.params.filter((p) => p.masked);
    this.inputShape = inputShape;
    this.classes = classes;
    this.engine = engine;
    const walk = (m: Module): boolean => isCalibratable(m) || (m.children?.() ?? []).some(walk);
    this.#calibratable = walk(body);
  }

  get inputSize(): number {
    return sizeOf(this.inputShape);
  }

  /** Points the masked tensors at effective weights (one array per entry of `maskedParams`). */
  useEffectiveWeights(weff: Float32Array[]): void {
    this.maskedParams.forEach((p, l) => (p.weff = weff[l]!));
  }

  /** Points the masked tensors' gradients at `grads` (d(loss)/d(weff)). */
  useGradients(grads: Float32Array[]): void {
    this.maskedParams.forEach((p, l) => (p.grad = grads[l]!));
  }

  /** Logits (b×classes) for `b` samples. */
  forward(x: Float32Array, b: number, training: boolean): Float32Array {
    return (this.#logits = this.#body.forward(x, b, training));
  }

  /**
   * Mean softmax cross-entropy of the last forward pass and its number of correct predictions; keeps
   * d(loss)/d(logits) for {@link backward} when `withGradient`.
   */
  crossEntropy(y: Uint8Array, b: number, withGradient = false): { loss: number; correct: number } {
    const c = this.classes, logits = this.#logits;
    if (withGradient && this.#dlogits.length < b * c) this.#dlogits = new Float32Array(b * c);
    const d = this.#dlogits;
    let loss = 0, correct = 0;
    for (let i = 0; i < b; i++) {
      const o = i * c;
      let max = -Infinity, arg = 0;
      for (let j = 0; j < c; j++) if (logits[o + j]! > max) max = logits[o + (arg = j)]!;
      let sum = 0;
      for (let j = 0; j < c; j++) sum += Math.exp(logits[o + j]! - max);
      const label = y[i]!;
      loss += Math.log(sum) + max - logits[o + label]!;
      if (arg === label) correct++;
      if (withGradient) {
        for (let j = 0; j < c; j++) {
          const v = (Math.exp(logits[o + j]! - max) / sum - (j === label ? 1 : 0)) / b;
          // a subnormal gradient would make every product of the backward pass crawl (microcode assists)
          d[o + j] = Math.abs(v) < FLT_NORMAL_MIN ? 0 : v;
        }
      }
    }
    return { loss: loss / b, correct };
  }

  /** Backpropagates the last cross-entropy's gradient; writes into every tensor's `grad` that is set. */
  backward(b: number): void {
    this.#body.backward(this.#dlogits.subarray(0, b * this.classes), b, false);
  }

  /**
   * Recomputes batch-norm statistics over the first {@link CALIBRATION_SAMPLES} training samples under the
   * current effective weights (no-op for networks without batch norm).
   */
  calibrate(train: Dataset): void {
    if (!this.#calibratable) return;
    const layers: Module[] = [];
    const walk = (m: Module) => {
      if (isCalibratable(m)) layers.push(m);
      m.children?.().forEach(walk);
    };
    walk(this.#body);
    layers.forEach((m) => isCalibratable(m) && m.startCalibration());
    const n = Math.min(CALIBRATION_SAMPLES, train.n), dim = this.inputSize;
    for (let s = 0; s < n; s += EVAL_CHUNK) {
      const b = Math.min(EVAL_CHUNK, n - s);
      this.#body.forward(train.x.subarray(s * dim, (s + b) * dim), b, false);
    }
    layers.forEach((m) => isCalibratable(m) && m.finishCalibration());
  }

  /** Accuracy on a dataset under the current effective weights (evaluation mode). */
  evaluate(data: Dataset): number {
    let correct = 0;
    const dim = this.inputSize;
    for (let start = 0; start < data.n; start += EVAL_CHUNK) {
      const b = Math.min(EVAL_CHUNK, data.n - start);
      this.forward(data.x.subarray(start * dim, (start + b) * dim), b, false);
      correct += this.crossEntropy(data.y.subarray(start, start + b), b).correct;
    }
    return correct / data.n;
  }
}
