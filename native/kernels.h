/*
 * Shared inline helpers of ticketsweep's native kernels (native/kernels.c and each mask method's own kernels,
 * e.g. src/train/masks/gates.c): the xoshiro128** generator and ziggurat tail of src/util/rng.ts, and the
 * float32 exp, sigmoid and log of src/train/float32.ts, operation for operation, so that every kernel draws
 * and rounds as its TypeScript loop does.
 */
#ifndef TICKETSWEEP_KERNELS_H
#define TICKETSWEEP_KERNELS_H
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

/* y = M x over GF(2) for a 128x128 bit matrix M given by its columns: the XOR of the columns whose bit is set in x. */
static inline void gf2_apply(const uint32_t (*cols)[4], const uint32_t *x, uint32_t *y) {
  uint32_t r0 = 0, r1 = 0, r2 = 0, r3 = 0;
  for (int j = 0; j < 128; j++) {
    const uint32_t m = -((x[j >> 5] >> (j & 31)) & 1u);
    r0 ^= cols[j][0] & m;
    r1 ^= cols[j][1] & m;
    r2 ^= cols[j][2] & m;
    r3 ^= cols[j][3] & m;
  }
  y[0] = r0;
  y[1] = r1;
  y[2] = r2;
  y[3] = r3;
}

/* The matrix of k steps of xoshiro128** (its state transition is linear over GF(2)), by repeated squaring. */
static inline void jump_matrix(int32_t k, uint32_t (*out)[4]) {
  uint32_t base[128][4], tmp[128][4];
  for (int j = 0; j < 128; j++) {
    memset(base[j], 0, sizeof base[j]);
    base[j][j >> 5] = 1u << (j & 31);
    (void)next_u32(base[j]); /* column j of one step: the image of the j-th unit vector */
    memset(out[j], 0, sizeof out[j]);
    out[j][j >> 5] = 1u << (j & 31); /* the identity */
  }
  for (; k > 0; k >>= 1) {
    if (k & 1) {
      for (int j = 0; j < 128; j++) gf2_apply(base, out[j], tmp[j]);
      memcpy(out, tmp, sizeof tmp);
    }
    if (k > 1) {
      for (int j = 0; j < 128; j++) gf2_apply(base, base[j], tmp[j]);
      memcpy(base, tmp, sizeof tmp);
    }
  }
}

enum { DRAW_LANES = 16 };
typedef uint32_t draw_lanes __attribute__((vector_size(DRAW_LANES * 4)));
#define ROTL_LANES(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

/*
 * The next n words of the generator into out[0..n), state advanced by n: the same words as n calls of next_u32,
 * made by 16 walks side by side in vector lanes (one serial walk is bound by its chain of dependent operations).
 * Walk c starts where the serial walk is after c·k draws (k = n / 16): k steps are a 128x128 bit matrix, built once
 * per k and kept (a worker calls from one thread; the layers of a network have few distinct sizes), and each walk's
 * start is that matrix applied to the previous one's. Short buffers are drawn serially.
 */
static inline void draw_words(uint32_t *state, uint32_t *out, int32_t n) {
  static struct {
    int32_t k;
    uint32_t cols[128][4];
  } cache[4];
  static int next_slot;
  const int32_t k = n / DRAW_LANES;
  if (k < 256) {
    uint32_t st[4] = {state[0], state[1], state[2], state[3]};
    for (int32_t i = 0; i < n; i++) out[i] = next_u32(st);
    memcpy(state, st, sizeof st);
    return;
  }
  int slot = -1;
  for (int c = 0; c < 4; c++) if (cache[c].k == k) slot = c;
  if (slot < 0) {
    slot = next_slot;
    next_slot = (next_slot + 1) % 4;
    jump_matrix(k, cache[slot].cols);
    cache[slot].k = k;
  }
  draw_lanes s0, s1, s2, s3;
  uint32_t at[4] = {state[0], state[1], state[2], state[3]}, nx[4];
  for (int c = 0; c < DRAW_LANES; c++) {
    s0[c] = at[0];
    s1[c] = at[1];
    s2[c] = at[2];
    s3[c] = at[3];
    gf2_apply((const uint32_t (*)[4])cache[slot].cols, at, nx);
    memcpy(at, nx, sizeof nx);
  }
  for (int32_t i = 0; i < k; i++) { /* next_u32, lane by lane */
    const draw_lanes r = ROTL_LANES(s1 * 5u, 7) * 9u, t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = ROTL_LANES(s3, 11);
    for (int c = 0; c < DRAW_LANES; c++) out[(int64_t)c * k + i] = r[c];
  }
  uint32_t last[4] = {s0[DRAW_LANES - 1], s1[DRAW_LANES - 1], s2[DRAW_LANES - 1], s3[DRAW_LANES - 1]};
  for (int32_t i = DRAW_LANES * k; i < n; i++) out[i] = next_u32(last);
  memcpy(state, last, sizeof last);
}

