const INV_SQRT2 = 0.7071067811865476;
const INV_SQRT2PI = 0.3989422804014327;

/** erf, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, finer than float32 weights need). */
export function erf(x: number): number {
  const s = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-a * a);
  return s * y;
}

/** Standard normal CDF. */
export function normCdf(x: number): number {
  return 0.5 * (1 + erf(x * INV_SQRT2));
}

/** Standard normal density. */
export function normPdf(x: number): number {
  return INV_SQRT2PI * Math.exp(-0.5 * x * x);
}

/** Logistic sigmoid. */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Samples per unit of the density table; interpolation error is below 2e-7. */
const PDF_RES = 512;
const PDF_MAX = 8;
/** exp(-x²/2) on [-8, 8], for the penalty's gradient in fused loops (a table lookup costs a third of `exp`). */
export const GAUSS_TABLE: Float32Array = (() => {
  const n = 2 * PDF_MAX * PDF_RES;
  const t = new Float32Array(n + 2);
  for (let i = 0; i <= n + 1; i++) {
    const x = -PDF_MAX + i / PDF_RES;
    t[i] = Math.exp(-0.5 * x * x);
  }
  return t;
})();

/** exp(-x²/2) by linear interpolation in {@link GAUSS_TABLE}; 0 beyond |x| = 8 (where it is below 1.3e-14). */
export function gaussTable(x: number): number {
  const p = (x + PDF_MAX) * PDF_RES;
  if (p <= 0 || p >= 2 * PDF_MAX * PDF_RES) return 0;
  const j = p | 0;
  const a = GAUSS_TABLE[j]!;
  return a + (p - j) * (GAUSS_TABLE[j + 1]! - a);
}

/** Smallest exponent in {@link POW2}: 2^-1075 rounds to 0. */
const POW2_MIN = -1075;
/** 2^k for k in [-1075, 1023], built by exact doubling and halving (the native kernels use the same table). */
export const POW2: Float64Array = (() => {
  const t = new Float64Array(1023 - POW2_MIN + 1);
  for (let k = 0, v = 1; k <= 1023; k++, v *= 2) t[k - POW2_MIN] = v;
  for (let k = 0, v = 1; k >= POW2_MIN; k--, v /= 2) t[k - POW2_MIN] = v;
  return t;
})();

/**
 * e^x for x clamped to [-745, 709], from basic double operations only (a degree-11 Taylor polynomial on
 * |r| ≤ ln2/2 and a table of powers of two; relative error below 1e-14), so that the native kernels compute it
 * bit for bit like this function does (`Math.exp` is V8's own). `native/kernels.c` has the same function,
 * literal for literal; the clamp is written with 0/1 factors there to vectorise, and here the same way.
 */
export function expClamped(x: number): number {
  const lo = x > -745 ? 1 : 0, hi = x < 709 ? 1 : 0;
  const xc = lo * hi * x + (1 - lo) * -745 + (1 - hi) * 709;
  const k = Math.floor(xc * 1.4426950408889634 + 0.5);
  const r = (xc - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
  const p = 1 + r * (1 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664 + r * (0.008333333333333333 +
                        r *
                          (0.001388888888888889 +
                            r * (0.0001984126984126984 + r * (2.48015873015873e-05 + r * (2.7557319223985893e-06 +
                                        r * (2.755731922398589e-07 + r * 2.505210838544172e-08))))))))));
  return p * POW2[k - POW2_MIN]!;
}

/** The logistic sigmoid through {@link expClamped} (what the native kernels compute). */
export function sigmoidExact(x: number): number {
  return 1 / (1 + expClamped(-x));
}

const F64 = new Float64Array(1), HI_LO = new Uint32Array(F64.buffer); // HI_LO[1]: the high word (little-endian)

/**
 * ln x for positive normal x from basic double operations only, as `native/kernels.c` computes it: x = m·2^e
 * with m in [√½, √2), ln m = 2·atanh(f/(2+f)), f = m − 1, by its series to the 21st power (error below 1e-16).
 */
export function logExact(x: number): number {
  F64[0] = x;
  const hi = HI_LO[1]!;
  const e0 = ((hi >>> 20) & 0x7ff) - 1023;
  HI_LO[1] = (hi & 0x000fffff) | 0x3ff00000;
  const big = F64[0]! > 1.4142135623730951 ? 1 : 0;
  const m = F64[0]! * (1 - 0.5 * big);
  const e = e0 + big;
  const f = m - 1, sv = f / (2 + f), z = sv * sv;
  const series = 1 + z * (0.3333333333333333 + z * (0.2 + z * (0.14285714285714285 + z * (0.1111111111111111 +
                    z *
                      (0.09090909090909091 +
                        z * (0.07692307692307693 + z * (0.06666666666666667 + z * (0.058823529411764705 +
                                    z * (0.05263157894736842 + z * 0.047619047619047616)))))))));
  return e * 0.6931471803691238 + (e * 1.9082149292705877e-10 + 2 * sv * series);
}
