/**
 * Early stopping of dominated trials (spec `early_stop`), ASHA-style but multi-objective: at each rung (a fraction
 * of its epochs) a trial reports its current ticket's (sparsity, validation accuracy); it is stopped when a point
 * that another trial of the same method group reached at the same rung beats it on both objectives by at least
 * the margin. Decisions depend only on the reports and their order, so the same reports in the same order give the
 * same decisions. The board lives in the coordinator's memory: a resumed coordinator starts with an empty one.
 */

/** A trial's ticket at a rung. */
export interface RungPoint {
  trialId: string;
  sparsity: number;
  /** Validation accuracy (test accuracy when the run has no validation split). */
  valAccuracy: number;
}

/** Whether `q` dominates `p` by `margin`: at least `margin` sparser and at least `margin` more accurate. */
export function dominatesBy(q: RungPoint, p: RungPoint, margin: number): boolean {
  // a tiny tolerance, so that a margin of exactly 0.01 between 0.9 and 0.91 counts despite rounding
  const eps = 1e-12;
  return q.sparsity - p.sparsity >= margin - eps && q.valAccuracy - p.valAccuracy >= margin - eps &&
    (margin > 0 || q.sparsity > p.sparsity || q.valAccuracy > p.valAccuracy);
}

/** What the board decided about one report. */
export type RungDecision =
  | { stop: false }
  | { stop: true; by: RungPoint };

/** The points reached at each rung, per method group, in report order. */
export class RungBoard {
  readonly #points = new Map<string, RungPoint[]>();

  constructor(readonly margin: number) {}

  /**
   * Records `point` at rung `rung` of `group` (the first report of a trial at a rung counts; a repeat, from a
   * redelivered attempt, is judged against the others but not stored again) and decides: stop when a point of
   * another trial already there dominates it by the margin (the first such point in report order is named).
   */
  report(group: string, rung: number, point: RungPoint): RungDecision {
    const key = `${group}\u0000${rung}`;
    const pts = this.#points.get(key) ?? [];
    const by = pts.find((q) => q.trialId !== point.trialId && dominatesBy(q, point, this.margin));
    if (!pts.some((q) => q.trialId === point.trialId)) pts.push(point);
    this.#points.set(key, pts);
    return by ? { stop: true, by } : { stop: false };
  }
}
