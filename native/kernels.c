/*
 * ticketsweep's native kernels, called through Deno FFI (src/engine/native.ts builds and loads this). Each
 * computes exactly what a TypeScript loop computes (the mask methods' loops in src/train/masks/, the optimiser
 * steps in optimizer.ts, ReLU and conv2d's patches in src/train/nets/layers/), in the same order and precision,
 * and draws from the same xoshiro128** state, so the two paths give the same bits. Two precisions, as the loops
 * they mirror: the gates' kernels (ts_gates_forward, ts_gates_adam, and the ziggurat normal draws) compute in
 * double arithmetic on float storage, as JavaScript numbers do; every other kernel computes in float32
 * arithmetic, as the TypeScript loops that round each operation with Math.fround. No FMA contraction and no
 * fast-math (built with -ffp-contract=off -fno-fast-math), so every operation rounds as V8's does.
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

/* The value of rank r (0-based, ascending) of a[0..n), by quickselect (a is reordered). */
static float quickselect(float *a, int32_t n, int32_t r) {
  int32_t lo = 0, hi = n - 1;
  while (hi > lo) {
    const float pivot = a[lo + (hi - lo) / 2];
    int32_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const float t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r];
  }
  return a[lo];
}

/*
 * The value of rank r among |scores| in about one branch-free pass: a fixed, evenly spaced sample of 4,096
 * |scores| brackets the rank with a margin of 3 standard deviations; one pass counts the values below the
 * bracket and copies those inside it into buf, and quickselect finds the rank among those few. Exact whatever
 * the sample (the sample only decides the speed); when the bracket misses, the radix select answers.
 */
static float select_abs_rank_sampled(const float *scores, int32_t n, int32_t r, float *buf) {
  enum { S = 4096 };
  if (n < 8 * S) return select_abs_rank(scores, n, r);
  float sample[S];
  const int32_t stride = n / S;
  for (int32_t i = 0; i < S; i++) sample[i] = fabsf(scores[(int64_t)i * stride]);
  const double frac = (double)r / n;
  const int32_t margin = (int32_t)(3.0 * sqrt(S * frac * (1.0 - frac))) + 16;
  const int32_t at = (int32_t)(frac * S), ilo = at - margin, ihi = at + margin;
  const float lo = ilo < 0 ? 0.0f : quickselect(sample, S, ilo);
  const float hi = ihi >= S ? INFINITY : quickselect(sample, S, ihi);
  int32_t below = 0, m = 0;
  for (int32_t i = 0; i < n; i++) {
    const float v = fabsf(scores[i]);
    below += v < lo;
    buf[m] = v;
    m += (v >= lo) & (v <= hi);
  }
  if (r < below || r >= below + m) return select_abs_rank(scores, n, r);
  return quickselect(buf, m, r - below);
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
  const float t = select_abs_rank_sampled(scores, n, n - keep, scratch);
  /* everything above the threshold, branch-free (vectorised); then the first ties at the threshold, in index
     order, until `keep` are kept (equal scores are rare, so that scan's branch is predictable) */
  int32_t above = 0;
  for (int32_t i = 0; i < n; i++) {
    const int32_t k = fabsf(scores[i]) > t;
    above += k;
    mask[i] = (uint8_t)k;
    weff[i] = k ? w[i] : 0.0f;
  }
  for (int32_t i = 0, ties = keep - above; i < n && ties > 0; i++) {
    if (fabsf(scores[i]) == t) {
      mask[i] = 1;
      weff[i] = w[i];
      ties--;
    }
  }
}

/*
 * edge-popup's backward: the straight-through gradient sign(s) * g * w and an SGD step with momentum and weight
 * decay (PyTorch's form), in float32 as createOptimizer's SGD.
 */
void ts_popup_sgd(float *restrict s, const float *restrict g, const float *restrict w, float *restrict mom,
                  int32_t n, float mu, float wd, float lr) {
  for (int32_t i = 0; i < n; i++) {
    const float p = s[i];
    const float sg = (float)(p > 0.0f) - (float)(p < 0.0f);
    const float grad = sg * (g[i] * w[i]);
    const float v = mu * mom[i] + grad + wd * p;
    mom[i] = v;
    s[i] = p - lr * v;
  }
}

/* float32 constants written as the double literals src/train/masks/math.ts rounds with Math.fround */
#define F(x) ((float)(x))

