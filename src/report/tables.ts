import type { Analysis } from "./analysis.ts";
import { type ComputeCurve, ticketId } from "./data.ts";

/** A fraction as a percentage with two decimals; empty for missing values. */
export const fmtPct = (
  v: number | undefined | null,
): string => (v === undefined || v === null ? "" : (100 * v).toFixed(2));

/** A table's header and rows as text cells; each renderer (Markdown, HTML) only formats them. */
export interface TableCells {
  head: string[];
  rows: string[][];
}

/** Hypervolume (pooled, per seed with its interval) and the knee of each front. */
export function hypervolumeTable(a: Analysis): TableCells {
  return {
    head: [
      "front",
      "hypervolume pooled",
      "per seed",
      "interval low",
      "interval high",
      "seeds",
      "knee sparsity %",
      `knee ${a.selection} accuracy %`,
      ...(a.selection === "validation" ? ["knee test accuracy %"] : []),
      "knee ticket",
    ],
    rows: a.fronts.map((f) => [
      f.group,
      f.hypervolume.value.toFixed(4),
      f.hypervolume.mean.toFixed(4),
      f.hypervolume.lo.toFixed(4),
      f.hypervolume.hi.toFixed(4),
      String(f.hypervolume.seeds),
      fmtPct(f.knee?.sparsity),
      fmtPct(f.knee?.score),
      ...(a.selection === "validation" ? [fmtPct(f.knee?.accuracy)] : []),
      f.knee ? ticketId(f.knee) : "",
    ]),
  };
}

/** Accuracy interpolated along each front at the fixed sparsity levels. */
export function atSparsityTable(a: Analysis): TableCells {
  return {
    head: [
      `front (${a.selection} accuracy)`,
      ...(a.fronts[0]?.atSparsity.map((x) => `${fmtPct(x.sparsity)}% sparse`) ?? []),
    ],
    rows: a.fronts.map((f) => [f.group, ...f.atSparsity.map((x) => fmtPct(x.accuracy))]),
  };
}

/** The highest sparsity along each front at accuracy ≥ each level. */
export function atAccuracyTable(a: Analysis): TableCells {
  return {
    head: ["front", ...a.atAccuracy.map((x) => `${a.selection} accuracy ≥ ${fmtPct(x)}%`)],
    rows: a.fronts.map((f) => [f.group, ...f.atAccuracy.map((x) => fmtPct(x.sparsity))]),
  };
}

/**
 * Hypervolume against compute: at up to `rows` evenly spaced budgets of trial-epochs (up to the largest any sweep
 * spent), each sweep's hypervolume after the last outcome recorded within that budget (empty: nothing recorded
 * yet); a comparison puts its sweeps side by side.
 */
export function computeTable(curves: readonly ComputeCurve[], rows = 12): TableCells | null {
  const max = Math.max(0, ...curves.flatMap((c) => c.steps.map((s) => s.trial_epochs)));
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
