/*
 * ticketsweep's fused mask kernels, called through Deno FFI (src/engine/native.ts builds and loads this).
 * They compute exactly what the TypeScript loops in src/train/masks/gates.ts compute, in the same order and
 * precision (double arithmetic, float storage, no FMA contraction: built with -ffp-contract=off), and
 * advance the same xoshiro128** state, so the two paths give the same numbers.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/* xoshiro128** on a state of four words, as Rng.nextU32. */
static inline uint32_t next_u32(uint32_t *s) {
  const uint32_t r = rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return r;
}

static inline double uniform(uint32_t *s) { return (double)next_u32(s) / 4294967296.0; }
static inline double uniform_open(uint32_t *s) { return ((double)next_u32(s) + 0.5) / 4294967296.0; }

/* The ziggurat's slow path, as Rng.#zigguratTail. */
static double ziggurat_tail(int32_t hz, int iz, uint32_t *s, const double *kn, const double *wn, const double *fn) {
  const double r = 3.442619855899;
  for (;;) {
    const double x = (double)hz * wn[iz];
    if (iz == 0) {
      double xx, y;
      do {
        xx = -log(uniform_open(s)) / r;
        y = -log(uniform_open(s));
      } while (y + y < xx * xx);
      return hz > 0 ? r + xx : -r - xx;
    }
    if (fn[iz] + uniform(s) * (fn[iz - 1] - fn[iz]) < exp(-0.5 * x * x)) return x;
    const int32_t u = (int32_t)next_u32(s);
    iz = u & 127;
    hz = u & ~127;
    if (fabs((double)hz) < kn[iz]) return (double)hz * wn[iz];
  }
}

/*
 * Gate noise and effective weights in one pass: eps ~ N(0, 1) (ziggurat), u = mu + sigma * eps (kept for the
 * backward pass), weff = w * clamp(u, 0, 1).
 */
void ts_gates_forward(const float *mu, const float *w, float *u, float *weff, int32_t n, double sigma, uint32_t *state,
                      const double *kn, const double *wn, const double *fn) {
  uint32_t s[4] = {state[0], state[1], state[2], state[3]}; /* in registers, not reloaded through the pointer */
  for (int32_t i = 0; i < n; i++) {
    const int32_t r = (int32_t)next_u32(s);
    const int iz = r & 127;
    const int32_t hz = r & ~127;
    float eps;
    if (fabs((double)hz) < kn[iz]) eps = (float)((double)hz * wn[iz]);
    else eps = (float)ziggurat_tail(hz, iz, s, kn, wn, fn);
    const double v = (double)mu[i] + sigma * (double)eps;
    u[i] = (float)v;
    /* branch-free clamp (the gate is outside [0, 1] about half the time, unpredictably): (v + |v|)/2 is exactly
       max(v, 0), then minsd */
    const double c0 = (v + fabs(v)) * 0.5, c = c0 < 1.0 ? c0 : 1.0;
    weff[i] = (float)((double)w[i] * c);
  }
  for (int k = 0; k < 4; k++) state[k] = s[k];
}

/*
 * The penalty's gradient, the clamp's gate and an Adam step on mu in one pass (beta1 0.9, beta2 0.999,
 * eps 1e-8; lr already divided by the first bias correction, ic2 the inverse of the second). Written without
 * branches so that the compiler vectorises it (gathers from the density table): the table lookup is
 * exp(-x^2/2) by linear interpolation in the table of src/train/masks/math.ts (512 a unit on [-8, 8], 0
 * outside), and adding 0.0 where the clamp blocks the gradient gives the TypeScript loop's values exactly
 * (`+ 0.0` turns the -0.0 of `0 * negative` into +0.0, as the loop's plain 0 is).
 */
void ts_gates_adam(float *restrict mu, const float *restrict u, const float *restrict g, const float *restrict w,
                   float *restrict m1, float *restrict m2, int32_t n, double k, double inv_s, double lr, double ic2,
                   const float *restrict gauss) {
  for (int32_t i = 0; i < n; i++) {
    const double m = mu[i], v = u[i];
    const double p = (m * inv_s + 8.0) * 512.0;
    const int32_t in = (p > 0.0) & (p < 2.0 * 8.0 * 512.0);
    const int32_t j = (int32_t)(p * (double)in) & -in;
    const double a0 = gauss[j];
    const double gt = (double)in * (a0 + (p - j) * ((double)gauss[j + 1] - a0)) + 0.0;
    const double open = (double)((v > 0.0) & (v < 1.0));
    const double grad = k * gt + open * ((double)g[i] * (double)w[i]);
    const double a = 0.9 * (double)m1[i] + 0.1 * grad;
    const double b = 0.999 * (double)m2[i] + 0.001 * grad * grad;
    m1[i] = (float)a;
    m2[i] = (float)b;
    mu[i] = (float)(m - lr * a / (sqrt(b * ic2) + 1e-8));
  }
}

