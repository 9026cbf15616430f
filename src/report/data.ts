import type { RecordedResult } from "../coordinator/record.ts";
import type { CutLadder, LayerSparsity, LossPoint } from "../train/result.ts";
import { nonDominated } from "../pareto/front.ts";
import { HypervolumeTracker } from "../pareto/hypervolume.ts";
import { describeParams, type ParamSet, PlannedTrial, type Trial, trialEpochs, trialGroup } from "../spec/expand.ts";
import { Plan, type TrialList } from "../spec/plan.ts";
import { type SweepSettings, sweepSettings } from "./settings.ts";
import { JsonRows } from "./json_rows.ts";

/** One row of the all-trials table. */
export interface TrialRow {
  trial_id: string;
  group: string;
  params: ParamSet;
  seed: number;
  label: string;
  /** `stopped`: stopped early at a rung (dominated there); its point is partial and enters no front. */
  status: "done" | "failed" | "stopped" | "pending";
  /** A stopped trial: the epochs it trained (fractional) of those planned. */
  stopped?: { epochs: number; planned_epochs: number };
  /** Test accuracy of the binary ticket. */
  accuracy?: number;
  /** Validation accuracy of the binary ticket; null (or absent) when the trial has no validation split. */
  val_accuracy?: number | null;
  /** The accuracy fronts, knees and tables choose on: validation, or test for runs without a validation split. */
  score?: number;
  /** A ticket of a trial's ladder: its cut value; absent for a trial's own ticket. */
  cut?: number;
  /** A ticket of a trial's ladder: its position (1 = first cut, sparsest last); absent for a trial's own ticket. */
  cut_index?: number;
  /** The trial's ticket ladder, when it has one (rows of the trials table only). */
  cuts?: CutLadder;
  soft_accuracy?: number | null;
  sparsity?: number;
  steps_per_s?: number;
  train_s?: number;
  backend?: string;
  worker?: string;
  error?: string;
  attempt?: number;
  layers?: LayerSparsity[];
  loss_curve?: LossPoint[];
  /** Undefined unless done; true when another trial of its group is at least as good in both objectives. */
  dominated?: boolean;
}

/** One worker that produced results, with its environment. */
export interface WorkerEnv {
  worker: string;
  host: string;
  backend: string;
  device: string;
  deno: string;
  trials: number;
}

/** Which accuracy the fronts choose tickets on. */
export type Selection = "validation" | "test";

/** The Pareto front of one group (a method, or a whole sweep); its points are tickets (a trial's own or a cut). */
export interface Front {
  group: string;
  points: TrialRow[];
}

/** One sweep's dense reference (method `dense`): the mean over its done dense trials. */
export interface DenseReference {
  /** The sweep it belongs to (its label in a comparison). */
  sweep: string;
  /** Mean selection accuracy (the fronts' axis) and mean test accuracy of its dense trials. */
  accuracy: number;
  test_accuracy: number;
  trials: number;
  /** The fronts of that sweep, the only ones it is a reference for. */
  groups: string[];
}

/**
 * A sweep's hypervolume against the compute it spent: after each recorded outcome (in recording order, the order
 * of results.jsonl), the trial-epochs used so far and the hypervolume of every ticket of the done trials so far
 * (own tickets and cuts, every method but the dense reference, on `selection` accuracy).
 */
export interface ComputeCurve {
  /** The sweep (its label in a comparison). */
  sweep: string;
  selection: Selection;
  /**
   * One step per recorded outcome: done trials count their planned epochs, stopped ones the epochs they
   * trained, failed ones nothing (their partial compute is not recorded).
   */
  steps: { trials: number; trial_epochs: number; hypervolume: number }[];
}

