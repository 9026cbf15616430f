/*
 * edge-popup's native kernels (registered in edge_popup.ts): the exact top-k mask and the straight-through
 * SGD step on the scores.
 */
#include "kernels.h"

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
