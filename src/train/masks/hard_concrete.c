/*
 * Hard-concrete's native kernels (registered in hard_concrete.ts), in float32 arithmetic as the TypeScript
 * loops they mirror.
 */
#include "kernels.h"

/*
 * Hard-concrete gates per weight in float32, as HardConcreteGates.effectiveWeights: uniform noise u (drawn as
 * the TypeScript loop draws it: the raw words first, into s, by draw_words; then converted),
 * s = sigmoid((ln(u / (1 - u)) + log_alpha) / beta), z = clamp(s * stretch + gamma, 0, 1) with
 * stretch = zeta - gamma, weff = w * z, in a loop that vectorises.
 */
void ts_hc_forward(float *restrict s, float *restrict z, const float *restrict la, const float *restrict w,
                   float *restrict weff, int32_t n, float beta, float gamma, float stretch, uint32_t *state) {
  draw_words(state, (uint32_t *)(void *)s, n); /* the raw words: the conversion vectorises in the next loop */
  const float umin = F(1e-6), umax = F(1.0 - 1e-6);
  for (int32_t j = 0; j < n; j++) {
    uint32_t r;
    memcpy(&r, &s[j], sizeof r);
    /* (float)(r / 2^32 in double), as uniform(): rounding r to float and then scaling by 2^-32 (exact) is the same */
    const float u0 = (float)r * F(2.3283064365386963e-10), lo = (float)(u0 > umin);
    const float u1 = lo * u0 + (1.0f - lo) * umin, hi = (float)(u1 < umax);
    const float u = hi * u1 + (1.0f - hi) * umax;
    const float sj = sigmoid_f32((log_f32(u / (1.0f - u)) + la[j]) / beta);
    s[j] = sj;
    const float v = sj * stretch + gamma;
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
static inline float hc_grad(float g, float w, float sj, float la, float beta, float gamma, float stretch, float shift,
                            float coef) {
  const float d = g * w, v = sj * stretch + gamma;
  const float q = sigmoid_f32(la - shift);
  const float pen = coef * q * (1.0f - q);
  const float open = (float)((v > 0.0f) & (v < 1.0f));
  return open * (d * stretch * sj * (1.0f - sj) / beta) + 0.0f + pen;
}

void ts_hc_grad(float *restrict dz, const float *restrict g, const float *restrict w, const float *restrict s,
                const float *restrict la, int32_t n, float beta, float gamma, float stretch, float shift, float coef) {
  for (int32_t j = 0; j < n; j++) dz[j] = hc_grad(g[j], w[j], s[j], la[j], beta, gamma, stretch, shift, coef);
}

/* The same gradient and an Adam step on log_alpha (as ts_adam_step) in one pass. */
void ts_hc_adam(float *restrict la, const float *restrict g, const float *restrict w, const float *restrict s,
                float *restrict m1, float *restrict m2, int32_t n, float beta, float gamma, float stretch, float shift,
                float coef, float lr, float wd, float c1, float c2) {
  for (int32_t j = 0; j < n; j++) {
    adam_f32(la, hc_grad(g[j], w[j], s[j], la[j], beta, gamma, stretch, shift, coef), m1, m2, j, lr, wd, c1, c2);
  }
}
