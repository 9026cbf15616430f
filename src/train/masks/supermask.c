/*
 * Supermask's native kernels (registered in supermask.ts), as its TypeScript loops: p = sigmoid(s) in float32
 * arithmetic, the Bernoulli draw u < p with u the generator's uniform in double, and the straight-through
 * gradient g * w * p * (1 - p) in float32.
 */
#include "kernels.h"

/*
 * The sampled mask and effective weights: p = sigmoid(s) (kept for the backward pass), m = u < p with u drawn
 * per weight in order (state advanced), weff = m ? w : 0. The draws are written first, as raw words, into weff
 * (draw_words); the comparison u / 2^32 < p, i.e. u < p * 2^32 (exact in double),
 * and the select then vectorise without a branch (a Bernoulli draw near p = 0.5 mispredicts every other time).
 */
void ts_supermask_forward(const float *restrict s, const float *restrict w, float *restrict p, float *restrict weff,
                          int32_t n, uint32_t *state) {
  draw_words(state, (uint32_t *)(void *)weff, n);
  for (int32_t i = 0; i < n; i++) {
    const float q = sigmoid_f32(s[i]);
    p[i] = q;
    uint32_t u, wb;
    memcpy(&u, &weff[i], sizeof u);
    memcpy(&wb, &w[i], sizeof wb);
    const uint32_t keep = -(uint32_t)((double)u < (double)q * 4294967296.0), out = wb & keep;
    memcpy(&weff[i], &out, sizeof out);
  }
}

/* The straight-through gradient on the scores: d(loss)/d(mask) = g * w, through the sigmoid's slope p * (1 - p). */
static inline float supermask_grad(float g, float w, float p) { return g * w * p * (1.0f - p); }

void ts_supermask_grad(float *restrict grad, const float *restrict g, const float *restrict w,
                       const float *restrict p, int32_t n) {
  for (int32_t i = 0; i < n; i++) grad[i] = supermask_grad(g[i], w[i], p[i]);
}

/* The same gradient and an Adam step on the scores (as ts_adam_step) in one pass. */
void ts_supermask_adam(float *restrict s, const float *restrict g, const float *restrict w, const float *restrict p,
                       float *restrict m1, float *restrict m2, int32_t n, float lr, float wd, float c1, float c2) {
  for (int32_t i = 0; i < n; i++) adam_f32(s, supermask_grad(g[i], w[i], p[i]), m1, m2, i, lr, wd, c1, c2);
}
