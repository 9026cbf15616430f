import { MIN_SEEDS } from "../pareto/compare.ts";
import type { Spread } from "../pareto/seeds.ts";
import type { Analysis, ConfigRow, FrontAnalysis } from "./analysis.ts";
import { type ComputeCurve, type DenseReference, type Selection, ticketId } from "./data.ts";

/** A fraction as a percentage with two decimals; empty for missing values. */
export const fmtPct = (
  v: number | undefined | null,
): string => (v === undefined || v === null ? "" : (100 * v).toFixed(2));

/**
 * The most rows one table of the HTML or Markdown report shows: the tables of a 100,000-trial sweep would make a
 * page that does not open. trials.csv has every trial, fronts.json and pareto.json every front and ticket.
 */
export const TABLE_ROWS = 1000;

/** At most `max` of `rows`, evenly spaced in their order, the first and the last kept. */
export function shownRows<T>(rows: readonly T[], max = TABLE_ROWS): T[] {
  if (rows.length <= max) return [...rows];
  return Array.from({ length: max }, (_, j) => rows[Math.round((j * (rows.length - 1)) / (max - 1))]!);
}

/** The line under a table that shows `shown` of its `total` rows. */
export function leftOutNote(shown: number, total: number): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return `${n(shown)} of ${n(total)} rows shown, evenly spaced: trials.csv has every trial, fronts.json and ` +
    "pareto.json every front and ticket.";
}

/** A table's header and rows as text cells; each renderer (Markdown, HTML) only formats them. */
export interface TableCells {
  head: string[];
  rows: string[][];
  /**
   * How many rows `rows` was chosen from when it holds only those shown ({@link shownRows}); absent: all of them.
   * A front of 100,000 points is thinned before its cells are made, not after.
   */
  total?: number;
}

/** What an interval cell says below {@link MIN_SEEDS} seeds. */
export const NO_INTERVAL = (seeds: number) => `cannot judge (${seeds} seed${seeds === 1 ? "" : "s"})`;

/**
 * Hypervolume (pooled, per seed with its interval, of the configuration front) and the knee of each configuration
 * front (its means, and the ticket of its seed closest to them).
 */
export function hypervolumeTable(a: Analysis): TableCells {
  const val = a.selection === "validation";
  return {
    head: [
      "front",
      "hypervolume pooled",
      "per seed",
      "interval low",
      "interval high",
      "seeds",
      "configuration front",
      "knee sparsity % (mean)",
      `knee ${a.selection} accuracy % (mean)`,
      ...(val ? ["knee test accuracy % (mean)"] : []),
      "knee configuration",
      "knee ticket",
    ],
    rows: a.fronts.map((f) => {
      const judged = f.hypervolume.seeds >= MIN_SEEDS, k = f.knee_point;
      return [
        f.group,
        f.hypervolume.value.toFixed(4),
        f.hypervolume.mean.toFixed(4),
        judged ? f.hypervolume.lo.toFixed(4) : NO_INTERVAL(f.hypervolume.seeds),
        judged ? f.hypervolume.hi.toFixed(4) : NO_INTERVAL(f.hypervolume.seeds),
        String(f.hypervolume.seeds),
        f.config_hypervolume.toFixed(4),
        fmtPct(k?.sparsity.mean),
        fmtPct(k?.accuracy.mean),
        ...(val ? [fmtPct(k?.test.mean)] : []),
        k?.label ?? "",
        f.knee ? ticketId(f.knee) : "",
      ];
    }),
  };
}

/** Accuracy interpolated along each configuration front at the sparsity levels the fronts reach. */
export function atSparsityTable(a: Analysis): TableCells {
  return {
    head: [`front (${a.selection} accuracy, mean over seeds)`, ...a.atSparsity.map((s) => `${fmtPct(s)}% sparse`)],
    rows: a.fronts.map((f) => [f.group, ...f.atSparsity.map((x) => fmtPct(x.accuracy))]),
  };
}

