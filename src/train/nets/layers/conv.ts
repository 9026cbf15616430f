import type { ConvGeometry } from "../../../engine/native.ts";
import { Buffers, type Ctx, type Module, type Param } from "../module.ts";
import { reluGradInPlace, reluInPlace } from "./activation.ts";

/** Largest im2col block, in floats: convolutions run over the batch in chunks that fit it (4 MiB, where sgemm stays fast). */
const COLS_BUDGET = 1024 * 1024;

/**
 * A bias-free 2-D convolution over channels-last images (`[H, W, C]` per sample), by im2col and one matrix
 * product per chunk of the batch; optionally followed by a fused ReLU. Weights are `[Cout, k, k, Cin]`, so
 * row `j` is output channel `j` and fan-in is `k·k·Cin`.
 */
export class Conv2d implements Module {
  readonly outShape: number[];
  readonly #p: Param;
  readonly #ctx: Ctx;
  /** Input, kernel and output geometry (also what the native kernels take). */
  readonly #g: ConvGeometry;
  readonly #cout: number;
  readonly #relu: boolean;
  readonly #bufs = new Buffers();
  #x: Float32Array = new Float32Array(0);
  #y: Float32Array = new Float32Array(0);

  constructor(ctx: Ctx, p: Param, inShape: number[], opts: { stride?: number; pad?: number; relu?: boolean } = {}) {
    const [cout, k, k2, cin] = p.shape as [number, number, number, number];
    const [h, w, c] = inShape as [number, number, number];
    if (k !== k2 || c !== cin) throw new Error(`${p.name}: weights ${p.shape} do not fit input ${inShape}`);
    this.#ctx = ctx;
    this.#p = p;
    this.#cout = cout;
    const stride = opts.stride ?? 1, pad = opts.pad ?? (k - 1) / 2;
    const ho = Math.floor((h + 2 * pad - k) / stride) + 1, wo = Math.floor((w + 2 * pad - k) / stride) + 1;
    this.#g = { h, w, c, k, stride, pad, ho, wo };
    this.#relu = opts.relu ?? false;
    this.outShape = [ho, wo, cout];
  }

