/**
 * Early stopping of dominated trials (spec `early_stop`), ASHA-style but multi-objective: at each rung (a fraction
 * of its epochs) a trial reports its current ticket's (sparsity, validation accuracy) and those of its ladder's
 * cuts; it is stopped when every one of its points is beaten, by the margin, by a point that another trial of the
 * same method group reached at the same rung: the trial cannot add anything to the front there. Decisions depend
 * only on the reports and their order, so the same reports in the same order give the same decisions; the
 * coordinator keeps the reports in `rungs.jsonl` and replays them on resume.
 */

import { z } from "zod";
import { MAX_CUTS } from "../spec/schema.ts";
import { appendLine, type BadLine, parseLogLines, readLogText, setLinesAside } from "./record.ts";

/** A ticket's point at a rung. */
export interface Point {
  sparsity: number;
  /** Validation accuracy (test accuracy when the run has no validation split). */
  valAccuracy: number;
}

/** A trial's report at a rung: its own ticket's point and its ladder's. */
export interface RungPoint extends Point {
  trialId: string;
  /** The cuts of the trial's ladder at the rung (none without `tickets.cuts`). */
  ladder?: readonly Point[];
}

/**
 * Whether `q` beats `p` by `margin`: at least as sparse and at least `margin` more accurate, or at least as
 * accurate and at least `margin` sparser (with margin 0: better on one axis, no worse on the other).
 */
export function dominatesBy(q: Point, p: Point, margin: number): boolean {
  // a tiny tolerance, so that a margin of exactly 0.01 between 0.9 and 0.91 counts despite rounding
  const eps = 1e-12;
  const ds = q.sparsity - p.sparsity, da = q.valAccuracy - p.valAccuracy;
  if (ds < -eps || da < -eps) return false;
  return margin > 0 ? ds >= margin - eps || da >= margin - eps : ds > 0 || da > 0;
}

/** A report's points: the own ticket's and every cut's. */
const pointsOf = (r: RungPoint): Point[] => [r, ...(r.ladder ?? [])];

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
   * redelivered attempt, is judged against the others but not stored again) and decides: stop when every point of
   * the report (own ticket and cuts) is beaten by the margin by a point of another trial already there; the trial
   * named is the one that beat the report's own ticket first in report order.
   */
  report(group: string, rung: number, point: RungPoint): RungDecision {
    const key = `${group}\u0000${rung}`;
    const pts = this.#points.get(key) ?? [];
    const others = pts.filter((q) => q.trialId !== point.trialId);
    const beaten = (p: Point) => others.find((q) => pointsOf(q).some((o) => dominatesBy(o, p, this.margin)));
    const by = pointsOf(point).every((p) => beaten(p) !== undefined) ? beaten(point) : undefined;
    if (!pts.some((q) => q.trialId === point.trialId)) pts.push(point);
    this.#points.set(key, pts);
    return by ? { stop: true, by } : { stop: false };
  }
}

/** The file of a sweep's rung reports in its run directory: one JSON line per report the board judged. */
export const RUNGS_FILE = "rungs.jsonl";
/** Where lines of `rungs.jsonl` that are not a valid report go. */
export const RUNGS_REJECTED_FILE = "rungs.rejected.jsonl";

const PointSchema = z.object({ sparsity: z.number().min(0).max(1), val_accuracy: z.number().min(0).max(1) }).strict();
const RungLineSchema = z.object({
  v: z.literal(1),
  trial_id: z.string().max(200),
  group: z.string().max(200),
  rung: z.number().int().nonnegative(),
  epoch: z.number().int().positive(),
  sparsity: z.number().min(0).max(1),
  val_accuracy: z.number().min(0).max(1),
  ladder: z.array(PointSchema).max(MAX_CUTS).optional(),
}).strict();
/** One line of `rungs.jsonl`. */
export type RungLine = z.infer<typeof RungLineSchema>;

/** The board's point of a line. */
export const rungPointOf = (l: RungLine): RungPoint => ({
  trialId: l.trial_id,
  sparsity: l.sparsity,
  valAccuracy: l.val_accuracy,
  ...(l.ladder ? { ladder: l.ladder.map((p) => ({ sparsity: p.sparsity, valAccuracy: p.val_accuracy })) } : {}),
});

/**
 * The rung reports of a sweep (`runs/<sweep>/rungs.jsonl`, append-only, in the order the board judged them), so
 * that a resumed coordinator rebuilds the board and judges the next reports as the crashed one would have. A
 * line that is not a report of a planned trial (torn by a crash, not JSON, not the schema, an unknown trial) is
 * moved to `rungs.rejected.jsonl` with its line number and reason.
 */
export class RungLog {
  readonly path: string;
  readonly lines: RungLine[] = [];
  readonly setAside: BadLine[] = [];
  #writes: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string) {
    this.path = `${dir}/${RUNGS_FILE}`;
  }

  static async open(dir: string, planned: (id: string) => boolean): Promise<RungLog> {
    const log = new RungLog(dir);
    const text = await readLogText(log.path);
    const { items, good, setAside } = parseLogLines(
      text,
      RungLineSchema,
      "a rung report",
      (l) => planned(l.trial_id) ? undefined : `trial ${l.trial_id} is not in the plan`,
    );
    log.lines.push(...items);
    log.setAside.push(...setAside);
    if (good !== text) await setLinesAside(log.path, good, `${dir}/${RUNGS_REJECTED_FILE}`, log.setAside);
    return log;
  }

  /** Appends a line, after every line appended before it (not synced: a torn last line is set aside on resume). */
  append(line: RungLine): Promise<void> {
    this.lines.push(line);
    const text = JSON.stringify(line) + "\n";
    const mine = this.#writes.then(() => appendLine(this.path, text));
    this.#writes = mine.catch(() => {});
    return mine;
  }
}