/*
 * e^x in float32 arithmetic as expF32 in src/train/masks/math.ts, operation for operation (x clamped to
 * [-103, 88], a degree-7 Taylor polynomial on |r| <= ln2/2, times 2^k from the same table, pow2f[k + 149]).
 * The clamp and floor are written with 0/1 factors and a truncation so that loops using it vectorise.
 */
static inline float exp_f32(float x, const float *pow2f) {
  const float lo = (float)(x > -103.0f), hi = (float)(x < 88.0f);
  const float xc = lo * hi * x + (1.0f - lo) * -103.0f + (1.0f - hi) * 88.0f;
  const float t = xc * F(1.4426950408889634) + 0.5f, tr = (float)(int32_t)t;
  const float k = tr - (float)(t < tr); /* floor(t) */
  const float r = (xc - k * F(0.693359375)) - k * F(-2.12194440e-4);
  const float p = 1.0f + r * (1.0f + r * (F(0.5) + r * (F(0.16666666666666666) + r * (F(0.041666666666666664) +
      r * (F(0.008333333333333333) + r * (F(0.001388888888888889) + r * F(0.0001984126984126984)))))));
  return p * pow2f[(int32_t)k + 149];
}

static inline float sigmoid_f32(float x, const float *pow2f) { return 1.0f / (1.0f + exp_f32(-x, pow2f)); }

/* ln x in float32 arithmetic for positive normal x, as logF32 in src/train/masks/math.ts. */
static inline float log_f32(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  const float e0 = (float)((int32_t)((b >> 23) & 0xffu) - 127);
  b = (b & 0x7fffffu) | 0x3f800000u;
  float m;
  memcpy(&m, &b, sizeof m);
  const float big = (float)(m > F(1.4142135623730951));
  m = m * (1.0f - 0.5f * big);
  const float e = e0 + big;
  const float fm = m - 1.0f, sv = fm / (2.0f + fm), z = sv * sv;
  const float series = 1.0f + z * (F(1.0 / 3.0) + z * (F(1.0 / 5.0) + z * (F(1.0 / 7.0) + z * F(1.0 / 9.0))));
  return e * F(0.693359375) + (e * F(-2.12194440e-4) + (2.0f * sv) * series);
}

/* The smallest normal float: effective weights below it are flushed to 0 (subnormals slow every product). */
#define FLT_NORMAL_MIN 1.17549435e-38f

/*
 * Continuous sparsification's soft mask and effective weights in float32, as
 * ContinuousSparsification.effectiveWeights: q = sigmoid(beta * s) (kept for the backward pass), weff = w * c * q.
 */
void ts_cs_forward(const float *restrict s, const float *restrict w, float *restrict sig, float *restrict weff,
                   int32_t n, float beta, float c, const float *restrict pow2f) {
  for (int32_t i = 0; i < n; i++) {
    const float q = sigmoid_f32(beta * s[i], pow2f);
    sig[i] = q;
    const float v = w[i] * c * q;
    weff[i] = v * (float)(fabsf(v) >= FLT_NORMAL_MIN);
  }
}

/* Continuous sparsification's gradient on s: (g * w + coef) * k * q * (1 - q), k = beta / sigmoid(s0). */
void ts_cs_grad(float *restrict grad, const float *restrict g, const float *restrict w, const float *restrict sig,
                int32_t n, float coef, float k) {
  for (int32_t i = 0; i < n; i++) {
    const float q = sig[i];
    grad[i] = (g[i] * w[i] + coef) * k * q * (1.0f - q);
  }
}

/* The same gradient and an SGD step (momentum, weight decay, as ts_sgd_step) in one pass. */
void ts_cs_sgd(float *restrict sc, const float *restrict g, const float *restrict w, const float *restrict sig,
               float *restrict mom, int32_t n, float coef, float k, float lr, float mu, float wd) {
  for (int32_t i = 0; i < n; i++) {
    const float q = sig[i], p = sc[i];
    const float grad = (g[i] * w[i] + coef) * k * q * (1.0f - q);
    const float v = mu * mom[i] + grad + wd * p;
    mom[i] = v;
    sc[i] = p - lr * v;
  }
}

