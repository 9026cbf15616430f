import { Buffers, type Module, type Param } from "../module.ts";

const EPS = 1e-5;

/**
 * Batch normalisation without affine parameters (as edge-popup's frozen networks use it), over the last axis
 * of channels-last data. Training normalises with the batch's statistics. For evaluation the statistics are
 * *calibrated*: recomputed over a fixed set of training samples under the final mask (see
 * {@link Calibratable}), so that a ticket's accuracy depends on nothing but the network, the mask and the data.
 */
export class BatchNorm implements Module, Calibratable {
  readonly outShape: number[];
  readonly #c: number;
  readonly #bufs = new Buffers();
  #mean: Float32Array;
  #invStd: Float32Array;
  #calMean: Float32Array | null = null;
  #calInvStd: Float32Array | null = null;
  #acc: { sum: Float64Array; sq: Float64Array; n: number } | null = null;
  #xhat: Float32Array = new Float32Array(0);

  constructor(inShape: number[]) {
    this.outShape = inShape;
    this.#c = inShape[inShape.length - 1]!;
    this.#mean = new Float32Array(this.#c);
    this.#invStd = new Float32Array(this.#c);
  }

  forward(x: Float32Array, _b: number, training: boolean): Float32Array {
    const C = this.#c, rows = x.length / C;
    const y = this.#bufs.get("y", x.length);
    let mean = this.#mean, inv = this.#invStd;
    if (training || this.#acc || !this.#calMean) {
      const sum = new Float64Array(C), sq = new Float64Array(C);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < C; c++) {
          const v = x[r * C + c]!;
          sum[c]! += v;
          sq[c]! += v * v;
        }
      }
      for (let c = 0; c < C; c++) {
        const m = sum[c]! / rows;
        mean[c] = m;
        inv[c] = 1 / Math.sqrt(Math.max(sq[c]! / rows - m * m, 0) + EPS);
      }
      if (this.#acc) {
        for (let c = 0; c < C; c++) {
          this.#acc.sum[c]! += sum[c]!;
          this.#acc.sq[c]! += sq[c]!;
        }
        this.#acc.n += rows;
      }
    } else {
      mean = this.#calMean;
      inv = this.#calInvStd!;
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c]! - mean[c]!) * inv[c]!;
    }
    this.#xhat = y;
    return y;
  }

  backward(dy: Float32Array): Float32Array {
    // dx = invStd · (dy − mean(dy) − x̂ · mean(dy · x̂)), the means over the batch per channel
    const C = this.#c, rows = dy.length / C, xh = this.#xhat, inv = this.#invStd;
    const m1 = new Float64Array(C), m2 = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < C; c++) {
        const d = dy[r * C + c]!;
        m1[c]! += d;
        m2[c]! += d * xh[r * C + c]!;
      }
    }
    for (let c = 0; c < C; c++) {
      m1[c]! /= rows;
      m2[c]! /= rows;
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < C; c++) {
        const i = r * C + c;
        dy[i] = inv[c]! * (dy[i]! - m1[c]! - xh[i]! * m2[c]!);
      }
    }
    return dy;
  }

  startCalibration(): void {
    this.#acc = { sum: new Float64Array(this.#c), sq: new Float64Array(this.#c), n: 0 };
  }

  finishCalibration(): void {
    const a = this.#acc!;
    this.#calMean = new Float32Array(this.#c);
    this.#calInvStd = new Float32Array(this.#c);
    for (let c = 0; c < this.#c; c++) {
      const m = a.sum[c]! / a.n;
      this.#calMean[c] = m;
      this.#calInvStd[c] = 1 / Math.sqrt(Math.max(a.sq[c]! / a.n - m * m, 0) + EPS);
    }
    this.#acc = null;
  }

  params(): Param[] {
    return [];
  }
}

/** A layer whose evaluation statistics are recomputed from training data (batch normalisation). */
export interface Calibratable {
  startCalibration(): void;
  finishCalibration(): void;
}

export function isCalibratable(m: object): m is Calibratable {
  return "startCalibration" in m;
}

/** Layer normalisation without affine parameters over the last axis (per token). */
export class LayerNorm implements Module {
  readonly outShape: number[];
  readonly #d: number;
  readonly #bufs = new Buffers();
  #xhat: Float32Array = new Float32Array(0);
  #inv: Float32Array = new Float32Array(0);

  constructor(inShape: number[]) {
    this.outShape = inShape;
    this.#d = inShape[inShape.length - 1]!;
  }

  forward(x: Float32Array): Float32Array {
    const D = this.#d, rows = x.length / D;
    const y = this.#bufs.get("y", x.length);
    const inv = this.#bufs.get("inv", rows);
    for (let r = 0; r < rows; r++) {
      let s = 0, q = 0;
      for (let j = 0; j < D; j++) {
        const v = x[r * D + j]!;
        s += v;
        q += v * v;
      }
      const m = s / D;
      const iv = 1 / Math.sqrt(Math.max(q / D - m * m, 0) + EPS);
      inv[r] = iv;
      for (let j = 0; j < D; j++) y[r * D + j] = (x[r * D + j]! - m) * iv;
    }
    this.#xhat = y;
    this.#inv = inv;
    return y;
  }

  backward(dy: Float32Array): Float32Array {
    const D = this.#d, rows = dy.length / D, xh = this.#xhat;
    for (let r = 0; r < rows; r++) {
      let m1 = 0, m2 = 0;
      for (let j = 0; j < D; j++) {
        m1 += dy[r * D + j]!;
        m2 += dy[r * D + j]! * xh[r * D + j]!;
      }
      m1 /= D;
      m2 /= D;
      const iv = this.#inv[r]!;
      for (let j = 0; j < D; j++) {
        const i = r * D + j;
        dy[i] = iv * (dy[i]! - m1 - xh[i]! * m2);
      }
    }
    return dy;
  }

  params(): Param[] {
    return [];
  }
}
