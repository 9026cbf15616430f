/*
 * Supermask's native kernels (registered in supermask.ts), as its TypeScript loops: p = sigmoid(s) in float32
 * arithmetic, the Bernoulli draw u < p with u the generator's uniform in double, and the straight-through
 * gradient g * w * p * (1 - p) in float32.
 */
#include "kernels.h"

/*
 * The sampled mask and effective weights: p = sigmoid(s) (kept for the backward pass), m = u < p with u drawn
 * per weight in order (state advanced), weff = m ? w : 0.
 */
void ts_supermask_forward(const float *restrict s, const float *restrict w, float *restrict p, float *restrict weff,
                          int32_t n, uint32_t *state, const float *restrict pow2f) {
  for (int32_t i = 0; i < n; i++) p[i] = sigmoid_f32(s[i], pow2f);
  uint32_t st[4] = {state[0], state[1], state[2], state[3]};
  for (int32_t i = 0; i < n; i++) weff[i] = uniform(st) < (double)p[i] ? w[i] : 0.0f;
  for (int k = 0; k < 4; k++) state[k] = st[k];
}

/* The straight-through gradient on the scores: d(loss)/d(mask) = g * w, through the sigmoid's slope p * (1 - p). */
void ts_supermask_grad(float *restrict grad, const float *restrict g, const float *restrict w,
                       const float *restrict p, int32_t n) {
  for (int32_t i = 0; i < n; i++) grad[i] = g[i] * w[i] * p[i] * (1.0f - p[i]);
}
