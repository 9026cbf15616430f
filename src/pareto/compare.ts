import { bootstrapMeanDiff, bySeed, hypervolume, type Interval, type SeededPoint } from "./hypervolume.ts";
import type { Point2 } from "./front.ts";
import { accuracyAtSparsity, frontOf } from "./interpolate.ts";
import { Rng, RNG_STREAMS } from "../util/rng.ts";

/** The fewest seeds per side for a verdict against the seed-to-seed spread. */
export const MIN_SEEDS = 3;

/** What a comparison with too few seeds says instead of a verdict. */
export function cannotJudge(seeds: number): string {
  return `cannot judge the spread with ${seeds} seed${seeds === 1 ? "" : "s"} (needs ${MIN_SEEDS})`;
}

/**
 * "a" or "b" when the bootstrap interval of the difference excludes 0, "tie" when it does not (within the
 * seed-to-seed spread), "unjudged" when fewer than {@link MIN_SEEDS} seeds' fronts on a side reach there.
 */
export type Verdict = "a" | "b" | "tie" | "unjudged";

/** Accuracy difference of two fronts at one sparsity, judged against the seed-to-seed spread. */
export interface LevelComparison {
  sparsity: number;
  /** Accuracy along each side's front of all seeds pooled. */
  a: number;
  b: number;
  /** Mean over seeds of a − b (each seed's own front, where it reaches this sparsity), and its 95% interval. */
  diff: number;
  lo: number;
  hi: number;
  /** The fewest seeds on a side whose own front covers this sparsity. */
  seeds: number;
  winner: Verdict;
}

/** A contiguous sparsity range with one verdict (and, when unjudged, one direction). */
export interface Region {
  from: number;
  to: number;
  winner: Verdict;
  /** Which side is more accurate on average (without a verdict on the spread when `winner` is "unjudged"). */
  higher: "a" | "b" | "equal";
  /** Largest |mean difference| in the range. */
  maxDiff: number;
  /** The fewest seeds behind any level of the range. */
  seeds: number;
}

/** A sparsity range. */
export interface Range {
  from: number;
  to: number;
}

export interface FrontComparison {
  a: string;
  b: string;
  /** Seeds on each side. */
  seeds: { a: number; b: number };
  /** Hypervolume difference a − b: pooled fronts (`value`), mean over seeds with its bootstrap interval. */
  hvDiff: Interval;
  /** Each side's pooled front's sparsity range, and the range both cover (null: none). */
  ranges: { a: Range; b: Range };
  overlap: Range | null;
  /** Where only one front reaches: no verdict there. */
  outside: (Range & { only: "a" | "b" })[];
  /** Readings inside `overlap` only. */
  levels: LevelComparison[];
  regions: Region[];
}

const avg = (v: readonly number[]) => v.reduce((x, y) => x + y, 0) / v.length;

/** The sparsity range of a front: from its most accurate (least sparse) point to its sparsest. */
export function frontRange(points: readonly Point2[]): Range | null {
  const f = frontOf(points);
  return f.length ? { from: f[0]!.x, to: f[f.length - 1]!.x } : null;
}

const EPS = 1e-9;
const inRange = (r: Range | null, s: number) => r !== null && s >= r.from - EPS && s <= r.to + EPS;

/** The parts of `r` outside `other`. */
function beyond(r: Range, other: Range): Range[] {
  const out: Range[] = [];
  if (r.from < other.from - EPS) out.push({ from: r.from, to: Math.min(r.to, other.from) });
  if (r.to > other.to + EPS) out.push({ from: Math.max(r.from, other.to), to: r.to });
  return out;
}

/**
 * Compares two fronts only where both reach: every `step` of sparsity inside the range both pooled fronts
 * cover (and at its two ends), which is more accurate, by how much, and whether the difference exceeds the
 * seed-to-seed spread: each seed's front is read where it reaches (never extended beyond its own points), and
 * a percentile bootstrap over seeds (each side resampled independently) gives a 95% interval of the mean
 * difference. Below {@link MIN_SEEDS} seeds on a side there is no verdict ("unjudged"). Where only one front
 * reaches, `outside` says so and nothing is read. Reproducible for a given `seed`.
 */
