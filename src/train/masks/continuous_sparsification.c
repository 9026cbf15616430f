/*
 * Continuous sparsification's native kernels (registered in continuous_sparsification.ts), in float32
 * arithmetic as the TypeScript loops they mirror.
 */
#include "kernels.h"

/*
 * Continuous sparsification's soft mask and effective weights in float32, as
 * ContinuousSparsification.effectiveWeights: q = sigmoid(beta * s) (kept for the backward pass), weff = w * c * q.
 */
void ts_cs_forward(const float *restrict s, const float *restrict w, float *restrict sig, float *restrict weff,
                   int32_t n, float beta, float c) {
  for (int32_t i = 0; i < n; i++) {
    const float q = sigmoid_f32(beta * s[i]);
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
