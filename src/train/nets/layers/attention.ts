import { Buffers, type Ctx, type Module, type Param } from "../module.ts";
import { Linear } from "./linear.ts";

/**
 * Multi-head self-attention over `[T, D]` tokens: `qkv` (3D×D) and `proj` (D×D) are bias-free linear layers
 * (masked like any other); per head, `softmax(Q·Kᵀ/√d_h)·V`.
 */
export class Attention implements Module {
  readonly outShape: number[];
  readonly #ctx: Ctx;
  readonly #qkv: Linear;
  readonly #proj: Linear;
  readonly #t: number;
  readonly #d: number;
  readonly #heads: number;
  readonly #dh: number;
  readonly #bufs = new Buffers();

  constructor(ctx: Ctx, qkv: Param, proj: Param, inShape: number[], heads: number) {
    const [t, d] = inShape as [number, number];
    if (d % heads !== 0) throw new Error(`attention: width ${d} is not divisible by ${heads} heads`);
    this.#ctx = ctx;
    this.#t = t;
    this.#d = d;
    this.#heads = heads;
    this.#dh = d / heads;
    this.#qkv = new Linear(ctx, qkv, inShape, false);
    this.#proj = new Linear(ctx, proj, inShape, false);
    this.outShape = inShape;
  }

  /** Copies head `h`'s slice `part` (0 q, 1 k, 2 v) of sample `n` from `qkv` into `out` (T×dh), or back. */
  #slice(qkv: Float32Array, n: number, h: number, part: number, out: Float32Array, back: boolean): void {
    const T = this.#t, D3 = 3 * this.#d, dh = this.#dh;
    for (let t = 0; t < T; t++) {
      const src = (n * T + t) * D3 + part * this.#d + h * dh;
      for (let j = 0; j < dh; j++) {
        if (back) qkv[src + j] = out[t * dh + j]!;
        else out[t * dh + j] = qkv[src + j]!;
      }
    }
  }

  /** The per-(sample, head) stores kept from the forward pass for the backward pass, and head `i`'s views of them. */
  #head(b: number, i: number) {
    const T = this.#t, dh = this.#dh, heads = b * this.#heads, td = T * dh;
    const q = this.#bufs.get("q", heads * td), k = this.#bufs.get("k", heads * td);
    const v = this.#bufs.get("v", heads * td), p = this.#bufs.get("p", heads * T * T);
    return {
      qi: q.subarray(i * td, (i + 1) * td),
      ki: k.subarray(i * td, (i + 1) * td),
      vi: v.subarray(i * td, (i + 1) * td),
      pi: p.subarray(i * T * T, (i + 1) * T * T),
    };
  }

  forward(x: Float32Array, b: number): Float32Array {
    const T = this.#t, D = this.#d, H = this.#heads, dh = this.#dh, e = this.#ctx.engine;
    const qkv = this.#qkv.forward(x, b);
    const o = this.#bufs.get("o", b * T * D), oh = this.#bufs.get("oh", T * dh);
    const scale = 1 / Math.sqrt(dh);
    for (let n = 0; n < b; n++) {
      for (let h = 0; h < H; h++) {
        const { qi, ki, vi, pi } = this.#head(b, n * H + h);
        this.#slice(qkv, n, h, 0, qi, false);
        this.#slice(qkv, n, h, 1, ki, false);
        this.#slice(qkv, n, h, 2, vi, false);
        e.gemm(false, true, T, T, dh, qi, ki, pi, 0);
        for (let r = 0; r < T; r++) {
          let max = -Infinity;
          for (let c = 0; c < T; c++) max = Math.max(max, pi[r * T + c]! * scale);
          let sum = 0;
          for (let c = 0; c < T; c++) sum += pi[r * T + c] = Math.exp(pi[r * T + c]! * scale - max);
          for (let c = 0; c < T; c++) pi[r * T + c]! /= sum;
        }
        e.gemm(false, false, T, dh, T, pi, vi, oh, 0);
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < dh; j++) o[(n * T + t) * D + h * dh + j] = oh[t * dh + j]!;
        }
      }
    }
    return this.#proj.forward(o, b);
  }

  backward(dy: Float32Array, b: number, needDx: boolean): Float32Array | null {
    const T = this.#t, D = this.#d, H = this.#heads, dh = this.#dh, e = this.#ctx.engine;
    const dout = this.#proj.backward(dy, b, true)!;
    const dqkv = this.#bufs.get("dqkv", b * T * 3 * D);
    const doh = this.#bufs.get("doh", T * dh), dp = this.#bufs.get("dp", T * T);
    const dq = this.#bufs.get("dq", T * dh), dk = this.#bufs.get("dk", T * dh), dv = this.#bufs.get("dv", T * dh);
    const scale = 1 / Math.sqrt(dh);
    for (let n = 0; n < b; n++) {
      for (let h = 0; h < H; h++) {
        const { qi, ki, vi, pi } = this.#head(b, n * H + h);
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < dh; j++) doh[t * dh + j] = dout[(n * T + t) * D + h * dh + j]!;
        }
        e.gemm(false, true, T, T, dh, doh, vi, dp, 0); // dP = dO·Vᵀ
        e.gemm(true, false, T, dh, T, pi, doh, dv, 0); // dV = Pᵀ·dO
        for (let r = 0; r < T; r++) {
          let dot = 0;
          for (let c = 0; c < T; c++) dot += dp[r * T + c]! * pi[r * T + c]!;
          for (let c = 0; c < T; c++) dp[r * T + c] = pi[r * T + c]! * (dp[r * T + c]! - dot) * scale;
        }
        e.gemm(false, false, T, dh, T, dp, ki, dq, 0); // dQ = dS·K
        e.gemm(true, false, T, dh, T, dp, qi, dk, 0); // dK = dSᵀ·Q
        this.#slice(dqkv, n, h, 0, dq, true);
        this.#slice(dqkv, n, h, 1, dk, true);
        this.#slice(dqkv, n, h, 2, dv, true);
      }
    }
    return this.#qkv.backward(dqkv, b, needDx);
  }

  params(): Param[] {
    return [...this.#qkv.params(), ...this.#proj.params()];
  }
}