/** Everything a report shows, computed once; renderers only format it. */
export interface ReportData {
  sweep_id: string;
  name: string;
  objectives: ["sparsity", "accuracy"];
  trials: TrialRow[];
  /**
   * Every ticket of the done trials: each trial's own ticket (its row in `trials`) and one row per cut of its
   * ladder (the trial's row with the cut's sparsity, accuracies, layers and `cut`). The fronts are over these.
   */
  tickets: TrialRow[];
  /** `validation` when every done trial has a validation accuracy, else `test` (runs from before the split). */
  selection: Selection;
  /** One line saying which accuracy chooses the fronts and which one is shown beside it. */
  selection_note: string;
  fronts: Front[];
  /** `stopped`: stopped early (absent in reports written before early stopping). */
  counts: { total: number; done: number; failed: number; stopped?: number; pending: number };
  spec_text: string;
  masked_layers: string[];
  backends: string[];
  /**
   * The dense-trained reference (method `dense`) over its done trials, if any: `accuracy` is the mean of the
   * selection accuracy (the fronts' axis), `test_accuracy` the mean test accuracy. Null in a comparison of
   * several sweeps: each sweep's own reference is in `references`.
   */
  dense: { accuracy: number; test_accuracy: number; trials: number } | null;
  /** Hypervolume against compute, one curve per sweep (absent in report data built before it existed). */
  compute?: ComputeCurve[];
  /** The dense reference of each sweep that has one, each for its own sweep's fronts only. */
  references: DenseReference[];
  /** The settings of each sweep (one entry; several in a comparison, in the order given). */
  settings: SweepSettings[];
  workers: WorkerEnv[];
}

/**
 * Builds the report's data from the planned trials and the recorded results (in recording order). The results are
 * read once, one at a time, and only what a row shows is kept of each: a 100,000-trial sweep's results are not
 * all held parsed at once (pass a {@link ResultLog}'s `each()`).
 */
export function buildReportData(
  sweepId: string,
  name: string,
  trials: TrialList,
  results: Iterable<RecordedResult>,
  specText: string,
): ReportData {
  const table = new TrialTable(trials);
  // a plan finds a trial by its id without a map of every id (a list's later repeat of an id wins, as before)
  const listed = trials instanceof Plan ? undefined : new Map(trials.map((t, i) => [t.id, i]));
  const indexOf = (id: string): number | undefined => {
    if (listed) return listed.get(id);
    const i = (trials as Plan).indexOf(id);
    return i < 0 ? undefined : i;
  };
  // the compute curve on both accuracies: which one the fronts use is known once every result is read
  const curve = { validation: new ComputeCurveBuilder("validation"), test: new ComputeCurveBuilder("test") };
  let masked: string[] | undefined;
  const backends = new Set<string>();
  const workers = new WorkerEnvs();
  for (const r of results) {
    const i = indexOf(r.trial_id);
    const t = i === undefined ? undefined : trials.at(i);
    curve.validation.add(t, r);
    curve.test.add(t, r);
    workers.add(r);
    const m = r.metrics;
    if (m) {
      masked ??= m.masked_layers;
      backends.add(`${m.backend} (${m.device})`);
    }
    // a later outcome of a trial replaces an earlier one, as a map of the results did
    if (i !== undefined) table.record(i, r);
  }
  listed?.clear();
  const rows: TrialRow[] = Array.from({ length: trials.length }, (_, i) => new TableRow(table, i));
  const selection = selectionOf(rows);
  const tickets = ticketRows(rows, selection);
  const fronts = computeFronts(tickets);
  const dense = denseReference(rows);
  return {
    sweep_id: sweepId,
    name,
    objectives: ["sparsity", "accuracy"],
    trials: rows,
    tickets,
    selection,
    selection_note: selectionNote(selection),
    fronts,
    counts: countsOf(rows),
    compute: [curve[selection].curve(name)],
    spec_text: specText,
    masked_layers: masked ?? [],
    backends: [...backends],
    dense,
    references: dense ? [{ sweep: name, ...dense, groups: fronts.map((f) => f.group) }] : [],
    settings: [sweepSettings(name, sweepId, trials, settingsConfigOf())],
    workers: workers.list(),
  };
}

const STATUSES = ["pending", "done", "failed", "stopped"] as const;
/** Flags of a row in {@link TrialTable}: it has metrics; its validation or soft-gate accuracy is null; undefined. */
const METRICS = 1, VAL_NULL = 2, SOFT_NULL = 4, SOFT_MISSING = 8;

