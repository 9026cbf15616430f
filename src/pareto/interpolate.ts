import { nonDominated, type Point2 } from "./front.ts";

/** The non-dominated points of a set, sorted by sparsity ascending (accuracy then descends). */
export function frontOf(points: readonly Point2[]): Point2[] {
  const nd = nonDominated(points);
  return points.filter((_, i) => nd[i]).sort((a, b) => a.x - b.x || b.y - a.y);
}

/**
 * Accuracy along the front of `points` at sparsity `s`, the front read as the piecewise-linear curve through its
 * points: at or below its least sparse point, that point's accuracy (a ticket at least that sparse exists),
 * linear between neighbouring points, null beyond its sparsest point (not reached).
 */
export function accuracyAtSparsity(points: readonly Point2[], s: number): number | null {
  return accuracyAlong(frontOf(points), s);
}

/** {@link accuracyAtSparsity} on `f`, a front as {@link frontOf} makes it (read at several levels, made once). */
export function accuracyAlong(f: readonly Point2[], s: number): number | null {
  if (f.length === 0 || s > f[f.length - 1]!.x) return null;
  if (s <= f[0]!.x) return f[0]!.y;
  for (let i = 1; i < f.length; i++) {
    const a = f[i - 1]!, b = f[i]!;
    if (s <= b.x) return b.x === a.x ? b.y : a.y + (b.y - a.y) * (s - a.x) / (b.x - a.x);
  }
  return null;
}

/**
 * The highest sparsity along the front of `points` (same piecewise-linear reading) whose accuracy is at least
 * `acc`, never beyond its sparsest point; null when no point of the front reaches `acc`.
 */
export function sparsityAtAccuracy(points: readonly Point2[], acc: number): number | null {
  return sparsityAlong(frontOf(points), acc);
}

/** {@link sparsityAtAccuracy} on `f`, a front as {@link frontOf} makes it (read at several levels, made once). */
export function sparsityAlong(f: readonly Point2[], acc: number): number | null {
  if (f.length === 0 || f[0]!.y < acc) return null;
  for (let i = 1; i < f.length; i++) {
    const a = f[i - 1]!, b = f[i]!;
    if (b.y < acc) return a.y === b.y ? a.x : a.x + (b.x - a.x) * (a.y - acc) / (a.y - b.y);
  }
  return f[f.length - 1]!.x;
}

/**
 * The index of the knee of `front` (already a front; any order): the point farthest from the straight line
 * between its least and its most sparse point, both axes scaled to the front's ranges (the best trade-off when
 * neither objective is preferred); the first such point on a tie. With fewer than three points, the one with the
 * largest sparsity + accuracy; -1 for none.
 */
export function kneeIndex(front: readonly Point2[]): number {
  if (front.length === 0) return -1;
  if (front.length < 3) {
    let best = 0;
    front.forEach((p, i) => (p.x + p.y > front[best]!.x + front[best]!.y ? (best = i) : 0));
    return best;
  }
  const xs = front.map((p) => p.x), ys = front.map((p) => p.y);
  const lo = (v: number[]) => v.reduce((m, x) => Math.min(m, x), Infinity);
  const hi = (v: number[]) => v.reduce((m, x) => Math.max(m, x), -Infinity);
  const [x0, x1, y0, y1] = [lo(xs), hi(xs), lo(ys), hi(ys)]; // not Math.min(...xs): a front of 100,000 points
  const nx = (v: number) => (x1 > x0 ? (v - x0) / (x1 - x0) : 0),
    ny = (v: number) => (y1 > y0 ? (v - y0) / (y1 - y0) : 0);
  const first = front.reduce((a, p) => (p.x < a.x ? p : a)), last = front.reduce((a, p) => (p.x > a.x ? p : a));
  const ax = nx(first.x), ay = ny(first.y), bx = nx(last.x), by = ny(last.y);
  const len = Math.hypot(bx - ax, by - ay) || 1;
  let best = 0, bestD = -Infinity;
  front.forEach((p, i) => {
    const d = Math.abs((bx - ax) * (ay - ny(p.y)) - (ax - nx(p.x)) * (by - ay)) / len;
    if (d > bestD) [best, bestD] = [i, d];
  });
  return best;
}
