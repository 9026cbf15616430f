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