/* The ziggurat's slow path, as Rng.#zigguratTail. */
static inline double ziggurat_tail(int32_t hz, int iz, uint32_t *s, const double *kn, const double *wn, const double *fn) {
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

/* float32 constants written as the double literals src/train/float32.ts rounds with Math.fround */
#define F(x) ((float)(x))

/* 2^k as a float for integer k in [-126, 127], built from its bits (no table: a table lookup is a gather that keeps
 * the loops using it slow). */
static inline float pow2i_f32(int32_t k) {
  const uint32_t b = (uint32_t)(k + 127) << 23;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

/*
 * e^x in float32 arithmetic as expF32 in src/train/float32.ts, operation for operation (x clamped to [-103, 88],
 * a degree-7 Taylor polynomial on |r| <= ln2/2, times 2^k). The clamp and floor are written with 0/1 factors and a
 * truncation so that loops using it vectorise. 2^k with k down to -149 is subnormal: p * 2^k is taken in two
 * products, p * 2^max(k, -100) (exact: a normal result) and then * 2^(k - that) (the one rounding), which gives
 * the single correctly rounded p * 2^k of the TypeScript table lookup bit for bit.
 */
static inline float exp_f32(float x) {
  const float lo = (float)(x > -103.0f), hi = (float)(x < 88.0f);
  const float xc = lo * hi * x + (1.0f - lo) * -103.0f + (1.0f - hi) * 88.0f;
  const float t = xc * F(1.4426950408889634) + 0.5f, tr = (float)(int32_t)t;
  const float k = tr - (float)(t < tr); /* floor(t) */
  const float r = (xc - k * F(0.693359375)) - k * F(-2.12194440e-4);
  const float p = 1.0f + r * (1.0f + r * (F(0.5) + r * (F(0.16666666666666666) + r * (F(0.041666666666666664) +
      r * (F(0.008333333333333333) + r * (F(0.001388888888888889) + r * F(0.0001984126984126984)))))));
  const int32_t ki = (int32_t)k, k1 = ki > -100 ? ki : -100;
  return (p * pow2i_f32(k1)) * pow2i_f32(ki - k1);
}

static inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

/* ln x in float32 arithmetic for positive normal x, as logF32 in src/train/float32.ts. */
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

/*
 * One element's Adam step in float32 (beta1 0.9, beta2 0.999, eps 1e-8, L2 weight decay added to the gradient), as
 * createOptimizer's `update` in src/train/masks/optimizer.ts: c1, c2 are this step's bias corrections. Shared by
 * ts_adam_step and the methods' kernels that fuse their gradient with the step.
 */
static inline void adam_f32(float *restrict p, float g0, float *restrict m1, float *restrict m2, int32_t i, float lr,
                            float wd, float c1, float c2) {
  const float pi = p[i];
  const float g = g0 + wd * pi;
  const float m = F(0.9) * m1[i] + F(0.1) * g;
  const float v = F(0.999) * m2[i] + F(0.001) * g * g;
  m1[i] = m;
  m2[i] = v;
  p[i] = pi - lr * (m / c1) / (sqrtf(v / c2) + F(1e-8));
}

/* The smallest normal float: effective weights below it are flushed to 0 (subnormals slow every product). */
#define FLT_NORMAL_MIN 1.17549435e-38f

#endif