/*
 * Conv2d's patch walk over channels-last images, as its TypeScript loop: to_cols writes the patches of samples
 * [n0, n0 + nb) into cols (rows: output pixels; columns: ky, kx, c; zeros outside the image), otherwise adds
 * the patch gradients in cols back into the image (col2im), in the same order.
 */
static void patches(int to_cols, float *image, float *cols, int32_t n0, int32_t nb, int32_t H, int32_t W, int32_t C,
                    int32_t k, int32_t stride, int32_t pad, int32_t ho, int32_t wo) {
  int64_t o = 0;
  for (int32_t n = n0; n < n0 + nb; n++) {
    float *base = image + (int64_t)n * H * W * C;
    for (int32_t oy = 0; oy < ho; oy++) {
      for (int32_t ox = 0; ox < wo; ox++) {
        for (int32_t ky = 0; ky < k; ky++) {
          const int32_t iy = oy * stride - pad + ky;
          for (int32_t kx = 0; kx < k; kx++, o += C) {
            const int32_t ix = ox * stride - pad + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
              if (to_cols) for (int32_t c = 0; c < C; c++) cols[o + c] = 0.0f;
              continue;
            }
            float *at = base + ((int64_t)iy * W + ix) * C;
            if (to_cols) for (int32_t c = 0; c < C; c++) cols[o + c] = at[c];
            else for (int32_t c = 0; c < C; c++) at[c] += cols[o + c];
          }
        }
      }
    }
  }
}

void ts_im2col(float *x, float *cols, int32_t n0, int32_t nb, int32_t H, int32_t W, int32_t C, int32_t k,
               int32_t stride, int32_t pad, int32_t ho, int32_t wo) {
  patches(1, x, cols, n0, nb, H, W, C, k, stride, pad, ho, wo);
}

void ts_col2im(float *dcols, float *dx, int32_t n0, int32_t nb, int32_t H, int32_t W, int32_t C, int32_t k,
               int32_t stride, int32_t pad, int32_t ho, int32_t wo) {
  patches(0, dx, dcols, n0, nb, H, W, C, k, stride, pad, ho, wo);
}

/* The r-th smallest value of a (reordering it), as selectNth in src/train/masks/top_k.ts. */
/*
 * The value of rank r (0-based, ascending) among |scores|: a radix select on the bit patterns (for non-negative
 * floats they order as the values do), 16 bits at a time, with two passes of histogram counting and no
 * data-dependent branches in the first. Any exact selection returns the same value, so this matches the
 * TypeScript quickselect.
 */
static float select_abs_rank(const float *scores, int32_t n, int32_t r) {
  static uint32_t hist[65536]; /* one worker calls from one thread */
  const uint32_t *bits = (const uint32_t *)scores;
  for (int32_t b = 0; b < 65536; b++) hist[b] = 0;
  for (int32_t i = 0; i < n; i++) hist[(bits[i] & 0x7fffffffu) >> 16]++;
  uint32_t hi = 0;
  while (hist[hi] <= (uint32_t)r) r -= (int32_t)hist[hi++];
  for (int32_t b = 0; b < 65536; b++) hist[b] = 0;
  for (int32_t i = 0; i < n; i++) {
    const uint32_t x = bits[i] & 0x7fffffffu;
    if (x >> 16 == hi) hist[x & 0xffffu]++;
  }
  uint32_t lo = 0;
  while (hist[lo] <= (uint32_t)r) r -= (int32_t)hist[lo++];
  const uint32_t t = hi << 16 | lo;
  float out;
  memcpy(&out, &t, sizeof out);
  return out;
}

