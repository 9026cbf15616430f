import { Buffers, type Module, type Param } from "../module.ts";

/**
 * `y = inner(x) + shortcut(x)` (identity shortcut when none), optionally followed by a ReLU (ResNet's
 * basic block); the pre-norm transformer blocks use it without.
 */
export class Residual implements Module {
  readonly outShape: number[];
  readonly #inner: Module;
  readonly #shortcut: Module | null;
  readonly #relu: boolean;
  readonly #bufs = new Buffers();
  #y: Float32Array = new Float32Array(0);

  constructor(inner: Module, shortcut: Module | null, relu: boolean) {
    this.#inner = inner;
    this.#shortcut = shortcut;
    this.#relu = relu;
    this.outShape = inner.outShape;
  }

  forward(x: Float32Array, b: number, training: boolean): Float32Array {
    const a = this.#inner.forward(x, b, training);
    const s = this.#shortcut ? this.#shortcut.forward(x, b, training) : x;
    const y = this.#bufs.get("y", a.length);
    for (let i = 0; i < y.length; i++) {
      const v = a[i]! + s[i]!;
      y[i] = this.#relu && v < 0 ? 0 : v;
    }
    return (this.#y = y);
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (this.#relu) { for (let i = 0; i < dy.length; i++) if (this.#y[i]! <= 0) dy[i] = 0; }
    // the inner branch may overwrite its gradient input; the shortcut needs it unchanged
    const copy = this.#bufs.get("dy", dy.length);
    copy.set(dy);
    const dInner = this.#inner.backward(copy, b, needDx);
    if (!needDx) {
      this.#shortcut?.backward(dy, b, false);
      return null;
    }
    const dShort = this.#shortcut ? this.#shortcut.backward(dy, b, true)! : dy;
    const dx = this.#bufs.get("dx", dInner!.length);
    for (let i = 0; i < dx.length; i++) dx[i] = dInner![i]! + dShort[i]!;
    return dx;
  }

  params(): Param[] {
    return [...this.#inner.params(), ...(this.#shortcut?.params() ?? [])];
  }

  children(): Module[] {
    return this.#shortcut ? [this.#inner, this.#shortcut] : [this.#inner];
  }
}

/**
 * ResNet's parameter-free "option A" shortcut for a stage change: every second pixel, and the channels
 * zero-padded equally on both sides (`[H, W, C]` to `[H/2, W/2, Cout]`).
 */
export class ShortcutA implements Module {
  readonly outShape: number[];
  readonly #in: [number, number, number];
  readonly #off: number;
  readonly #bufs = new Buffers();

  constructor(inShape: number[], cout: number) {
    this.#in = inShape as [number, number, number];
    const [h, w, c] = this.#in;
    this.#off = Math.floor((cout - c) / 2);
    this.outShape = [Math.ceil(h / 2), Math.ceil(w / 2), cout];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const [H, W, C] = this.#in, [ho, wo, co] = this.outShape as [number, number, number];
    const y = this.#bufs.get("y", b * ho * wo * co);
    y.fill(0);
    for (let n = 0; n < b; n++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const src = ((n * H + 2 * oy) * W + 2 * ox) * C, dst = ((n * ho + oy) * wo + ox) * co + this.#off;
          for (let c = 0; c < C; c++) y[dst + c] = x[src + c]!;
        }
      }
    }
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (!needDx) return null;
    const [H, W, C] = this.#in, [ho, wo, co] = this.outShape as [number, number, number];
    const dx = this.#bufs.get("dx", b * H * W * C);
    dx.fill(0);
    for (let n = 0; n < b; n++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const src = ((n * H + 2 * oy) * W + 2 * ox) * C, dst = ((n * ho + oy) * wo + ox) * co + this.#off;
          for (let c = 0; c < C; c++) dx[src + c] = dy[dst + c]!;
        }
      }
    }
    return dx;
  }

  params(): Param[] {
    return [];
  }
}
