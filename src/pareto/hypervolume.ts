import type { Point2 } from "./front.ts";
import { Rng, RNG_STREAMS } from "../util/rng.ts";

/**
 * The fixed reference point of every hypervolume ticketsweep reports: sparsity 0, accuracy 0. The
 * hypervolume is then the area of [0, 1]² dominated by the front, in sparsity × accuracy units (1 would be
 * a perfect ticket that removes everything and is always right).
 */
export const HV_REFERENCE: Point2 = { x: 0, y: 0 };

/** The area dominated by `points` (both coordinates maximised) and bounded below by `ref`. */
export function hypervolume(points: readonly Point2[], ref: Point2 = HV_REFERENCE): number {
  return hypervolumeOf(points.map((p) => p.x), points.map((p) => p.y), ref);
}

/**
 * {@link hypervolume} of the points `(xs[i], ys[i])`, read from columns, without an object or an array of objects per
 * point (a report's front of 100,000 tickets): the area is summed along the front by sparsity ascending.
 */
export function hypervolumeOf(xs: ArrayLike<number>, ys: ArrayLike<number>, ref: Point2 = HV_REFERENCE): number {
  const inside = new Uint32Array(xs.length);
  let m = 0;
  for (let i = 0; i < xs.length; i++) if (xs[i]! > ref.x && ys[i]! > ref.y) inside[m++] = i;
  // as nonDominated: by x then y, both descending, keeping each point above every one before it (and its duplicates)
  const order = inside.subarray(0, m).sort((a, b) => xs[b]! - xs[a]! || ys[b]! - ys[a]!);
  const front = new Uint32Array(m);
  let k = 0, bestY = -Infinity, bestX = NaN;
  for (const i of order) {
    const x = xs[i]!, y = ys[i]!;
    if (y > bestY) {
      front[k++] = i;
      bestY = y;
      bestX = x;
    } else if (y === bestY && x === bestX) front[k++] = i;
  }
  // the front by x ascending: two of its points at one x are equal (a lower one would be dominated)
  let area = 0, prevX = ref.x;
  for (let j = k - 1; j >= 0; j--) {
    const x = xs[front[j]!]!;
    if (x === prevX) continue;
    area += (x - prevX) * (ys[front[j]!]! - ref.y);
    prevX = x;
  }
  return area;
}

/**
 * The hypervolume of a growing set of points, kept up to date as each point is added (for a curve of hypervolume
 * after each recorded trial): the front is kept sorted by x, so a point costs a binary search and, when it
 * enters the front, the removal of what it dominates. Agrees with {@link hypervolume} of the points added so far
 * up to rounding.
 */
export class HypervolumeTracker {
  readonly #xs: number[] = [];
  readonly #ys: number[] = [];
  readonly #ref: Point2;
  #area = 0;

  constructor(ref: Point2 = HV_REFERENCE) {
    this.#ref = ref;
  }

  get value(): number {
    return this.#area;
  }

  add(p: Point2): void {
    const { x, y } = p, xs = this.#xs, ys = this.#ys, rx = this.#ref.x, ry = this.#ref.y;
    if (!(x > rx && y > ry)) return;
    let lo = 0, hi = xs.length; // the first front point at x or right of it
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    const j = lo;
    if (j < xs.length && ys[j]! >= y) return; // dominated by (or equal to) a front point
    const end = j < xs.length && xs[j] === x ? j + 1 : j; // a lower point at the same x leaves the front
    let k = j; // the front points left of x and not above y leave the front (y falls along the front)
    while (k > 0 && ys[k - 1]! <= y) k--;
    const prevX = k > 0 ? xs[k - 1]! : rx;
    let before = 0, px = prevX;
    for (let i = k; i < end; i++) {
      before += (xs[i]! - px) * (ys[i]! - ry);
      px = xs[i]!;
    }
    let after = (x - prevX) * (y - ry);
    if (end < xs.length) {
      before += (xs[end]! - px) * (ys[end]! - ry);
      after += (xs[end]! - x) * (ys[end]! - ry);
    }
    this.#area += after - before;
    xs.splice(k, end - k, x);
    ys.splice(k, end - k, y);
  }
}