void ts_topk_weights(const float *scores, const float *w, uint8_t *mask, float *weff, float *scratch, int32_t n,
                     int32_t keep) {
  if (keep >= n) {
    for (int32_t i = 0; i < n; i++) {
      mask[i] = 1;
      weff[i] = w[i];
    }
    return;
  }
  (void)scratch;
  const float t = select_abs_rank(scores, n, n - keep);
  int32_t above = 0;
  for (int32_t i = 0; i < n; i++) above += fabsf(scores[i]) > t;
  int32_t ties = keep - above;
  for (int32_t i = 0; i < n; i++) {
    const float v = fabsf(scores[i]);
    const int k = v > t || (v == t && ties-- > 0);
    mask[i] = (uint8_t)k;
    weff[i] = k ? w[i] : 0.0f;
  }
}

/*
 * edge-popup's backward: the straight-through gradient sign(s) * g * w (rounded to float, as the TypeScript
 * scratch array does) and an SGD step with momentum and weight decay (PyTorch's form).
 */
void ts_popup_sgd(float *s, const float *g, const float *w, float *mom, int32_t n, double mu, double wd, double lr) {
  for (int32_t i = 0; i < n; i++) {
    const double p = s[i];
    const double sg = p > 0.0 ? 1.0 : p < 0.0 ? -1.0 : p;
    const float grad = (float)(sg * (double)g[i] * (double)w[i]);
    const double v = mu * (double)mom[i] + (double)grad + wd * p;
    mom[i] = (float)v;
    s[i] = (float)(p - lr * v);
  }
}

/*
 * e^x on [-745, 709] as expClamped in src/train/masks/math.ts, operation for operation (a degree-11 Taylor
 * polynomial on |r| <= ln2/2, times 2^k from the same table of powers of two, pow2[k + 1075]); the clamp is
 * written with 0/1 factors so that the loop has no branches and vectorises.
 */
static inline double exp_clamped(double x, const double *pow2) {
  const double lo = (double)(x > -745.0), hi = (double)(x < 709.0);
  const double xc = lo * hi * x + (1.0 - lo) * -745.0 + (1.0 - hi) * 709.0;
  const double t = xc * 1.4426950408889634 + 0.5, tr = (double)(int32_t)t;
  const double k = tr - (double)(t < tr); /* floor(t), in a form the vectoriser takes */
  const double r = (xc - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
  const double p =
      1.0 + r * (1.0 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664 + r * (0.008333333333333333 +
      r * (0.001388888888888889 + r * (0.0001984126984126984 + r * (2.48015873015873e-05 + r * (2.7557319223985893e-06 +
      r * (2.755731922398589e-07 + r * 2.505210838544172e-08))))))))));
  return p * pow2[(int32_t)k + 1075];
}

/* The smallest normal float: effective weights below it are flushed to 0 (subnormals slow every product). */
#define FLT_NORMAL_MIN 1.1754943508222875e-38

/*
 * Continuous sparsification's soft mask and effective weights: q = sigmoid(beta * s) (kept for the backward
 * pass), weff = w * c * q, as ContinuousSparsification.effectiveWeights.
 */
void ts_cs_forward(const float *restrict s, const float *restrict w, float *restrict sig, float *restrict weff,
                   int32_t n, double beta, double c, const double *restrict pow2) {
  for (int32_t i = 0; i < n; i++) {
    const double q = 1.0 / (1.0 + exp_clamped(-(beta * (double)s[i]), pow2));
    sig[i] = (float)q;
    const double v = (double)w[i] * c * q;
    weff[i] = (float)(v * (double)(fabs(v) >= FLT_NORMAL_MIN));
  }
}

/*
 * ln x for positive normal x as logExact in src/train/masks/math.ts, operation for operation: x = m * 2^e with
 * m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(f / (2 + f)), f = m - 1, by its series to s^21.
 */
static inline double log_exact(double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  const double e0 = (double)(int32_t)((b >> 52) & 0x7ff) - 1023.0;
  b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  memcpy(&m, &b, sizeof m);
  const double big = (double)(m > 1.4142135623730951);
  m = m * (1.0 - 0.5 * big);
  const double e = e0 + big;
  const double f = m - 1.0, sv = f / (2.0 + f), z = sv * sv;
  const double series = 1.0 + z * (0.3333333333333333 + z * (0.2 + z * (0.14285714285714285 + z * (0.1111111111111111 +
      z * (0.09090909090909091 + z * (0.07692307692307693 + z * (0.06666666666666667 + z * (0.058823529411764705 +
      z * (0.05263157894736842 + z * 0.047619047619047616)))))))));
  return e * 0.6931471803691238 + (e * 1.9082149292705877e-10 + 2.0 * sv * series);
}

