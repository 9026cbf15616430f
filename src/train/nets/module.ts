import type { Engine } from "../../engine/engine.ts";

/**
 * One weight tensor of a network. `w` holds the frozen seeded values and is never written by mask methods;
 * the forward pass reads `weff` (the effective weights, e.g. `w ⊙ z`) and the backward pass writes
 * d(loss)/d(weff) into `grad` when it is set. Row `j` of a tensor (its first axis) is output unit `j`.
 */
export interface Param {
  name: string;
  shape: number[];
  fanIn: number;
  w: Float32Array;
  /** Whether a mask is learned over this tensor (otherwise it keeps its frozen values). */
  masked: boolean;
  weff: Float32Array;
  grad: Float32Array | null;
}

/** Creates a parameter whose effective weights start as its frozen values. */
export function param(name: string, shape: number[], fanIn: number, w: Float32Array): Param {
  return { name, shape, fanIn, w, masked: true, weff: w, grad: null };
}

/** What every layer sees: the engine that multiplies matrices. */
export interface Ctx {
  engine: Engine;
}

/**
 * A differentiable layer over a batch of `b` samples, each of shape `inShape` (channels last). Buffers are
 * the layer's own and reused; the output of `forward` stays valid until its next call, and `backward`
 * must follow the `forward` whose gradient it computes.
 */
export interface Module {
  readonly outShape: number[];
  forward(x: Float32Array, b: number, training: boolean): Float32Array;
  /** d(loss)/d(input) for d(loss)/d(output) `dy` (which it may overwrite); null when `needDx` is false. */
  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null;
  params(): Param[];
  /** Sub-layers, for walks over the network (batch-norm calibration). */
  children?(): Module[];
}

export const sizeOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Per-layer scratch buffers, grown on demand and reused across steps. */
export class Buffers {
  readonly #bufs = new Map<string, Float32Array>();

  get(key: string, n: number): Float32Array {
    let buf = this.#bufs.get(key);
    if (!buf || buf.length < n) {
      buf = new Float32Array(n);
      this.#bufs.set(key, buf);
    }
    return buf.length === n ? buf : buf.subarray(0, n);
  }
}

/** Layers applied one after another. */
export class Sequential implements Module {
  readonly outShape: number[];
  readonly layers: Module[];

  constructor(layers: Module[], inShape: number[]) {
    this.layers = layers;
    this.outShape = layers.length ? layers[layers.length - 1]!.outShape : inShape;
  }

  forward(x: Float32Array, b: number, training: boolean): Float32Array {
    let h = x;
    for (const l of this.layers) h = l.forward(h, b, training);
    return h;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    let d: Float32Array | null = dy;
    for (let i = this.layers.length - 1; i >= 0 && d; i--) d = this.layers[i]!.backward(d, b, needDx || i > 0);
    return d;
  }

  params(): Param[] {
    return this.layers.flatMap((l) => l.params());
  }

  children(): Module[] {
    return this.layers;
  }
}