/** The highest sparsity along each configuration front at accuracy ≥ each level (and what the level is relative to). */
export function atAccuracyTable(a: Analysis): TableCells {
  return {
    head: [
      "front (mean sparsity %)",
      ...a.atAccuracyLevels.map((l) =>
        `${a.selection} accuracy ≥ ${fmtPct(l.accuracy)}%${l.basis === "given" ? "" : ` (${l.basis})`}`
      ),
    ],
    rows: a.fronts.map((f) => [f.group, ...f.atAccuracy.map((x) => fmtPct(x.sparsity))]),
  };
}

/** A spread's interval as text, `[lo, hi]` in percent, or that it cannot be judged with this many seeds. */
export function intervalText(s: Spread, seeds: number): string {
  return s.lo === null || s.hi === null ? NO_INTERVAL(seeds) : `[${fmtPct(s.lo)}, ${fmtPct(s.hi)}]`;
}

/**
 * One configuration front: each point's mean, standard deviation and 95% bootstrap interval of sparsity and
 * accuracy over its seeds, test accuracy beside it, Δ against its sweep's dense reference, and its configuration.
 */
export function configFrontTable(
  f: Pick<FrontAnalysis, "front">,
  selection: Selection,
  dense: DenseReference | null,
  several = false,
): TableCells {
  const val = selection === "validation";
  const sd = (s: Spread) => (s.sd === null ? "" : fmtPct(s.sd));
  return {
    head: [
      "sparsity % (mean)",
      "sd",
      "95% interval",
      `${selection} accuracy % (mean, chooses)`,
      "sd",
      "95% interval",
      ...(val ? ["test accuracy % (mean)"] : []),
      ...(dense ? [several ? `Δ vs ${dense.sweep} dense (pp)` : "Δ vs dense (pp)"] : []),
      "seeds",
      "configuration",
      "tickets",
    ],
    // only the rows shown: a front of 100,000 points would be ~1.1 million strings made to show 1,000 rows
    total: f.front.length,
    rows: shownRows(f.front).map((p: ConfigRow) => [
      fmtPct(p.sparsity.mean),
      sd(p.sparsity),
      intervalText(p.sparsity, p.seeds.length),
      fmtPct(p.accuracy.mean),
      sd(p.accuracy),
      intervalText(p.accuracy, p.seeds.length),
      ...(val ? [fmtPct(p.test.mean)] : []),
      ...(dense ? [(100 * (p.accuracy.mean - dense.accuracy)).toFixed(2)] : []),
      String(p.seeds.length),
      p.label,
      p.members.map(ticketId).join(" "),
    ]),
  };
}

/**
 * Hypervolume against compute: at up to `rows` evenly spaced budgets of trial-epochs (up to the largest any sweep
 * spent), each sweep's hypervolume after the last outcome recorded within that budget (empty: nothing recorded
 * yet); a comparison puts its sweeps side by side.
 */
export function computeTable(curves: readonly ComputeCurve[], rows = 12): TableCells | null {
  const max = curves.reduce((m, c) => c.steps.reduce((n, s) => Math.max(n, s.trial_epochs), m), 0);
  if (!curves.length || max <= 0) return null;
  const budgets: number[] = [];
  for (let i = 1; i <= rows; i++) {
    const b = Number(((max * i) / rows).toFixed(2));
    if (!budgets.includes(b)) budgets.push(b);
  }
  const single = curves.length === 1;
  return {
    head: [
      "trial-epochs ≤",
      ...curves.flatMap((c) =>
        single
          ? ["trials recorded", `${c.selection} hypervolume`]
          : [`${c.sweep}: trials`, `${c.sweep}: ${c.selection} hypervolume`]
      ),
    ],
    rows: budgets.map((b) => [
      String(b),
      ...curves.flatMap((c) => {
        const at = c.steps.filter((s) => s.trial_epochs <= b + 1e-9).at(-1);
        return at ? [String(at.trials), at.hypervolume.toFixed(4)] : ["0", ""];
      }),
    ]),
  };
}
