import { Buffers, type Module, type Param } from "../module.ts";

/** Elementwise ReLU. */
export class ReLU implements Module {
  readonly outShape: number[];
  readonly #bufs = new Buffers();
  #y: Float32Array = new Float32Array(0);

  constructor(inShape: number[]) {
    this.outShape = inShape;
  }

  forward(x: Float32Array): Float32Array {
    const y = this.#bufs.get("y", x.length);
    for (let i = 0; i < x.length; i++) y[i] = x[i]! > 0 ? x[i]! : 0;
    return (this.#y = y);
  }

  backward(dy: Float32Array): Float32Array {
    const y = this.#y;
    for (let i = 0; i < dy.length; i++) if (y[i]! <= 0) dy[i] = 0;
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