/**
 * The rows of a report as columns: one number per trial and field in typed arrays, repeated strings (group, worker,
 * engine) as indices into one table, and what few trials have (errors, ladders, early stops, layers, loss curves)
 * in sparse maps; a 100,000-trial sweep's rows are ~12 MB, not one object of ~370 bytes per trial. A number column
 * holds NaN where the row has no value (JSON has no NaN).
 */
class TrialTable {
  /** A plan's trials are made when a row reads one, not kept. */
  readonly trials: TrialList;
  readonly status: Uint8Array;
  readonly flags: Uint8Array;
  /** 0: not set; 1: false; 2: true. */
  readonly dominated: Uint8Array;
  readonly group: Uint32Array;
  readonly worker: Uint32Array;
  readonly backend: Uint32Array;
  readonly attempt: Float64Array;
  readonly accuracy: Float64Array;
  readonly val: Float64Array;
  readonly soft: Float64Array;
  readonly sparsity: Float64Array;
  readonly speed: Float64Array;
  readonly trainS: Float64Array;
  readonly score: Float64Array;
  readonly error = new Map<number, string>();
  readonly cuts = new Map<number, CutLadder>();
  readonly stopped = new Map<number, { epochs: number; planned_epochs: number }>();
  readonly layers = new Map<number, LayerSparsity[]>();
  readonly loss = new Map<number, LossPoint[]>();
  /** The strings that `group`, `worker` and `backend` index (0: none). */
  readonly strings: (string | undefined)[] = [undefined];
  readonly #stringIndex = new Map<string, number>();

  constructor(trials: TrialList) {
    const n = trials.length;
    this.trials = trials;
    this.status = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.dominated = new Uint8Array(n);
    this.group = new Uint32Array(n);
    this.worker = new Uint32Array(n);
    this.backend = new Uint32Array(n);
    const nums = () => new Float64Array(n).fill(NaN);
    this.attempt = nums();
    this.accuracy = nums();
    this.val = nums();
    this.soft = nums();
    this.sparsity = nums();
    this.speed = nums();
    this.trainS = nums();
    this.score = nums();
    for (let i = 0; i < n; i++) {
      this.group[i] = this.intern(trials instanceof Plan ? trials.groupAt(i) : trialGroup(trials[i]!));
    }
  }

  intern(s: string | undefined): number {
    if (s === undefined) return 0;
    let i = this.#stringIndex.get(s);
    if (i === undefined) this.#stringIndex.set(s, i = this.strings.push(s) - 1);
    return i;
  }

  /** Row `i` from its recorded outcome (a later one replaces an earlier). */
  record(i: number, r: RecordedResult): void {
    const m = r.metrics;
    this.status[i] = STATUSES.indexOf(r.status);
    this.attempt[i] = r.attempt ?? NaN;
    this.worker[i] = this.intern(`${r.worker.host}/${r.worker.id}`);
    for (const map of [this.error, this.cuts, this.stopped, this.layers, this.loss]) map.delete(i);
    if (r.error !== undefined) this.error.set(i, r.error);
    if (!m) {
      this.flags[i] = 0;
      this.backend[i] = 0;
      for (const c of [this.accuracy, this.val, this.soft, this.sparsity, this.speed, this.trainS]) c[i] = NaN;
      return;
    }
    this.flags[i] = METRICS | ((m.val_accuracy ?? null) === null ? VAL_NULL : 0) |
      (m.soft_accuracy === null ? SOFT_NULL : m.soft_accuracy === undefined ? SOFT_MISSING : 0);
    this.accuracy[i] = m.accuracy ?? NaN;
    this.val[i] = m.val_accuracy ?? NaN;
    this.soft[i] = m.soft_accuracy ?? NaN;
    this.sparsity[i] = m.sparsity ?? NaN;
    this.speed[i] = m.steps_per_s ?? NaN;
    this.trainS[i] = m.train_s ?? NaN;
    this.backend[i] = this.intern(m.backend);
    if (m.layers.length) this.layers.set(i, m.layers);
    if (m.loss_curve.length) this.loss.set(i, m.loss_curve);
    if (m.cuts) this.cuts.set(i, m.cuts);
    if (m.stopped) this.stopped.set(i, { epochs: m.stopped.epochs, planned_epochs: m.stopped.planned_epochs });
  }
}

