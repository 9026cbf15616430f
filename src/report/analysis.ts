import { compareFronts, type FrontComparison } from "../pareto/compare.ts";
import type { Point2 } from "../pareto/front.ts";
import { bootstrapHypervolume, HV_REFERENCE, type Interval, type SeededPoint } from "../pareto/hypervolume.ts";
import { accuracyAtSparsity, kneeIndex, sparsityAtAccuracy } from "../pareto/interpolate.ts";
import type { ReportData, Selection, TrialRow } from "./data.ts";

/** Sparsity levels of the "accuracy at sparsity" table. */
export const AT_SPARSITY = [0.5, 0.8, 0.9, 0.95];

/** The numbers a report shows for one front. */
export interface FrontAnalysis {
  group: string;
  hypervolume: Interval;
  knee: TrialRow | null;
  atSparsity: { sparsity: number; accuracy: number | null }[];
  atAccuracy: { accuracy: number; sparsity: number | null }[];
}

/** Everything computed from the fronts: hypervolumes, knees, interpolation tables, pairwise comparisons. */
export interface Analysis {
  /** The accuracy every number here is on (the fronts' `score`): validation, or test for runs without one. */
  selection: Selection;
  reference: Point2;
  atAccuracy: number[];
  fronts: FrontAnalysis[];
  comparisons: FrontComparison[];
  bootstrap: { resamples: number; seed: number; level: number };
}

/**
 * The default accuracy levels of the "sparsity at accuracy ≥ X" table: 1, 2 and 5 points below the dense
 * reference when the sweep has one, else below the best ticket (on the selection accuracy).
 */
export function defaultAccuracyLevels(d: ReportData): number[] {
  const best = d.tickets.reduce((m, t) => Math.max(m, t.score!), -Infinity); // no spread: tickets may be many
  const top = d.dense?.accuracy ?? (d.tickets.length ? best : 1);
  return [0.01, 0.02, 0.05].map((gap) => Number((top - gap).toFixed(4)));
}

export function seededPoints(d: ReportData, group: string): SeededPoint[] {
  return d.tickets.filter((t) => t.group === group)
    .map((t) => ({ x: t.sparsity!, y: t.score!, seed: t.seed }));
}

/** Analyses every front of a report; reproducible for a given bootstrap `seed`. */
export function analyse(
  d: ReportData,
  opts: { atAccuracy?: number[]; seed?: number; resamples?: number } = {},
): Analysis {
  const seed = opts.seed ?? 0, resamples = opts.resamples ?? 1000;
  const atAccuracy = opts.atAccuracy ?? defaultAccuracyLevels(d);
  const fronts = d.fronts.map((f): FrontAnalysis => {
    const pts = seededPoints(d, f.group);
    const k = kneeIndex(f.points.map((p) => ({ x: p.sparsity!, y: p.score! })));
    return {
      group: f.group,
      hypervolume: bootstrapHypervolume(pts, { resamples, seed }),
      knee: k >= 0 ? f.points[k]! : null,
      atSparsity: AT_SPARSITY.map((s) => ({ sparsity: s, accuracy: accuracyAtSparsity(pts, s) })),
      atAccuracy: atAccuracy.map((a) => ({ accuracy: a, sparsity: sparsityAtAccuracy(pts, a) })),
    };
  });
  const comparisons: FrontComparison[] = [];
  const withPoints = d.fronts.filter((f) => f.points.length > 0);
  for (let i = 0; i < withPoints.length; i++) {
    for (let j = i + 1; j < withPoints.length; j++) {
      const a = withPoints[i]!.group, b = withPoints[j]!.group;
      comparisons.push(compareFronts(a, seededPoints(d, a), b, seededPoints(d, b), { seed, resamples: 300 }));
    }
  }
  return {
    selection: d.selection,
    reference: HV_REFERENCE,
    atAccuracy,
    fronts,
    comparisons,
    bootstrap: { resamples, seed, level: 0.95 },
  };
}
