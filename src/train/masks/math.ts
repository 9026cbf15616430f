// The Gaussian functions of the gates method (erf, the normal cdf and pdf, and the table of exp(-x²/2) its native
// kernel interpolates); the float32 exp, sigmoid and log shared with the nets are in ../float32.ts.
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