  /** Output pixels per sample, and the patch length k·k·Cin. */
  get #pix(): number {
    return this.#g.ho * this.#g.wo;
  }

  get #k2c(): number {
    return this.#g.k * this.#g.k * this.#g.c;
  }

  /** Samples per chunk so that one chunk's im2col block stays within budget. */
  #chunk(b: number): number {
    return Math.max(1, Math.min(b, Math.floor(COLS_BUDGET / (this.#pix * this.#k2c))));
  }

  /**
   * Moves samples [n0, n0+nb) between the image and its patch matrix (rows: output pixels; columns: ky, kx, c):
   * `cols` writes the patches (zeros outside the image), `image` adds patch gradients back (col2im).
   */
  #patches(dir: "cols" | "image", image: Float32Array, cols: Float32Array, n0: number, nb: number): void {
    const g = this.#g, kernels = this.#ctx.engine.kernels;
    if (kernels) return kernels.patches(dir, image, cols, n0, nb, g);
    const { h: H, w: W, c: C, k, stride: s, pad: p } = g, toCols = dir === "cols";
    let o = 0;
    for (let n = n0; n < n0 + nb; n++) {
      const base = n * H * W * C;
      for (let oy = 0; oy < g.ho; oy++) {
        for (let ox = 0; ox < g.wo; ox++) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * s - p + ky;
            for (let kx = 0; kx < k; kx++, o += C) {
              const ix = ox * s - p + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                if (toCols) cols.fill(0, o, o + C);
                continue;
              }
              const at = base + (iy * W + ix) * C;
              if (toCols) { for (let c = 0; c < C; c++) cols[o + c] = image[at + c]!; }
              else for (let c = 0; c < C; c++) image[at + c]! += cols[o + c]!;
            }
          }
        }
      }
    }
  }

  forward(x: Float32Array, b: number): Float32Array {
    const pix = this.#pix, K = this.#k2c, cout = this.#cout;
    const y = this.#bufs.get("y", b * pix * cout);
    const chunk = this.#chunk(b);
    const cols = this.#bufs.get("cols", chunk * pix * K);
    for (let n0 = 0; n0 < b; n0 += chunk) {
      const nb = Math.min(chunk, b - n0);
      this.#patches("cols", x, cols, n0, nb);
      const out = y.subarray(n0 * pix * cout, (n0 + nb) * pix * cout);
      this.#ctx.engine.gemm(false, true, nb * pix, cout, K, cols, this.#p.weff, out, 0);
    }
    if (this.#relu) reluInPlace(y, this.#ctx.engine.kernels);
    this.#x = x;
    this.#y = y;
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    const pix = this.#pix, K = this.#k2c, cout = this.#cout;
    if (this.#relu) reluGradInPlace(dy, this.#y, this.#ctx.engine.kernels);
    const e = this.#ctx.engine, p = this.#p;
    const chunk = this.#chunk(b);
    const cols = this.#bufs.get("cols", chunk * pix * K);
    const dcols = needDx ? this.#bufs.get("dcols", chunk * pix * K) : null;
    const dx = needDx ? this.#bufs.get("dx", b * this.#g.h * this.#g.w * this.#g.c) : null;
    dx?.fill(0);
    for (let n0 = 0; n0 < b; n0 += chunk) {
      const nb = Math.min(chunk, b - n0);
      const d = dy.subarray(n0 * pix * cout, (n0 + nb) * pix * cout);
      if (p.grad) {
        this.#patches("cols", this.#x, cols, n0, nb);
        e.gemm(true, false, cout, K, nb * pix, d, cols, p.grad, n0 === 0 ? 0 : 1);
      }
      if (dcols && dx) {
        e.gemm(false, false, nb * pix, K, cout, d, p.weff, dcols, 0);
        this.#patches("image", dx, dcols, n0, nb);
      }
    }
    return dx;
  }

  params(): Param[] {
    return [this.#p];
  }
}

/** 2×2 max pooling with stride 2 over channels-last images (odd edges dropped). */
export class MaxPool2 implements Module {
  readonly outShape: number[];
  readonly #in: [number, number, number];
  readonly #bufs = new Buffers();
  #arg: Int32Array = new Int32Array(0);

  constructor(inShape: number[]) {
    this.#in = inShape as [number, number, number];
    const [h, w, c] = this.#in;
    this.outShape = [Math.floor(h / 2), Math.floor(w / 2), c];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const [H, W, C] = this.#in, [ho, wo] = this.outShape as [number, number];
    const y = this.#bufs.get("y", b * ho * wo * C);
    if (this.#arg.length < y.length) this.#arg = new Int32Array(y.length);
    const arg = this.#arg;
    let o = 0;
    for (let n = 0; n < b; n++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const i00 = ((n * H + 2 * oy) * W + 2 * ox) * C;
          for (let c = 0; c < C; c++, o++) {
            let best = i00 + c, v = x[best]!;
            for (const off of [C, W * C, W * C + C]) {
              const j = i00 + c + off;
              if (x[j]! > v) v = x[best = j]!;
            }
            y[o] = v;
            arg[o] = best;
          }
        }
      }
    }
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (!needDx) return null;
    const [H, W, C] = this.#in;
    const dx = this.#bufs.get("dx", b * H * W * C);
    dx.fill(0);
    for (let o = 0; o < dy.length; o++) dx[this.#arg[o]!]! += dy[o]!;
    return dx;
  }

  params(): Param[] {
    return [];
  }
}

/** Mean over the spatial axes: `[H, W, C]` to `[C]`. */
export class GlobalAvgPool implements Module {
  readonly outShape: number[];
  readonly #pix: number;
  readonly #c: number;
  readonly #bufs = new Buffers();

  constructor(inShape: number[]) {
    const [h, w, c] = inShape as [number, number, number];
    this.#pix = h * w;
    this.#c = c;
    this.outShape = [c];
  }

  forward(x: Float32Array, b: number): Float32Array {
    const C = this.#c, P = this.#pix;
    const y = this.#bufs.get("y", b * C);
    y.fill(0);
    for (let n = 0; n < b; n++) {
      for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) y[n * C + c]! += x[(n * P + p) * C + c]!;
    }
    for (let i = 0; i < y.length; i++) y[i]! /= P;
    return y;
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    if (!needDx) return null;
    const C = this.#c, P = this.#pix;
    const dx = this.#bufs.get("dx", b * P * C);
    for (let n = 0; n < b; n++) {
      for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) dx[(n * P + p) * C + c] = dy[n * C + c]! / P;
    }
    return dx;
  }

  params(): Param[] {
    return [];
  }
}