/*
 * Hard-concrete gates per weight in float32, as HardConcreteGates.effectiveWeights: uniform noise u (drawn as
 * the TypeScript loop draws it, stored as float in s), s = sigmoid((ln(u / (1 - u)) + log_alpha) / beta),
 * z = clamp(s * span + gamma, 0, 1), weff = w * z. The draws are serial; the rest vectorises.
 */
void ts_hc_forward(float *restrict s, float *restrict z, const float *restrict la, const float *restrict w,
                   float *restrict weff, int32_t n, float beta, float gamma, float span, uint32_t *state,
                   const float *restrict pow2f) {
  uint32_t st[4] = {state[0], state[1], state[2], state[3]};
  for (int32_t j = 0; j < n; j++) s[j] = (float)uniform(st);
  for (int k = 0; k < 4; k++) state[k] = st[k];
  const float umin = F(1e-6), umax = F(1.0 - 1e-6);
  for (int32_t j = 0; j < n; j++) {
    const float u0 = s[j], lo = (float)(u0 > umin);
    const float u1 = lo * u0 + (1.0f - lo) * umin, hi = (float)(u1 < umax);
    const float u = hi * u1 + (1.0f - hi) * umax;
    const float sj = sigmoid_f32((log_f32(u / (1.0f - u)) + la[j]) / beta, pow2f);
    s[j] = sj;
    const float v = sj * span + gamma;
    const float c0 = (v + fabsf(v)) * 0.5f, below = (float)(c0 < 1.0f);
    z[j] = below * c0 + (1.0f - below);
    weff[j] = w[j] * z[j];
  }
}

/*
 * Hard-concrete's gradient on log_alpha per weight in float32 (before the optimiser), as
 * HardConcreteGates.applyGradients: g * w through the clamp and the sigmoid, plus the expected-L0 penalty's
 * coef * q * (1 - q), q = sigmoid(log_alpha - shift).
 */
void ts_hc_grad(float *restrict dz, const float *restrict g, const float *restrict w, const float *restrict s,
                const float *restrict la, int32_t n, float beta, float gamma, float span, float shift, float coef,
                const float *restrict pow2f) {
  for (int32_t j = 0; j < n; j++) {
    const float d = g[j] * w[j], sj = s[j], v = sj * span + gamma;
    const float q = sigmoid_f32(la[j] - shift, pow2f);
    const float pen = coef * q * (1.0f - q);
    const float open = (float)((v > 0.0f) & (v < 1.0f));
    dz[j] = open * (d * span * sj * (1.0f - sj) / beta) + 0.0f + pen;
  }
}

/*
 * One Adam step in float32 (beta1 0.9, beta2 0.999, eps 1e-8, L2 weight decay added to the gradient) over a
 * buffer, as createOptimizer's `update`: c1, c2 are the bias corrections of this step.
 */
void ts_adam_step(float *restrict p, const float *restrict g0, float *restrict m1, float *restrict m2, int32_t n,
                  float lr, float wd, float c1, float c2) {
  for (int32_t i = 0; i < n; i++) {
    const float pi = p[i];
    const float g = g0[i] + wd * pi;
    const float m = F(0.9) * m1[i] + F(0.1) * g;
    const float v = F(0.999) * m2[i] + F(0.001) * g * g;
    m1[i] = m;
    m2[i] = v;
    p[i] = pi - lr * (m / c1) / (sqrtf(v / c2) + F(1e-8));
  }
}

/* One SGD step in float32 with momentum (PyTorch's form) and L2 weight decay, as createOptimizer's `update`. */
void ts_sgd_step(float *restrict p, const float *restrict g, float *restrict mom, int32_t n, float lr, float mu,
                 float wd) {
  for (int32_t i = 0; i < n; i++) {
    const float pi = p[i];
    const float v = mu * mom[i] + g[i] + wd * pi;
    mom[i] = v;
    p[i] = pi - lr * v;
  }
}

/* ReLU in place, as the TypeScript loops (y < 0 becomes 0; -0 and NaN stay): vectorised, no branch to mispredict. */
void ts_relu(float *restrict y, int32_t n) {
  for (int32_t i = 0; i < n; i++) y[i] = y[i] < 0.0f ? 0.0f : y[i];
}

/* ReLU's backward in place: the gradient is zeroed where the output is not positive. */
void ts_relu_grad(float *restrict dy, const float *restrict y, int32_t n) {
  for (int32_t i = 0; i < n; i++) dy[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}