static inline double sigmoid_exact(double x, const double *pow2) { return 1.0 / (1.0 + exp_clamped(-x, pow2)); }

/*
 * Hard-concrete gates per weight, as HardConcreteGates.effectiveWeights: uniform noise u (stored as float in
 * s, as the TypeScript loop does), s = sigmoid((ln(u / (1 - u)) + log_alpha) / beta), z = clamp(s * span +
 * gamma, 0, 1), weff = w * z. The draws are serial; the rest is a second, vectorisable loop.
 */
void ts_hc_forward(float *restrict s, float *restrict z, const float *restrict la, const float *restrict w,
                   float *restrict weff, int32_t n, double beta, double gamma, double span, uint32_t *state,
                   const double *restrict pow2) {
  uint32_t st[4] = {state[0], state[1], state[2], state[3]};
  for (int32_t j = 0; j < n; j++) s[j] = (float)uniform(st);
  for (int k = 0; k < 4; k++) state[k] = st[k];
  for (int32_t j = 0; j < n; j++) {
    /* clamps as 0/1 factors (exact for finite values), so that the loop vectorises */
    const double u0 = s[j], lo = (double)(u0 > 1e-6);
    const double u1 = lo * u0 + (1.0 - lo) * 1e-6, hi = (double)(u1 < 1.0 - 1e-6);
    const double u = hi * u1 + (1.0 - hi) * (1.0 - 1e-6);
    const double sj = sigmoid_exact((log_exact(u / (1.0 - u)) + (double)la[j]) / beta, pow2);
    s[j] = (float)sj;
    const double v = sj * span + gamma;
    const double c0 = (v + fabs(v)) * 0.5, below = (double)(c0 < 1.0);
    z[j] = (float)(below * c0 + (1.0 - below));
    weff[j] = (float)((double)w[j] * (double)z[j]);
  }
}

/*
 * Hard-concrete's gradient on log_alpha per weight, as HardConcreteGates.applyGradients before the optimiser:
 * dz = g * w through the clamp and the sigmoid, plus the expected-L0 penalty's coef * q * (1 - q),
 * q = sigmoid(log_alpha - shift).
 */
void ts_hc_grad(float *restrict dz, const float *restrict g, const float *restrict w, const float *restrict s,
                const float *restrict la, int32_t n, double beta, double gamma, double span, double shift, double coef,
                const double *restrict pow2) {
  for (int32_t j = 0; j < n; j++) {
    const double d = (double)(float)((double)g[j] * (double)w[j]);
    const double sj = s[j], v = sj * span + gamma;
    const double q = sigmoid_exact((double)la[j] - shift, pow2);
    const double open = (double)((v > 0.0) & (v < 1.0));
    dz[j] = (float)(open * (d * span * sj * (1.0 - sj) / beta) + 0.0 + coef * q * (1.0 - q));
  }
}

/*
 * One Adam step (beta1 0.9, beta2 0.999, eps 1e-8, L2 weight decay added to the gradient) over a buffer, as
 * createOptimizer's `update`: c1, c2 are the bias corrections of this step.
 */
void ts_adam_step(float *restrict p, const float *restrict g0, float *restrict m1, float *restrict m2, int32_t n,
                  double lr, double wd, double c1, double c2) {
  for (int32_t i = 0; i < n; i++) {
    const double pi = p[i];
    const double g = (double)g0[i] + wd * pi;
    const double m = 0.9 * (double)m1[i] + (1.0 - 0.9) * g;
    const double v = 0.999 * (double)m2[i] + (1.0 - 0.999) * g * g;
    m1[i] = (float)m;
    m2[i] = (float)v;
    p[i] = (float)(pi - lr * (m / c1) / (sqrt(v / c2) + 1e-8));
  }
}

/* One SGD step with momentum (PyTorch's form) and L2 weight decay, as createOptimizer's `update`. */
void ts_sgd_step(float *restrict p, const float *restrict g, float *restrict mom, int32_t n, double lr, double mu,
                 double wd) {
  for (int32_t i = 0; i < n; i++) {
    const double pi = p[i];
    const double v = mu * (double)mom[i] + (double)g[i] + wd * pi;
    mom[i] = (float)v;
    p[i] = (float)(pi - lr * v);
  }
}
