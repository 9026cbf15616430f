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
  const idx = points.map((_, i) => i).sort((a, b) => points[b]!.x - points[a]!.x || points[b]!.y - points[a]!.y);
  const out = new Array<boolean>(points.length).fill(false);
  let bestY = -Infinity, bestX = NaN;
  for (const i of idx) {
    const p = points[i]!;
    if (p.y > bestY) {
      out[i] = true;
      bestY = p.y;
      bestX = p.x;
    } else if (p.y === bestY && p.x === bestX) {
      out[i] = true;
    }
  }
  return out;
}
