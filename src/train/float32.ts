// Float32 arithmetic shared by the nets and the mask methods: e^x, the sigmoid and ln x computed operation for
// operation as float32, so that the native kernels (native/kernels.h, exp_f32 and log_f32) give the same bits, and
// the smallest normal float32 (below it products crawl).
const f = Math.fround;

/** 2^k as float32 for k in [-149, 127], built by exact doubling and halving: the table the float32 kernels scale by. */
const POW2F_MIN = -149;
export const POW2F: Float32Array = (() => {
  const t = new Float32Array(127 - POW2F_MIN + 1);
  for (let k = 0, v = 1; k <= 127; k++, v *= 2) t[k - POW2F_MIN] = v;
  for (let k = 0, v = 1; k >= POW2F_MIN; k--, v /= 2) t[k - POW2F_MIN] = v;
  return t;
})();

const LOG2E_F = f(1.4426950408889634), LN2_HI_F = f(0.693359375), LN2_LO_F = f(-2.12194440e-4);
const [E2, E3, E4, E5, E6, E7] = [
  0.5,
  0.16666666666666666,
  0.041666666666666664,
  0.008333333333333333,
  0.001388888888888889,
  0.0001984126984126984,
].map(f) as [number, number, number, number, number, number];

/**
 * e^x in float32 arithmetic for float32 x clamped to [-103, 88] (a degree-7 Taylor polynomial on |r| ≤ ln2/2
 * and a table of powers of two; within 2 ulp of float32), every operation rounded as float32 so that
 * `native/kernels.h` (exp_f32, float operations in the same order) computes the same bits, vectorised.
 */
export function expF32(x: number): number {
  const xc = x > -103 ? (x < 88 ? x : 88) : -103;
  const k = Math.floor(f(f(xc * LOG2E_F) + 0.5));
  const r = f(f(xc - f(k * LN2_HI_F)) - f(k * LN2_LO_F));
  const p = f(1 + f(r * f(1 + f(r * f(E2 + f(r * f(E3 + f(r * f(E4 + f(r * f(E5 + f(r * f(E6 + f(r * E7))))))))))))));
  return f(p * POW2F[k - POW2F_MIN]!);
}

/** The logistic sigmoid in float32 through {@link expF32}. */
export function sigmoidF32(x: number): number {
  return f(1 / f(1 + expF32(-x)));
}

const F32 = new Float32Array(1), F32_BITS = new Uint32Array(F32.buffer);
const SQRT2_F = f(Math.SQRT2);
const [L3, L5, L7, L9] = [1 / 3, 1 / 5, 1 / 7, 1 / 9].map(f) as [number, number, number, number];

/** The smallest normal float32: values below it are subnormal, and products on them crawl (microcode assists). */
export const FLT_NORMAL_MIN = 1.1754943508222875e-38;

/**
 * ln x in float32 arithmetic for positive normal float32 x, as `native/kernels.h` (log_f32) computes it:
 * x = m·2^e with m in [√½, √2), ln m = 2·atanh(f/(2+f)), f = m − 1, by its series to the 9th power.
 */
export function logF32(x: number): number {
  F32[0] = x;
  const bits = F32_BITS[0]!;
  const e0 = ((bits >>> 23) & 0xff) - 127;
  F32_BITS[0] = (bits & 0x7fffff) | 0x3f800000;
  const big = F32[0]! > SQRT2_F ? 1 : 0;
  const m = f(F32[0]! * (1 - 0.5 * big));
  const e = e0 + big;
  const fm = f(m - 1), sv = f(fm / f(2 + fm)), z = f(sv * sv);
  const series = f(1 + f(z * f(L3 + f(z * f(L5 + f(z * f(L7 + f(z * L9))))))));
  return f(f(e * LN2_HI_F) + f(f(e * LN2_LO_F) + f(f(2 * sv) * series)));
}
