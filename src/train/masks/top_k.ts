/** How many of `n` weights edge-popup keeps for fraction `k`: its reference code zeroes the `floor((1−k)·n)` lowest. */
export function keptCount(n: number, k: number): number {
  return n - Math.floor((1 - k) * n);
}

/** The `r`-th smallest value (from 0) of `a`, reordering `a` (Hoare's selection, median-of-three pivots). */
export function selectNth(a: Float32Array, r: number): number {
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r]!;
  }
  return a[lo]!;
}

/**
 * Writes into `out` the mask keeping exactly {@link keptCount} entries of largest `|scores|` (ties at the
 * threshold kept in index order); `scratch` must be as long as `scores`. Linear time.
 */
export function topKMask(scores: Float32Array, k: number, out: Uint8Array, scratch: Float32Array): void {
  const n = scores.length, keep = keptCount(n, k);
  if (keep >= n) {
    out.fill(1);
    return;
  }
  for (let i = 0; i < n; i++) scratch[i] = Math.abs(scores[i]!);
  const t = selectNth(scratch, n - keep); // the smallest kept magnitude
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(scores[i]!) > t) above++;
  let ties = keep - above;
  for (let i = 0; i < n; i++) {
    const v = Math.abs(scores[i]!);
    out[i] = v > t || (v === t && ties-- > 0) ? 1 : 0;
  }
}
