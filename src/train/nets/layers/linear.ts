import { Buffers, type Ctx, type Module, type Param, sizeOf } from "../module.ts";
import { reluGradInPlace, reluInPlace } from "./activation.ts";

/**
 * A bias-free linear layer on the last axis (`y = x · Wᵀ`, `W` out×in), optionally followed by a ReLU
 * fused into the same pass. Leading axes (tokens) are treated as more rows.
 */
export class Linear implements Module {
  readonly outShape: number[];
  readonly #p: Param;
  readonly #ctx: Ctx;
  readonly #in: number;
  readonly #out: number;
  readonly #perSample: number;
  readonly #relu: boolean;
  readonly #bufs = new Buffers();
  #x: Float32Array = new Float32Array(0);
  #y: Float32Array = new Float32Array(0);

  constructor(ctx: Ctx, p: Param, inShape: number[], relu: boolean) {
    const [out, inDim] = p.shape as [number, number];
    if (inShape[inShape.length - 1] !== inDim) {
      throw new Error(`${p.name}: input has ${inShape[inShape.length - 1]} features, weights expect ${inDim}`);
    }
    this.#ctx = ctx;
    this.#p = p;
    this.#in = inDim;
    this.#out = out;
    this.#relu = relu;
    this.#perSample = sizeOf(inShape) / inDim;
    this.outShape = [...inShape.slice(0, -1), out];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const rows = b * this.#perSample;
    const y = this.#bufs.get("y", rows * this.#out);
    this.#ctx.engine.gemm(false, true, rows, this.#out, this.#in, x, this.#p.weff, y, 0);
    if (this.#relu) reluInPlace(y, this.#ctx.engine.kernels);
    this.#x = x;
    this.#y = y;
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    const rows = b * this.#perSample, y = this.#y;
    if (this.#relu) reluGradInPlace(dy, y, this.#ctx.engine.kernels);
    const e = this.#ctx.engine, p = this.#p;
    if (p.grad) e.gemm(true, false, this.#out, this.#in, rows, dy, this.#x, p.grad, 0);
    if (!needDx) return null;
    const dx = this.#bufs.get("dx", rows * this.#in);
    e.gemm(false, false, rows, this.#in, this.#out, dy, p.weff, dx, 0);
    return dx;
  }

  params(): Param[] {
    return [this.#p];
  }
}
