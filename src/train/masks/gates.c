/*
 * Gates' native kernels (registered in gates.ts), in double arithmetic on float storage as the TypeScript
 * loops they mirror.
 */
#include "kernels.h"

/*
 * Gate noise and effective weights: eps ~ N(0, 1) (ziggurat), u = mu + sigma * eps (kept for the backward pass),
 * weff = w * clamp(u, 0, 1). The draws are serial (each advances the state, and the rare tail draws more), so they
 * go first, eps into u; the rest then vectorises.
 */
void ts_gates_forward(const float *restrict mu, const float *restrict w, float *restrict u, float *restrict weff,
                      int32_t n, double sigma, uint32_t *state, const double *kn, const double *wn, const double *fn) {
  uint32_t s[4] = {state[0], state[1], state[2], state[3]}; /* in registers, not reloaded through the pointer */
  for (int32_t i = 0; i < n; i++) {
    const int32_t r = (int32_t)next_u32(s);
    const int iz = r & 127;
    const int32_t hz = r & ~127;
    if (fabs((double)hz) < kn[iz]) u[i] = (float)((double)hz * wn[iz]);
    else u[i] = (float)ziggurat_tail(hz, iz, s, kn, wn, fn);
  }
  for (int k = 0; k < 4; k++) state[k] = s[k];
  for (int32_t i = 0; i < n; i++) {
    const double v = (double)mu[i] + sigma * (double)u[i];
    u[i] = (float)v;
    /* branch-free clamp (the gate is outside [0, 1] about half the time, unpredictably): (v + |v|)/2 is exactly
       max(v, 0), then minsd */
    const double c0 = (v + fabs(v)) * 0.5, c = c0 < 1.0 ? c0 : 1.0;
    weff[i] = (float)((double)w[i] * c);
  }
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
