import type { Engine } from "../../engine/engine.ts";
import type { ModelConfig } from "../../spec/schema.ts";
import { Rng } from "../../util/rng.ts";
import { initWeights } from "../init.ts";

/** One frozen, masked, bias-free linear layer; `w` is row-major out×in. */
export interface Layer {
  name: string;
  in: number;
  out: number;
  w: Float32Array;
}

/** A frozen network: its weights never change; only masks over them are learned. */
export interface FrozenNet {
  layers: Layer[];
  inputDim: number;
  classes: number;
}

/** Builds the MLP `inputDim → widths… → classes` with seeded frozen weights; every layer is masked. */
export function buildMlp(model: ModelConfig, inputDim: number, classes: number): FrozenNet {
  const dims = [inputDim, ...model.widths, classes];
  const layers: Layer[] = [];
  for (let l = 0; l + 1 < dims.length; l++) {
    const fin = dims[l]!, fout = dims[l + 1]!;
    const rng = new Rng(model.weight_seed, 1000 + l);
    layers.push({ name: `fc${l + 1}`, in: fin, out: fout, w: initWeights(model.init, fin, fin * fout, rng) });
  }
  return { layers, inputDim, classes };
}

/** The number of masked weights of a network. */
export function maskedCount(net: FrozenNet): number {
  return net.layers.reduce((s, l) => s + l.w.length, 0);
}

/**
 * Forward and backward passes of an MLP (ReLU between layers, softmax cross-entropy at the end) over given
 * effective weights; buffers are allocated once for the largest batch.
 */
export class MlpPass {
  readonly #net: FrozenNet;
  readonly #engine: Engine;
  readonly #acts: Float32Array[];
  readonly #grads: Float32Array[];

  constructor(net: FrozenNet, engine: Engine, maxBatch: number) {
    this.#net = net;
    this.#engine = engine;
    this.#acts = net.layers.map((l) => new Float32Array(maxBatch * l.out));
    this.#grads = net.layers.map((l) => new Float32Array(maxBatch * Math.max(l.in, l.out)));
  }

  /** Logits (b×classes) for the rows `x` (b×inputDim) under the effective weights `weff`. */
  forward(x: Float32Array, b: number, weff: Float32Array[]): Float32Array {
    let h = x;
    const last = this.#net.layers.length - 1;
    this.#net.layers.forEach((layer, l) => {
      const out = this.#acts[l]!;
      this.#engine.gemm(false, true, b, layer.out, layer.in, h, weff[l]!, out, 0);
      if (l < last) {
        const n = b * layer.out;
        for (let i = 0; i < n; i++) if (out[i]! < 0) out[i] = 0;
      }
      h = out;
    });
    return this.#acts[last]!;
  }

  /**
   * Mean softmax cross-entropy of the last forward pass; writes d(loss)/d(logits) into `dlogits` when given.
   * @returns the loss and the number of correct predictions.
   */
  crossEntropy(y: Uint8Array, b: number, dlogits?: Float32Array): { loss: number; correct: number } {
    const c = this.#net.classes;
    const logits = this.#acts[this.#net.layers.length - 1]!;
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
      if (dlogits) {
        for (let j = 0; j < c; j++) dlogits[o + j] = (Math.exp(logits[o + j]! - max) / sum - (j === label ? 1 : 0)) / b;
      }
    }
    return { loss: loss / b, correct };
  }

  /**
   * Backpropagates `dlogits` through the last forward pass; writes d(loss)/d(weff[l]) into `dweff[l]`.
   * Gradients with respect to the input are not computed.
   */
  backward(x: Float32Array, b: number, weff: Float32Array[], dlogits: Float32Array, dweff: Float32Array[]): void {
    const layers = this.#net.layers;
    let dout = dlogits;
    for (let l = layers.length - 1; l >= 0; l--) {
      const layer = layers[l]!;
      const hin = l === 0 ? x : this.#acts[l - 1]!;
      this.#engine.gemm(true, false, layer.out, layer.in, b, dout, hin, dweff[l]!, 0);
      if (l === 0) break;
      const dh = this.#grads[l - 1]!;
      this.#engine.gemm(false, false, b, layer.in, layer.out, dout, weff[l]!, dh, 0);
      const n = b * layer.in;
      for (let i = 0; i < n; i++) if (hin[i]! <= 0) dh[i] = 0;
      dout = dh;
    }
  }
}
