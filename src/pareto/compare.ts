import { bootstrapMeanDiff, bySeed, hypervolume, type Interval, type SeededPoint } from "./hypervolume.ts";
import { accuracyAtSparsity } from "./interpolate.ts";
import { Rng } from "../util/rng.ts";

/** Accuracy difference of two fronts at one sparsity, judged against the seed-to-seed spread. */
export interface LevelComparison {
  sparsity: number;
  /** Accuracy along each side's front of all seeds pooled. */
  a: number;
  b: number;
  /** Mean over seeds of a − b (each seed's own front), and its 95% bootstrap interval. */
  diff: number;
  lo: number;
  hi: number;
  /** "a" or "b" when the interval excludes 0, else "tie" (within the seed-to-seed spread). */
  winner: "a" | "b" | "tie";
}

/** A contiguous sparsity range with one verdict. */
export interface Region {
  from: number;
  to: number;
  winner: "a" | "b" | "tie";
  /** Largest |mean difference| in the range. */
  maxDiff: number;
}

export interface FrontComparison {
  a: string;
  b: string;
  /** Hypervolume difference a − b: pooled fronts (`value`), mean over seeds with its bootstrap interval. */
  hvDiff: Interval;
  levels: LevelComparison[];
  regions: Region[];
}

const avg = (v: readonly number[]) => v.reduce((x, y) => x + y, 0) / v.length;

/**
 * Compares two fronts every `step` of sparsity up to the highest both reach: which is more accurate where,
 * by how much, and whether the difference exceeds the seed-to-seed spread: each seed's front is read
 * separately, and a percentile bootstrap over seeds (each side resampled independently) gives a 95%
 * interval of the mean difference. With fewer than two seeds on a side, every verdict is "tie".
 * Reproducible for a given `seed`.
 */
export function compareFronts(
  nameA: string,
  a: readonly SeededPoint[],
  nameB: string,
  b: readonly SeededPoint[],
  opts: { step?: number; resamples?: number; seed?: number } = {},
): FrontComparison {
  const { step = 0.05, resamples = 500, seed = 0 } = opts;
  const rng = new Rng(seed, 22);
  const seedsA = bySeed(a), seedsB = bySeed(b);
  const judged = seedsA.length > 1 && seedsB.length > 1;
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
  const top = Math.min(Math.max(...a.map((p) => p.x)), Math.max(...b.map((p) => p.x)));
  const levels: LevelComparison[] = [];
  for (let i = 1; i * step <= top + 1e-9; i++) {
    const s = Number((i * step).toFixed(6));
    const va = accuracyAtSparsity(a, s), vb = accuracyAtSparsity(b, s);
    if (va === null || vb === null) continue;
    const perA = seedsA.map((p) => accuracyAtSparsity(p, s)).filter((v): v is number => v !== null);
    const perB = seedsB.map((p) => accuracyAtSparsity(p, s)).filter((v): v is number => v !== null);
    const diff = perA.length && perB.length ? avg(perA) - avg(perB) : va - vb;
    const ok = judged && perA.length > 1 && perB.length > 1;
    const { lo, hi } = ok ? bootstrapMeanDiff(perA, perB, rng, resamples) : { lo: diff, hi: diff };
    levels.push({ sparsity: s, a: va, b: vb, diff, lo, hi, winner: !ok ? "tie" : lo > 0 ? "a" : hi < 0 ? "b" : "tie" });
  }
  const regions: Region[] = [];
  for (const l of levels) {
    const last = regions[regions.length - 1];
    if (last && last.winner === l.winner) {
      last.to = l.sparsity;
      last.maxDiff = Math.max(last.maxDiff, Math.abs(l.diff));
    } else regions.push({ from: l.sparsity, to: l.sparsity, winner: l.winner, maxDiff: Math.abs(l.diff) });
  }
  return { a: nameA, b: nameB, hvDiff, levels, regions };
}