/** A point tagged with the seed of the trial that produced it. */
export interface SeededPoint extends Point2 {
  seed: number;
}

/**
 * A front statistic over seeds: `value` on the front of all seeds pooled (the front a report shows), `mean`
 * over the fronts of single seeds, and a percentile bootstrap interval of that mean (seeds resampled with
 * replacement). With one seed the interval is just the value.
 */
export interface Interval {
  value: number;
  mean: number;
  lo: number;
  hi: number;
  seeds: number;
}

/** Percentile of sorted values (linear between ranks). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Points grouped by seed, in seed order. */
export function bySeed(points: readonly SeededPoint[]): SeededPoint[][] {
  const m = new Map<number, SeededPoint[]>();
  for (const p of points) {
    const l = m.get(p.seed);
    if (l) l.push(p); // not a copy per point: a seed of 100,000 tickets made that quadratic
    else m.set(p.seed, [p]);
  }
  return [...m.keys()].sort((a, b) => a - b).map((k) => m.get(k)!);
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** The mean of one bootstrap resample (with replacement) of `values`. */
export function resampledMean(values: readonly number[], rng: Rng): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[rng.int(values.length)]!;
  return s / values.length;
}

/**
 * Percentile bootstrap interval of `mean(a) − mean(b)` (or of `mean(a)` when `b` is empty), each side's
 * values resampled independently. Reproducible for a given generator.
 */
export function bootstrapMeanDiff(
  a: readonly number[],
  b: readonly number[],
  rng: Rng,
  resamples: number,
  level = 0.95,
): { lo: number; hi: number } {
  const draws: number[] = [];
  for (let i = 0; i < resamples; i++) draws.push(resampledMean(a, rng) - (b.length ? resampledMean(b, rng) : 0));
  draws.sort((x, y) => x - y);
  return { lo: percentile(draws, (1 - level) / 2), hi: percentile(draws, 1 - (1 - level) / 2) };
}

/**
 * {@link bootstrapHypervolume} of the points `(xs[i], ys[i])` of seeds `seeds[i]`, read from columns: the same numbers
 * without an object per point.
 */
export function bootstrapHypervolumeOf(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  seeds: ArrayLike<number>,
  opts: { resamples?: number; seed?: number; level?: number } = {},
): Interval {
  const { resamples = 1000, seed = 0, level = 0.95 } = opts;
  const value = hypervolumeOf(xs, ys);
  const count = new Map<number, number>();
  for (let i = 0; i < seeds.length; i++) count.set(seeds[i]!, (count.get(seeds[i]!) ?? 0) + 1);
  const order = [...count.keys()].sort((a, b) => a - b);
  // one seed: its points are all of them (its front again would be the same number)
  const perSeed = order.length === 1 ? [value] : order.map((s) => {
    const sx = new Float64Array(count.get(s)!), sy = new Float64Array(sx.length);
    for (let i = 0, j = 0; i < seeds.length; i++) {
      if (seeds[i] === s) {
        sx[j] = xs[i]!;
        sy[j++] = ys[i]!;
      }
    }
    return hypervolumeOf(sx, sy);
  });
  return intervalOf(value, perSeed, resamples, seed, level);
}

/** Hypervolume of a front (pooled over seeds) and the mean over single seeds' fronts with its bootstrap interval. */
export function bootstrapHypervolume(
  points: readonly SeededPoint[],
  opts: { resamples?: number; seed?: number; level?: number } = {},
): Interval {
  return bootstrapHypervolumeOf(points.map((p) => p.x), points.map((p) => p.y), points.map((p) => p.seed), opts);
}

/** The pooled hypervolume `value` and the mean of the seeds' own ones with its bootstrap interval. */
function intervalOf(value: number, perSeed: number[], resamples: number, seed: number, level: number): Interval {
  if (perSeed.length < 2) {
    return {
      value,
      mean: perSeed[0] ?? value,
      lo: perSeed[0] ?? value,
      hi: perSeed[0] ?? value,
      seeds: perSeed.length,
    };
  }
  const { lo, hi } = bootstrapMeanDiff(perSeed, [], new Rng(seed, RNG_STREAMS.hypervolumeBootstrap), resamples, level);
  return { value, mean: mean(perSeed), lo, hi, seeds: perSeed.length };
}
