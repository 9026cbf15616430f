/** A point with two objectives, both maximised. */
export interface Point2 {
  x: number;
  y: number;
}

/**
 * Which points are non-dominated when both coordinates are maximised. A point is dominated when another is
 * at least as good in both and better in one; exact duplicates of a front point are all on the front.
 * O(n log n): sort by x then y, both descending, and sweep.
 *
 * @returns `true` at the index of every non-dominated point.
 */
export function nonDominated(points: readonly Point2[]): boolean[] {
  const nd = nonDominatedOf(points.map((p) => p.x), points.map((p) => p.y));
  return Array.from(nd, (v) => v === 1);
}

/**
 * {@link nonDominated} of the points `(xs[i], ys[i])`, read from columns, without a point object each (a per-seed
 * front of 100,000 tickets). `out[i]` is 1 where point `i` is non-dominated.
 */
export function nonDominatedOf(xs: ArrayLike<number>, ys: ArrayLike<number>): Uint8Array {
  const idx = Uint32Array.from({ length: xs.length }, (_, i) => i)
    .sort((a, b) => xs[b]! - xs[a]! || ys[b]! - ys[a]!);
  const out = new Uint8Array(xs.length);
  let bestY = -Infinity, bestX = NaN;
  for (const i of idx) {
    const x = xs[i]!, y = ys[i]!;
    if (y > bestY) {
      out[i] = 1;
      bestY = y;
      bestX = x;
    } else if (y === bestY && x === bestX) {
      out[i] = 1;
    }
  }
  return out;
}