export function compareFronts(
  nameA: string,
  a: readonly SeededPoint[],
  nameB: string,
  b: readonly SeededPoint[],
  opts: { step?: number; resamples?: number; seed?: number } = {},
): FrontComparison {
  const { step = 0.05, resamples = 500, seed = 0 } = opts;
  const rng = new Rng(seed, RNG_STREAMS.compareBootstrap);
  const seedsA = bySeed(a), seedsB = bySeed(b);
  const judged = seedsA.length >= MIN_SEEDS && seedsB.length >= MIN_SEEDS;
  const hvA = seedsA.map((p) => hypervolume(p)), hvB = seedsB.map((p) => hypervolume(p));
  const hvCi = judged
    ? bootstrapMeanDiff(hvA, hvB, rng, resamples)
    : { lo: avg(hvA) - avg(hvB), hi: avg(hvA) - avg(hvB) };
  const hvDiff: Interval = {
    value: hypervolume(a) - hypervolume(b),
    mean: avg(hvA) - avg(hvB),
    ...hvCi,
    seeds: Math.min(seedsA.length, seedsB.length),
  };
  const none = { from: NaN, to: NaN };
  const ra = frontRange(a) ?? none, rb = frontRange(b) ?? none;
  const from = Math.max(ra.from, rb.from), to = Math.min(ra.to, rb.to);
  const overlap = from <= to + EPS ? { from, to: Math.max(from, to) } : null;
  const outside = [
    ...(overlap ? beyond(ra, overlap) : [ra]).map((r) => ({ ...r, only: "a" as const })),
    ...(overlap ? beyond(rb, overlap) : [rb]).map((r) => ({ ...r, only: "b" as const })),
  ].filter((r) => Number.isFinite(r.from)).sort((x, y) => x.from - y.from);
  const levels: LevelComparison[] = [];
  if (overlap) {
    const at = [overlap.from, overlap.to];
    for (let i = Math.ceil(overlap.from / step - EPS); i * step <= overlap.to + EPS; i++) at.push(i * step);
    const grid = [...new Set(at.map((s) => Number(s.toFixed(6))))].sort((x, y) => x - y);
    const rangesA = seedsA.map(frontRange), rangesB = seedsB.map(frontRange);
    for (const s of grid) {
      const va = accuracyAtSparsity(a, s), vb = accuracyAtSparsity(b, s);
      if (va === null || vb === null) continue;
      const read = (fronts: SeededPoint[][], ranges: (Range | null)[]) =>
        fronts.flatMap((p, k) => {
          const v = inRange(ranges[k]!, s) ? accuracyAtSparsity(p, s) : null;
          return v === null ? [] : [v];
        });
      const perA = read(seedsA, rangesA), perB = read(seedsB, rangesB);
      const diff = perA.length && perB.length ? avg(perA) - avg(perB) : va - vb;
      const n = Math.min(perA.length, perB.length);
      const ok = judged && n >= MIN_SEEDS;
      const { lo, hi } = ok ? bootstrapMeanDiff(perA, perB, rng, resamples) : { lo: diff, hi: diff };
      const winner: Verdict = !ok ? "unjudged" : lo > 0 ? "a" : hi < 0 ? "b" : "tie";
      levels.push({ sparsity: s, a: va, b: vb, diff, lo, hi, seeds: n, winner });
    }
  }
  const regions: Region[] = [];
  for (const l of levels) {
    const last = regions[regions.length - 1];
    const higher = l.diff > 0 ? "a" : l.diff < 0 ? "b" : "equal";
    if (last && last.winner === l.winner && (l.winner !== "unjudged" || last.higher === higher)) {
      last.to = l.sparsity;
      last.maxDiff = Math.max(last.maxDiff, Math.abs(l.diff));
      last.seeds = Math.min(last.seeds, l.seeds);
    } else {
      regions.push({
        from: l.sparsity,
        to: l.sparsity,
        winner: l.winner,
        higher,
        maxDiff: Math.abs(l.diff),
        seeds: l.seeds,
      });
    }
  }
  return {
    a: nameA,
    b: nameB,
    seeds: { a: seedsA.length, b: seedsB.length },
    hvDiff,
    ranges: { a: ra, b: rb },
    overlap,
    outside,
    levels,
    regions,
  };
}
