import type { FusedKernels } from "../../../engine/native.ts";
import { Buffers, type Ctx, type Module, type Param } from "../module.ts";

/** ReLU in place (`y < 0` becomes 0), natively when the kernels are there (a branch per element mispredicts). */
export function reluInPlace(y: Float32Array, kernels?: FusedKernels | null): void {
  if (kernels) kernels.relu(y);
  else for (let i = 0; i < y.length; i++) if (y[i]! < 0) y[i] = 0;
}

/** ReLU's backward in place: `dy` zeroed where the output `y` is not positive. */
export function reluGradInPlace(dy: Float32Array, y: Float32Array, kernels?: FusedKernels | null): void {
  if (kernels) kernels.reluGrad(dy, y);
  else for (let i = 0; i < dy.length; i++) if (y[i]! <= 0) dy[i] = 0;
}

/** Elementwise ReLU (native when the context's engine has the kernels). */
export class ReLU implements Module {
  readonly outShape: number[];
  readonly #bufs = new Buffers();
  readonly #ctx: Ctx | null;
  #y: Float32Array = new Float32Array(0);

  constructor(inShape: number[], ctx?: Ctx) {
    this.outShape = inShape;
    this.#ctx = ctx ?? null;
  }

  forward(x: Float32Array): Float32Array {
    const y = this.#bufs.get("y", x.length);
    y.set(x);
    reluInPlace(y, this.#ctx?.engine.kernels);
    return (this.#y = y);
  }

  backward(dy: Float32Array): Float32Array {
    reluGradInPlace(dy, this.#y, this.#ctx?.engine.kernels);
    return dy;
  }

  params(): Param[] {
    return [];
  }
}

const C = Math.sqrt(2 / Math.PI);

/** Elementwise GELU, tanh approximation (as in the ViT reference implementations). */
export class GELU implements Module {
  readonly outShape: number[];
  readonly #bufs = new Buffers();
  #x: Float32Array = new Float32Array(0);

  constructor(inShape: number[]) {
    this.outShape = inShape;
  }

  forward(x: Float32Array): Float32Array {
    const y = this.#bufs.get("y", x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      y[i] = 0.5 * v * (1 + Math.tanh(C * (v + 0.044715 * v * v * v)));
    }
    this.#x = x;
    return y;
  }

  backward(dy: Float32Array): Float32Array {
    const x = this.#x;
    for (let i = 0; i < dy.length; i++) {
      const v = x[i]!;
      const t = Math.tanh(C * (v + 0.044715 * v * v * v));
      dy[i] = dy[i]! * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * C * (1 + 3 * 0.044715 * v * v));
    }
    return dy;
  }

  params(): Param[] {
    return [];
  }
}