/** A number column's value: undefined where it has none (NaN). */
const num = (v: number) => (Number.isNaN(v) ? undefined : v);

/** The empty list every row with metrics but no layers or loss curve shares (frozen: a row's list is never changed). */
const NONE: never[] = Object.freeze([]) as unknown as never[];

/**
 * One row of a {@link TrialTable}: its fields read from the columns when asked for (the label made each time), so it
 * holds only the table and its index. `score` and `dominated` are written back to the table.
 */
class TableRow implements TrialRow {
  readonly #t: TrialTable;
  readonly #i: number;

  constructor(t: TrialTable, i: number) {
    this.#t = t;
    this.#i = i;
  }
  get #has(): boolean {
    return (this.#t.flags[this.#i]! & METRICS) !== 0;
  }
  get trial_id(): string {
    const t = this.#t.trials;
    return t instanceof Plan ? t.idAt(this.#i) : t[this.#i]!.id;
  }
  get group(): string {
    return this.#t.strings[this.#t.group[this.#i]!]!;
  }
  get params(): ParamSet {
    const t = this.#t.trials;
    return t instanceof Plan ? t.paramsAt(this.#i) : t[this.#i]!.params;
  }
  get seed(): number {
    const t = this.#t.trials;
    return t instanceof Plan ? t.seedAt(this.#i) : t[this.#i]!.seed;
  }
  get label(): string {
    return describeParams(this.params, this.seed);
  }
  get status(): TrialRow["status"] {
    return STATUSES[this.#t.status[this.#i]!]!;
  }
  get stopped(): TrialRow["stopped"] {
    return this.#t.stopped.get(this.#i);
  }
  get accuracy(): number | undefined {
    return num(this.#t.accuracy[this.#i]!);
  }
  get val_accuracy(): number | null | undefined {
    if (!this.#has) return undefined;
    return this.#t.flags[this.#i]! & VAL_NULL ? null : this.#t.val[this.#i]!;
  }
  get score(): number | undefined {
    return num(this.#t.score[this.#i]!);
  }
  set score(v: number | undefined) {
    this.#t.score[this.#i] = v ?? NaN;
  }
  get cut(): undefined {
    return undefined;
  }
  get cut_index(): undefined {
    return undefined;
  }
  get cuts(): CutLadder | undefined {
    return this.#t.cuts.get(this.#i);
  }
  get soft_accuracy(): number | null | undefined {
    const f = this.#t.flags[this.#i]!;
    return !(f & METRICS) || f & SOFT_MISSING ? undefined : f & SOFT_NULL ? null : this.#t.soft[this.#i]!;
  }
  get sparsity(): number | undefined {
    return num(this.#t.sparsity[this.#i]!);
  }
  get steps_per_s(): number | undefined {
    return num(this.#t.speed[this.#i]!);
  }
  get train_s(): number | undefined {
    return num(this.#t.trainS[this.#i]!);
  }
  get backend(): string | undefined {
    return this.#t.strings[this.#t.backend[this.#i]!];
  }
  get worker(): string | undefined {
    return this.#t.strings[this.#t.worker[this.#i]!];
  }
  get error(): string | undefined {
    return this.#t.error.get(this.#i);
  }
  get attempt(): number | undefined {
    return num(this.#t.attempt[this.#i]!);
  }
  get layers(): LayerSparsity[] | undefined {
    return this.#has ? this.#t.layers.get(this.#i) ?? NONE : undefined;
  }
  get loss_curve(): LossPoint[] | undefined {
    return this.#has ? this.#t.loss.get(this.#i) ?? NONE : undefined;
  }
  get dominated(): boolean | undefined {
    const v = this.#t.dominated[this.#i]!;
    return v === 0 ? undefined : v === 2;
  }
  set dominated(v: boolean | undefined) {
    this.#t.dominated[this.#i] = v === undefined ? 0 : v ? 2 : 1;
  }
}

/** The fields of a row as a plain object (a row of a {@link TrialTable} reads them from its columns). */
export function plainRow(r: TrialRow): TrialRow {
  const out: Record<string, unknown> = {};
  for (const k of ROW_FIELDS) {
    const v = r[k];
    if (v !== undefined) out[k] = v;
  }
  return out as unknown as TrialRow;
}

const ROW_FIELDS: (keyof TrialRow)[] = [
  "trial_id",
  "group",
  "params",
  "seed",
  "label",
  "status",
  "attempt",
  "worker",
  "accuracy",
  "val_accuracy",
  "soft_accuracy",
  "sparsity",
  "steps_per_s",
  "train_s",
  "backend",
  "layers",
  "loss_curve",
  "cuts",
  "stopped",
  "error",
  "score",
  "cut",
  "cut_index",
  "dominated",
];

/**
 * The configuration of each trial as {@link sweepSettings} reads it, without resolving 100,000 configurations (nor
 * making an object per trial): a planned trial's configuration differs from its method's first trial's only in its
 * swept parameters, which the settings take from `params`, so each planned trial reads as its method's first
 * configuration (one object per method).
 */
function settingsConfigOf(): (t: Trial) => Trial["config"] {
  const first = new Map<string, Trial["config"]>();
  return (t) => {
    if (!(t instanceof PlannedTrial)) return t.config;
    let config = first.get(t.group);
    if (!config) first.set(t.group, config = t.config);
    return config;
  };
}

/** Validation when every done trial has a validation accuracy (and at least one is done), else test. */
export function selectionOf(rows: TrialRow[]): Selection {
  const done = rows.filter((r) => r.status === "done");
  return done.length > 0 && done.every((r) => typeof r.val_accuracy === "number") ? "validation" : "test";
}

/** The report's line on which accuracy chooses the tickets. */
export function selectionNote(s: Selection): string {
  return s === "validation"
    ? "Fronts, knees and the accuracy tables choose tickets on validation accuracy (held out of the training " +
      "split); the test accuracy of each chosen ticket is shown beside it."
    : "Fronts, knees and the accuracy tables use test accuracy: this run has no validation split (its trials were " +
      "recorded before ticketsweep held one out, or with dataset.validation: 0), so the choice is made on the test set.";
}

/**
 * Every ticket of the done rows: each trial's own ticket (the row itself) then one row per cut of its ladder;
 * sets `score` (the selection accuracy) on each.
 */
export function ticketRows(rows: TrialRow[], selection: Selection): TrialRow[] {
  const score = (acc: number, val: number | null | undefined) => selection === "validation" ? val! : acc;
  const out: TrialRow[] = [];
  for (const r of rows) {
    if (r.status !== "done") continue;
    r.score = score(r.accuracy!, r.val_accuracy);
    out.push(r);
    for (const [i, p] of (r.cuts?.points ?? []).entries()) {
      out.push({
        ...plainRow(r),
        cut: p.cut,
        cut_index: i + 1,
        sparsity: p.sparsity,
        accuracy: p.accuracy,
        val_accuracy: p.val_accuracy,
        soft_accuracy: null,
        score: score(p.accuracy, p.val_accuracy),
        label: `${r.label} cut=${fmtCut(p.cut)}`,
        cuts: undefined,
        layers: r.layers?.map((l, i) => {
          const kept = p.kept[i] ?? l.kept;
          return { ...l, kept, sparsity: 1 - kept / l.total };
        }),
      });
    }
  }
  return out;
}

/** A cut value as shown in labels: 4 significant digits. */
export function fmtCut(c: number): string {
  return String(Number(c.toPrecision(4)));
}

/** The id of a ticket: its trial id, with `@cut` for a cut of its ladder. */
export function ticketId(r: TrialRow): string {
  return r.cut === undefined ? r.trial_id : `${r.trial_id}@${fmtCut(r.cut)}`;
}

/**
 * The front of each group over its tickets (sparsity × `score`, the selection accuracy), marking every ticket
 * dominated or not. The dense reference removes nothing: it is a reference line, not a front.
 */
export function computeFronts(tickets: TrialRow[]): Front[] {
  const groups = [...new Set(tickets.map((r) => r.group))].filter((g) => !isDenseGroup(g));
  return groups.map((group) => {
    const done = tickets.filter((r) => r.group === group && r.status === "done");
    const nd = nonDominated(done.map((r) => ({ x: r.sparsity!, y: r.score! })));
    done.forEach((r, i) => (r.dominated = !nd[i]));
    const points = done.filter((_, i) => nd[i]).sort((a, b) => a.sparsity! - b.sparsity! || b.score! - a.score!);
    return { group, points };
  });
}

/** The sweep's {@link ComputeCurve} from its results in recording order. */
export function computeCurve(
  sweep: string,
  trials: Trial[],
  resultsInOrder: Iterable<RecordedResult>,
  selection: Selection,
): ComputeCurve {
  const byId = new Map(trials.map((t) => [t.id, t]));
  const b = new ComputeCurveBuilder(selection);
  for (const r of resultsInOrder) b.add(byId.get(r.trial_id), r);
  return b.curve(sweep);
}

/** A {@link ComputeCurve} built one recorded outcome at a time. */
class ComputeCurveBuilder {
  readonly #selection: Selection;
  readonly #hv = new HypervolumeTracker();
  /** Each step's trial-epochs and hypervolume, as numbers (the steps are made once, by `curve`). */
  readonly #epochsAt: number[] = [];
  readonly #hvAt: number[] = [];
  #epochs = 0;

  constructor(selection: Selection) {
    this.#selection = selection;
  }

  /** The next outcome in recording order; one of a trial not in the plan (`t` undefined) is skipped. */
  add(t: Trial | undefined, r: RecordedResult): void {
    const m = r.metrics;
    if (!t) return;
    if (r.status === "stopped" && m?.stopped) this.#epochs += m.stopped.epochs;
    else if (r.status === "done" && m) {
      this.#epochs += trialEpochs(t);
      if (!isDenseGroup(trialGroup(t))) {
        const y = (acc: number, val: number | null | undefined) =>
          this.#selection === "validation" ? (val ?? acc) : acc;
        this.#hv.add({ x: m.sparsity, y: y(m.accuracy, m.val_accuracy) });
        for (const c of m.cuts?.points ?? []) this.#hv.add({ x: c.sparsity, y: y(c.accuracy, c.val_accuracy) });
      }
    }
    this.#epochsAt.push(this.#epochs);
    this.#hvAt.push(this.#hv.value);
  }

  curve(sweep: string): ComputeCurve {
    const hv = this.#hvAt;
    const steps = this.#epochsAt.map((trial_epochs, i) => ({ trials: i + 1, trial_epochs, hypervolume: hv[i]! }));
    return { sweep, selection: this.#selection, steps };
  }
}

function countsOf(rows: TrialRow[]): ReportData["counts"] {
  const n = (status: TrialRow["status"]) => rows.filter((r) => r.status === status).length;
  return { total: rows.length, done: n("done"), failed: n("failed"), stopped: n("stopped"), pending: n("pending") };
}

/** A group of dense reference trials (`dense`, or `<sweep>: dense` in a comparison). */
export function isDenseGroup(group: string): boolean {
  return group === "dense" || group.endsWith(": dense");
}

function denseReference(rows: TrialRow[]): ReportData["dense"] {
  const done = rows.filter((r) => isDenseGroup(r.group) && r.status === "done");
  const mean = (f: (r: TrialRow) => number) => done.reduce((s, r) => s + f(r), 0) / done.length;
  return done.length
    ? { accuracy: mean((r) => r.score ?? r.accuracy!), test_accuracy: mean((r) => r.accuracy!), trials: done.length }
    : null;
}

/** The workers that produced results, counted one result at a time. */
class WorkerEnvs {
  readonly #by = new Map<string, WorkerEnv>();

  add(r: RecordedResult): void {
    const key = `${r.worker.host}/${r.worker.id}`;
    const e = this.#by.get(key) ??
      {
        worker: r.worker.id,
        host: r.worker.host,
        backend: r.worker.backend,
        device: r.worker.device,
        deno: r.worker.deno,
        trials: 0,
      };
    e.trials++;
    this.#by.set(key, e);
  }

  list(): WorkerEnv[] {
    return [...this.#by.values()].sort((a, b) => a.host.localeCompare(b.host) || a.worker.localeCompare(b.worker));
  }
}

/** The dense reference of a front's sweep, or null when its sweep has none. */
export function referenceOf(d: Pick<ReportData, "references">, group: string): DenseReference | null {
  return d.references.find((r) => r.groups.includes(group)) ?? null;
}

/** Each sweep's label in a comparison: its name, its id where names repeat, numbered where both do. */
export function sweepLabels(list: readonly { name: string; sweep_id: string }[]): string[] {
  const unique = (v: string[]) => new Set(v).size === v.length;
  const names = list.map((d) => d.name);
  if (unique(names)) return names;
  const ids = list.map((d) => d.sweep_id);
  return unique(ids) ? ids : ids.map((id, i) => `${id} #${i + 1}`);
}

/**
 * Several sweeps' report data as one: groups become `<sweep>: <method>` (the sweep's name, or its id where two
 * share a name), so each method of each sweep has its own front and the comparison covers them all. Each
 * sweep keeps its own dense reference (`references`); no single one is applied to all (`dense` is null).
 */
export function combineReports(list: ReportData[]): ReportData {
  if (list.length === 1) return list[0]!;
  const labels = sweepLabels(list);
  const rows = list.flatMap((d, i) => d.trials.map((r) => ({ ...plainRow(r), group: `${labels[i]}: ${r.group}` })));
  const selection = selectionOf(rows);
  const tickets = ticketRows(rows, selection);
  const fronts = computeFronts(tickets);
  return {
    sweep_id: list.map((d) => d.sweep_id).join("+"),
    name: list.map((d) => d.name).join(" vs "),
    objectives: ["sparsity", "accuracy"],
    trials: rows,
    tickets,
    selection,
    selection_note: selectionNote(selection),
    fronts,
    counts: countsOf(rows),
    compute: list.flatMap((d, i) => (d.compute ?? []).map((c) => ({ ...c, sweep: labels[i]! }))),
    spec_text: list.map((d) => `# ${d.name} (${d.sweep_id})\n${d.spec_text.trimEnd()}`).join("\n\n"),
    masked_layers: [...new Set(list.flatMap((d) => d.masked_layers))],
    backends: [...new Set(list.flatMap((d) => d.backends))],
    dense: null,
    references: list.flatMap((d, i) =>
      d.dense
        ? [{
          sweep: labels[i]!,
          ...d.dense,
          groups: fronts.map((f) => f.group).filter((g) => g.startsWith(`${labels[i]}: `)),
        }]
        : []
    ),
    settings: list.flatMap((d, i) => d.settings.map((s) => ({ ...s, sweep: labels[i]! }))),
    workers: list.flatMap((d) => d.workers),
  };
}

/** The `pareto.json` document: fronts per group and every done trial marked dominated or not. */
export function paretoJson(d: ReportData): unknown {
  const point = (r: TrialRow) => ({
    trial_id: r.trial_id,
    ...(r.cut !== undefined ? { cut: r.cut } : {}),
    sparsity: r.sparsity,
    accuracy: r.accuracy,
    val_accuracy: r.val_accuracy ?? null,
    params: r.params,
    seed: r.seed,
  });
  return {
    sweep_id: d.sweep_id,
    objectives: [{ name: "sparsity", goal: "maximize" }, { name: "accuracy", goal: "maximize" }],
    selection: d.selection,
    selection_note: d.selection_note,
    counts: d.counts,
    ...(d.compute ? { compute: d.compute } : {}),
    fronts: d.fronts.map((f) => ({
      group: f.group,
      points: new JsonRows(function* () {
        for (const r of f.points) yield point(r);
      }),
    })),
    dense_reference: d.dense,
    dense_references: d.references,
    // made one at a time as they are written (writeJson): a 100,000-trial sweep's would be ~200,000 objects at once
    tickets: new JsonRows(function* () {
      for (const r of d.tickets) yield { ...point(r), group: r.group, dominated: r.dominated };
    }),
    trials: new JsonRows(function* () {
      for (const r of d.trials) if (r.status === "done") yield { ...point(r), group: r.group, dominated: r.dominated };
    }),
  };
}
