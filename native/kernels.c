/*
 * ticketsweep's core native kernels, called through Deno FFI (src/engine/native.ts builds and loads this with
 * the kernels each mask method registers next to its module, e.g. src/train/masks/gates.c): the optimiser steps
 * of src/train/masks/optimizer.ts, ReLU and conv2d's patches of src/train/nets/layers/. Each computes exactly
 * what its TypeScript loop computes, in the same order and precision, so the two paths give the same bits; these
 * compute in float32 arithmetic as the loops that round each operation with Math.fround (a method's kernels say
 * their own precision: gates' compute in double on float storage, as JavaScript numbers do). No FMA contraction
 * and no fast-math (built with -ffp-contract=off -fno-fast-math), so every operation rounds as V8's does. The
 * shared generator and float32 helpers are in kernels.h.
 */
#include "kernels.h"

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
 * One Adam step in float32 (beta1 0.9, beta2 0.999, eps 1e-8, L2 weight decay added to the gradient) over a
 * buffer, as createOptimizer's `update`: c1, c2 are the bias corrections of this step.
 */
void ts_adam_step(float *restrict p, const float *restrict g0, float *restrict m1, float *restrict m2, int32_t n,
                  float lr, float wd, float c1, float c2) {
  for (int32_t i = 0; i < n; i++) adam_f32(p, g0[i], m1, m2, i, lr, wd, c1, c2);
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
