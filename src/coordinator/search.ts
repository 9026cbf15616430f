// Adaptive search (`search.strategy: adaptive`): proposes each new point of the parameter space from the results
// recorded so far, aiming at the largest expected improvement of the validation front (a surrogate of each trial's
// ladder), or else at its largest gap. Every function here is pure given its
// inputs (the spec, the recorded results, the proposals made so far), so a resumed coordinator that rebuilds
// them from results.jsonl and proposals.jsonl proposes what the crashed one would have proposed.
import { z } from "zod";
import type { RecordedResult } from "./record.ts";
import { appendLine, parseLogLines, readLogText, ResultLog, setLinesAside } from "./record.ts";
import { canonicalJson } from "../util/hash.ts";
import { Rng, RNG_STREAMS } from "../util/rng.ts";
import { nonDominated, type Point2 } from "../pareto/front.ts";
import { hypervolume } from "../pareto/hypervolume.ts";
import {
  keysFor,
  type ParamSet,
  type ParamValue,
  resolveTrialConfig,
  roundSig,
  sweepMethods,
  type Trial,
  trialIdOf,
} from "../spec/expand.ts";
import { ADAPTIVE_DEFAULTS, limitsOf, type Parameter, type SweepSpec, TrialConfigSchema } from "../spec/schema.ts";

/** The file of an adaptive sweep's proposals in its run directory: one JSON line per proposed point. */
export const PROPOSALS_FILE = "proposals.jsonl";
/** Where lines of `proposals.jsonl` that are not a valid proposal go. */
export const PROPOSALS_REJECTED_FILE = "proposals.rejected.jsonl";

/** Parameters that are integers in a trial's configuration. */
const INTEGER_PARAMS = new Set(["epochs", "batch_size", "rounds"]);

/** One proposed point: its trials (one per seed of the spec), why it was proposed, and from what. */
export interface Proposal {
  v: 1;
  /** 0-based index of the proposal. */
  n: number;
  /** How many results were recorded (the first `basis` lines of results.jsonl) when it was proposed. */
  basis: number;
  /**
   * `initial` (the space-filling design), `model` (the largest expected improvement of the validation front under the
   * surrogate), `gap` (a gap of the validation front), `random` (nothing else left).
   */
  kind: "initial" | "model" | "gap" | "random";
  /** The sparsity the proposal aims its own ticket at (gap proposals), else null. */
  target: number | null;
  /** A readable reason, e.g. `gap 0.812-0.905 (area 0.0031)`. */
  reason: string;
  trials: Trial[];
}

const TrialSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/),
  sweepId: z.string(),
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  seed: z.number().int(),
  config: TrialConfigSchema,
}).strict();

const ProposalSchema = z.object({
  v: z.literal(1),
  n: z.number().int().nonnegative(),
  basis: z.number().int().nonnegative(),
  kind: z.enum(["initial", "model", "gap", "random"]),
  target: z.number().min(0).max(1).nullable(),
  reason: z.string().max(1000),
  trials: z.array(TrialSchema).min(1),
}).strict();

/** One swept dimension of the adaptive search. */
interface Dim {
  name: string;
  p: Parameter;
  /** log10 for log ranges; values lists are indexed. */
  kind: "log" | "linear" | "values";
  integer: boolean;
}

/** The parameter that moves sparsity monotonically: `lambda` (or edge-popup's `k`), when it is swept. */
export function sparsityAxis(spec: SweepSpec): string | undefined {
  const keys = keysFor(spec, sweepMethods(spec)[0]!);
  return keys.has("lambda") ? "lambda" : keys.has("k") ? "k" : undefined;
}

function dimsOf(spec: SweepSpec): Dim[] {
  const dims: Dim[] = [];
  for (const [name, key] of keysFor(spec, sweepMethods(spec)[0]!)) {
    const p = spec.parameters[key]!;
    dims.push({
      name,
      p,
      kind: p.values ? "values" : p.scale === "log" ? "log" : "linear",
      integer: INTEGER_PARAMS.has(name),
    });
  }
  return dims;
}

/** A dimension's value from a position u in [0, 1] of its range (a values list: its ⌊u·n⌋-th value). */
function fromUnit(d: Dim, u: number): ParamValue {
  u = Math.min(1, Math.max(0, u));
  if (d.kind === "values") return d.p.values![Math.min(d.p.values!.length - 1, Math.floor(u * d.p.values!.length))]!;
  const { min, max } = d.p as { min: number; max: number };
  const x = d.kind === "log"
    ? 10 ** (Math.log10(min) + u * (Math.log10(max) - Math.log10(min)))
    : min + u * (max - min);
  return d.integer ? Math.round(x) : roundSig(x);
}

/** The position in [0, 1] of a value in its dimension's range (log ranges in log10). */
function toUnit(d: Dim, v: ParamValue): number {
  if (d.kind === "values") {
    const i = d.p.values!.findIndex((x) => x === v);
    return (Math.max(0, i) + 0.5) / d.p.values!.length;
  }
  const { min, max } = d.p as { min: number; max: number };
  if (max === min) return 0.5;
  const x = Number(v);
  return d.kind === "log"
    ? (Math.log10(x) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))
    : (x - min) / (max - min);
}

/**
 * The space-filling initial design: a Latin hypercube of `search.initial` points (each dimension's range cut
 * into that many strata, one point in each, the strata of the dimensions paired by seeded permutations), except
 * that the sparsity parameter's points are spaced evenly from end to end of its range, both ends included.
 */
export function initialDesign(spec: SweepSpec): ParamSet[] {
  const n = designSize(spec);
  const rng = new Rng(spec.search.seed, RNG_STREAMS.initialDesign);
  const sets: ParamSet[] = Array.from({ length: n }, () => ({}));
  const axis = sparsityAxis(spec);
  for (const d of dimsOf(spec)) {
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    for (let i = 0; i < n; i++) {
      // the sparsity parameter's strata run from end to end of its range: the front's two ends are tried first
      const u = d.name === axis && n > 1 && d.kind !== "values" ? perm[i]! / (n - 1) : (perm[i]! + rng.uniform()) / n;
      sets[i]![d.name] = fromUnit(d, u);
    }
  }
  return sets;
}

/** The points of the initial design: `search.initial` (default 4), at most what the budget pays for. */
export function designSize(spec: SweepSpec): number {
  return Math.min(spec.search.initial ?? ADAPTIVE_DEFAULTS.initial, pointBudget(spec));
}

/**
 * The most trials the search may propose: `budget`, or with `budget_epochs` N a cap of min(N, limits.max_trials)
 * (the trial-epochs committed stop it first unless trials are stopped within their first epoch).
 */
export function trialBudget(spec: SweepSpec): number {
  const { budget, budget_epochs: epochs } = spec.search;
  return budget ?? Math.min(epochs ?? 0, limitsOf(spec).max_trials);
}

/** How many points the budget pays for (each point runs once per seed). */
export function pointBudget(spec: SweepSpec): number {
  return Math.floor(trialBudget(spec) / spec.seeds.length);
}

/**
 * The trial-epochs committed (what `search.budget_epochs` counts): every proposed trial's planned epochs, except
 * a stopped trial's, which counts the epochs it trained (`metrics.stopped.epochs`). Done and failed trials count
 * their planned epochs, so do in-flight trials (proposed, no outcome yet).
 */
export function committedEpochs(recorded: readonly RecordedResult[], proposals: readonly Proposal[]): number {
  const outcome = new Map(recorded.map((r) => [r.trial_id, r]));
  let sum = 0;
  for (const t of proposals.flatMap((p) => p.trials)) {
    const r = outcome.get(t.id);
    sum += r?.status === "stopped" && r.metrics?.stopped ? r.metrics.stopped.epochs : t.config.training.epochs;
  }
  return sum;
}

/** A ticket point of the validation front, with the trial it came from. */
interface TicketPoint extends Point2 {
  trial: string;
  /** The trial's own ticket (not a cut of its ladder). */
  own: boolean;
}

/** The (sparsity, validation accuracy) of every ticket of a done result: its own and every cut. */
function ticketPoints(r: RecordedResult): TicketPoint[] {
  const m = r.metrics;
  if (r.status !== "done" || !m) return [];
  const acc = (val: number | null | undefined, test: number) => val ?? test;
  const out = [{ x: m.sparsity, y: acc(m.val_accuracy, m.accuracy), trial: r.trial_id, own: true }];
  for (const c of m.cuts?.points ?? []) {
    out.push({ x: c.sparsity, y: acc(c.val_accuracy, c.accuracy), trial: r.trial_id, own: false });
  }
  return out;
}

/** The non-dominated points, sorted by sparsity, one per sparsity. */
function frontOf(points: readonly TicketPoint[]): TicketPoint[] {
  const nd = nonDominated(points);
  const f = points.filter((_, i) => nd[i]).sort((a, b) => a.x - b.x || b.y - a.y || (a.trial < b.trial ? -1 : 1));
  return f.filter((p, i) => i === 0 || p.x !== f[i - 1]!.x);
}

/** The validation hypervolume of recorded results (every ticket, cuts included). */
export function validationHypervolume(results: readonly RecordedResult[]): number {
  return hypervolume(results.flatMap(ticketPoints));
}

/** Where the search stands: trials proposed, why it stops proposing (null: it goes on), the hypervolume. */
export interface SearchProgress {
  proposedTrials: number;
  /** The trial-epochs committed ({@link committedEpochs}); 0 without `search.budget_epochs`. */
  committedEpochs: number;
  stop: "budget" | "patience" | null;
  hypervolume: number;
  /** Recorded trials since the hypervolume last improved. */
  sinceImprovement: number;
}

/**
 * Where the search stands, from the recorded results in the order they were recorded (results.jsonl order, so
 * a resume reads the same) and the proposals made. It stops proposing when the budget cannot pay for another
 * point (with `budget_epochs`: when the committed trial-epochs, {@link committedEpochs}, reach it), or when the validation hypervolume has not improved (by more than 1e-6) over the last `patience`
 * recorded trials, once at least the initial design's trials are recorded.
 */
export function searchProgress(
  spec: SweepSpec,
  recordedInOrder: readonly RecordedResult[],
  proposals: readonly Proposal[],
): SearchProgress {
  const proposedTrials = proposals.reduce((n, p) => n + p.trials.length, 0);
  let front: TicketPoint[] = [];
  let best = 0, since = 0;
  for (const r of recordedInOrder) {
    const pts = ticketPoints(r);
    if (pts.length) front = frontOf([...front, ...pts]);
    const hv = hypervolume(front);
    if (hv > best + 1e-6) {
      best = hv;
      since = 0;
    } else since++;
  }
  const patience = spec.search.patience;
  // patience starts counting once the initial design is recorded: its points explore, they are not expected to improve
  const designed = designSize(spec) * spec.seeds.length;
  const epochBudget = spec.search.budget_epochs;
  const committed = epochBudget === undefined ? 0 : committedEpochs(recordedInOrder, proposals);
  const stop = proposedTrials + spec.seeds.length > trialBudget(spec) ||
      (epochBudget !== undefined && committed >= epochBudget)
    ? "budget"
    : patience !== undefined && recordedInOrder.length >= designed && since >= patience
    ? "patience"
    : null;
  return { proposedTrials, committedEpochs: committed, stop, hypervolume: best, sinceImprovement: since };
}

/** A gap of the front: between two points (the upper one may be virtual: a pending proposal, or (1, 0)). */
interface Gap {
  a: TicketPoint | Point2;
  b: TicketPoint | Point2;
  area: number;
}

/**
 * The next point to propose, or null when no new point can be found. A pure function of the spec, the
 * recorded results (in any order: they are sorted by trial id) and the proposals so far (in order):
 *
 * 1. the initial design ({@link initialDesign}), point by point;
 * 2. then, once two trials are done or stopped, the point with the largest expected improvement of the validation
 *    front under a surrogate of each trial's whole ladder ({@link modelProposal});
 * 3. when the surrogate cannot be fitted, expects no improvement or repeats an earlier point (and with `rule`
 *    `gap`, always): the largest gap of the validation front (every ticket of every done trial, cuts included), a gap's
 *    size being the area of the rectangle between its two points (the hypervolume a point there could add; a
 *    front whose sparsest ticket is a trial's own, not a cut, also has the gap from it to (1, 0)). A pending
 *    proposal splits the gap it aims at, on the chord, so proposals in flight spread over different gaps. Every
 *    parameter but the sparsity parameter (lambda, or k) takes the value of the better neighbour (the gap's end
 *    trial with the larger exclusive hypervolume) perturbed by a seeded normal step of a tenth of its range (in log
 *    space for a log range; a values list keeps the value with probability 3/4, else draws one). The sparsity
 *    parameter is then solved for the gap's middle at those values ({@link solveAxis}: a plane of logit(own
 *    sparsity) over the parameters, once there are enough done trials); before that, or when the plane does not
 *    move with it, it is interpolated, in log space for a log range, between the done trials whose own tickets'
 *    sparsities bracket the gap's middle (outside them: a least-squares line through all of them, at most a
 *    seventh of the range beyond the outermost trial);
 * 4. a proposal that repeats an earlier point goes to the next gap, then to seeded random points.
 *
 * The generator is seeded by (search.seed, proposal index), so the draws do not depend on earlier ones.
 */
export function proposeNext(
  spec: SweepSpec,
  sweepId: string,
  results: readonly RecordedResult[],
  proposals: readonly Proposal[],
  rule: "model" | "gap" = "model",
): Omit<Proposal, "basis"> | null {
  const n = proposals.length;
  if (n >= pointBudget(spec)) return null;
  const dims = dimsOf(spec);
  const taken = new Set(proposals.flatMap((p) => p.trials.map((t) => t.id)));
  const make = (params: ParamSet, kind: Proposal["kind"], target: number | null, reason: string) => {
    const trials = spec.seeds.map((seed) => ({
      id: trialIdOf(sweepId, params, seed),
      sweepId,
      params,
      seed,
      config: resolveTrialConfig(spec, params, seed),
    }));
    if (trials.some((t) => taken.has(t.id))) return null; // the same point again: ids are hashes of it
    return { v: 1 as const, n, kind, target, reason, trials };
  };
  for (const [i, params] of initialDesign(spec).entries()) {
    const p = make(params, "initial", null, `initial design point ${i + 1}`);
    if (p) return p;
  }
  const rng = new Rng(spec.search.seed, RNG_STREAMS.proposal + n);
  const done = results.filter((r) => r.status === "done" && r.metrics).sort((a, b) =>
    a.trial_id < b.trial_id ? -1 : a.trial_id > b.trial_id ? 1 : 0
  );
  const paramsOf = new Map(proposals.flatMap((p) => p.trials.map((t) => [t.id, t.params] as const)));
  const known = done.filter((r) => paramsOf.has(r.trial_id));
  const modelled = rule === "model" ? modelProposal(dims, results, proposals, paramsOf, rng) : undefined;
  if (modelled) {
    const p = make(
      modelled.params,
      "model",
      null,
      `expected improvement ${
        modelled.gain.toPrecision(3)
      } of the validation front (surrogate of ${modelled.fitted} trials)`,
    );
    if (p) return p;
  }
  if (known.length > 0) {
    const points = known.flatMap(ticketPoints);
    const front = frontOf(points);
    const recorded = new Set(results.map((r) => r.trial_id));
    const pending = proposals
      .filter((p) => p.target !== null && p.trials.some((t) => !recorded.has(t.id)))
      .map((p) => p.target!)
      .sort((a, b) => a - b);
    const gaps = gapsOf(front, pending);
    const axis = sparsityAxis(spec);
    for (const g of gaps.slice(0, 16)) {
      const target = (g.a.x + g.b.x) / 2;
      const neighbour = betterNeighbour(g, points);
      const base = paramsOf.get(neighbour) ?? {};
      for (let attempt = 0; attempt < 3; attempt++) {
        const params: ParamSet = {};
        for (const d of dims) {
          if (d.name === axis) params[d.name] = interpolateAxis(d, target, known, paramsOf, attempt, rng);
          else params[d.name] = perturb(d, base[d.name], rng, attempt + 1);
        }
        // the other parameters move sparsity too (a higher lr makes sparser masks at the same lambda): with enough
        // trials, the sparsity parameter is solved for the target at the values just chosen for them
        const solved = axis === undefined ? undefined : solveAxis(dims, axis, target, known, paramsOf, params);
        if (solved !== undefined) {
          params[axis!] = fromUnit(
            dims.find((d) => d.name === axis)!,
            solved + (attempt > 0 ? 0.05 * attempt * rng.normal() : 0),
          );
        }
        const reason = `gap ${g.a.x.toFixed(3)}-${g.b.x.toFixed(3)} (area ${g.area.toPrecision(3)}), ` +
          `target sparsity ${target.toFixed(3)}, from trial ${neighbour}`;
        const p = make(params, "gap", Number(target.toFixed(6)), reason);
        if (p) return p;
      }
    }
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const params: ParamSet = {};
    for (const d of dims) params[d.name] = fromUnit(d, rng.uniform());
    const p = make(params, "random", null, "random point (no gap gave a new point)");
    if (p) return p;
  }
  return null;
}

/** The gaps of a front (sorted by sparsity), split at the pending targets, largest area first. */
function gapsOf(front: readonly TicketPoint[], pending: readonly number[]): Gap[] {
  // beyond the sparsest ticket, up to (1, 0), only when that ticket is a trial's own: a ladder's cuts already
  // reach a hundredth of their trial's kept fraction, and the last sliver of sparsity is worth little
  const tail = front.at(-1)?.own ? [{ x: 1, y: 0 }] : [];
  const ends: (TicketPoint | Point2)[] = [...front, ...tail];
  for (const t of pending) {
    const i = ends.findIndex((p, j) => j > 0 && ends[j - 1]!.x < t && t < p.x);
    if (i < 0) continue;
    const a = ends[i - 1]!, b = ends[i]!;
    ends.splice(i, 0, { x: t, y: a.y + ((b.y - a.y) * (t - a.x)) / (b.x - a.x) });
  }
  const gaps: Gap[] = [];
  for (let i = 1; i < ends.length; i++) {
    const a = ends[i - 1]!, b = ends[i]!;
    gaps.push({ a, b, area: (b.x - a.x) * Math.max(0, a.y - b.y) });
  }
  return gaps.filter((g) => g.area > 0).sort((g, h) => h.area - g.area || g.a.x - h.a.x);
}

/** Of a gap's two ends, the trial whose tickets add more hypervolume that no other trial's do. */
function betterNeighbour(g: Gap, points: readonly TicketPoint[]): string {
  const ends = [g.a, g.b].filter((p): p is TicketPoint => "trial" in p).map((p) => p.trial);
  // a gap between two pending targets: the real front point nearest to it
  if (ends.length === 0) {
    const mid = (g.a.x + g.b.x) / 2;
    const f = frontOf(points);
    ends.push(f.reduce((best, p) => (Math.abs(p.x - mid) < Math.abs(best.x - mid) ? p : best), f[0]!).trial);
  }
  const all = hypervolume(points);
  let best = ends[0]!, bestGain = -1;
  for (const t of [...new Set(ends)].sort()) {
    const gain = all - hypervolume(points.filter((p) => p.trial !== t));
    if (gain > bestGain) [best, bestGain] = [t, gain];
  }
  return best;
}

/**
 * The sparsity parameter's value for a target sparsity: interpolated between the done trials whose own tickets
 * bracket it (in unit coordinates, log for a log range), else read off a least-squares line through all of them;
 * a repeated attempt moves it by a seeded step.
 */
function interpolateAxis(
  d: Dim,
  target: number,
  done: readonly RecordedResult[],
  paramsOf: ReadonlyMap<string, ParamSet>,
  attempt: number,
  rng: Rng,
): ParamValue {
  const own = done
    .map((r) => ({ x: r.metrics!.sparsity, u: toUnit(d, paramsOf.get(r.trial_id)![d.name]!) }))
    .sort((a, b) => a.x - b.x || a.u - b.u);
  let lo: typeof own[number] | undefined, hi: typeof own[number] | undefined;
  for (const p of own) {
    if (p.x <= target) lo = p;
    else if (!hi) hi = p;
  }
  let u: number;
  if (lo && hi && hi.x > lo.x) u = lo.u + ((hi.u - lo.u) * (target - lo.x)) / (hi.x - lo.x);
  else {
    const mx = own.reduce((s, p) => s + p.x, 0) / own.length, mu = own.reduce((s, p) => s + p.u, 0) / own.length;
    const sxx = own.reduce((s, p) => s + (p.x - mx) ** 2, 0);
    const sxu = own.reduce((s, p) => s + (p.x - mx) * (p.u - mu), 0);
    if (sxx > 1e-12) {
      // extrapolated at most a seventh of the range beyond the trials seen (a target no trial's own ticket can
      // reach, such as the sparsest cuts, would otherwise pin the parameter at its bound trial after trial)
      const us = own.map((p) => p.u);
      u = Math.min(Math.max(...us) + 1 / 7, Math.max(Math.min(...us) - 1 / 7, mu + (sxu / sxx) * (target - mx)));
    } else {
      // one sparsity seen so far: step a tenth of the range towards the target (lambda up is sparser, k down)
      const up = (target > (lo ?? hi)!.x) === (d.name !== "k");
      u = (lo ?? hi)!.u + (up ? 0.1 : -0.1);
    }
  }
  if (attempt > 0) u += 0.05 * attempt * rng.normal();
  if (d.kind !== "values") return fromUnit(d, u);
  // a values list: the nearest value
  const vals = d.p.values!;
  const k = Math.min(vals.length - 1, Math.max(0, Math.round(u * vals.length - 0.5)));
  return vals[k]!;
}

/** log(x / (1 - x)), with x kept within [0.001, 0.999]. */
function logit(x: number): number {
  const c = Math.min(0.999, Math.max(0.001, x));
  return Math.log(c / (1 - c));
}

/**
 * The least-squares coefficients of `y` over the columns of `rows` (each row starts with 1 for the intercept), by the
 * normal equations with a ridge of 1e-3 on every coefficient but the intercept; undefined when they are singular.
 */
function leastSquares(rows: readonly number[][], y: readonly number[]): number[] | undefined {
  const k = rows[0]?.length ?? 0;
  const a = Array.from(
    { length: k },
    (_, i) =>
      Array.from({ length: k }, (_, j) => rows.reduce((s, x) => s + x[i]! * x[j]!, i === j && i > 0 ? 1e-3 : 0)),
  );
  const b = Array.from({ length: k }, (_, i) => rows.reduce((s, x, n) => s + x[i]! * y[n]!, 0));
  for (let i = 0; i < k; i++) {
    let pivot = i;
    for (let r = i + 1; r < k; r++) if (Math.abs(a[r]![i]!) > Math.abs(a[pivot]![i]!)) pivot = r;
    [a[i], a[pivot], b[i], b[pivot]] = [a[pivot]!, a[i]!, b[pivot]!, b[i]!];
    if (Math.abs(a[i]![i]!) < 1e-12) return undefined;
    for (let r = i + 1; r < k; r++) {
      const f = a[r]![i]! / a[i]![i]!;
      for (let c = i; c < k; c++) a[r]![c]! -= f * a[i]![c]!;
      b[r]! -= f * b[i]!;
    }
  }
  const coef = new Array<number>(k).fill(0);
  for (let i = k - 1; i >= 0; i--) {
    let sum = b[i]!;
    for (let c = i + 1; c < k; c++) sum -= a[i]![c]! * coef[c]!;
    coef[i] = sum / a[i]![i]!;
  }
  return coef;
}

/**
 * The sparsity parameter's position in its range for a target sparsity, given the proposal's other parameters: a
 * least-squares plane of logit(own sparsity) over every numeric parameter's position, fitted on the done trials
 * (once there are more of them than the plane has coefficients, and only when the sparsity parameter moves
 * sparsity by at least 0.5 in logit over its range), solved for the sparsity parameter; at most a seventh of the
 * range beyond the trials seen. Undefined otherwise (the caller interpolates instead).
 */
function solveAxis(
  dims: readonly Dim[],
  axis: string,
  target: number,
  done: readonly RecordedResult[],
  paramsOf: ReadonlyMap<string, ParamSet>,
  params: ParamSet,
): number | undefined {
  const numeric = dims.filter((d) => d.kind !== "values");
  const col = numeric.findIndex((d) => d.name === axis) + 1;
  if (col === 0 || done.length < numeric.length + 2) return undefined;
  const rows = done.map((r) => [1, ...numeric.map((d) => toUnit(d, paramsOf.get(r.trial_id)![d.name]!))]);
  const coef = leastSquares(rows, done.map((r) => logit(r.metrics!.sparsity)));
  if (!coef || Math.abs(coef[col]!) < 0.5) return undefined;
  let rest = coef[0]!;
  numeric.forEach((d, i) => {
    if (d.name !== axis) rest += coef[i + 1]! * toUnit(d, params[d.name]!);
  });
  const seen = rows.map((x) => x[col]!);
  return Math.min(Math.max(...seen) + 1 / 7, Math.max(Math.min(...seen) - 1 / 7, (logit(target) - rest) / coef[col]!));
}

/** A value perturbed by a seeded step: a tenth of the range × `scale` (log space for a log range). */
function perturb(d: Dim, v: ParamValue | undefined, rng: Rng, scale: number): ParamValue {
  if (v === undefined) return fromUnit(d, rng.uniform());
  if (d.kind === "values") {
    const vals = d.p.values!;
    return rng.uniform() < 0.75 ? v : vals[rng.int(vals.length)]!;
  }
  return fromUnit(d, toUnit(d, v) + 0.1 * scale * rng.normal());
}

/** A line of proposals.jsonl that is not a valid proposal: set aside, never silently dropped. */
export interface SetAsideProposal {
  line: number;
  reason: string;
  raw: string;
}

/**
 * The proposals of an adaptive sweep (`runs/<sweep>/proposals.jsonl`, append-only, one point per line): each is
 * appended and synced to disk before its trials are published, so every trial a worker can see is in the plan.
 */
export class ProposalLog {
  readonly path: string;
  readonly #dir: string;
  readonly #proposals: Proposal[] = [];
  readonly setAside: SetAsideProposal[] = [];
  /** Proposals rebuilt from results.jsonl because the file had lost them ({@link replayLostProposals}). */
  rebuilt = 0;

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = `${dir}/${PROPOSALS_FILE}`;
  }

  /**
   * Reads and validates the proposals: every line must be a proposal of this sweep (its trials' ids the hashes
   * of their parameters and seeds, one trial per seed of the spec, the configurations the spec gives them, no
   * trial proposed twice), within the budget. A line that is not is set aside (a torn last line is the end of a
   * write cut by a crash: its trials were never published); unless `readOnly`, set-aside lines are moved to
   * `proposals.rejected.jsonl` and the file rewritten without them.
   */
  static async open(
    dir: string,
    spec: SweepSpec,
    sweepId: string,
    opts: { readOnly?: boolean } = {},
  ): Promise<ProposalLog> {
    const log = new ProposalLog(dir);
    const text = await readLogText(log.path);
    const seen = new Set<string>();
    let trials = 0;
    const { items, good, setAside } = parseLogLines(text, ProposalSchema, "a proposal", (p) => {
      const wrong = proposalMismatch(p as Proposal, spec, sweepId, seen);
      if (wrong) return wrong;
      if (trials + p.trials.length > trialBudget(spec)) return `over the budget of ${trialBudget(spec)} trials`;
      trials += p.trials.length;
      for (const t of p.trials) seen.add(t.id);
    });
    log.#proposals.push(...(items as Proposal[]));
    log.setAside.push(...setAside);
    if (!opts.readOnly && good !== text) {
      await setLinesAside(log.path, good, `${dir}/${PROPOSALS_REJECTED_FILE}`, log.setAside);
    }
    // results of trials the file does not hold (it was emptied or cut short after they ran): without their
    // proposals they would be set aside as not in the plan and run again
    const recorded = (await ResultLog.open(dir, { readOnly: true })).all().filter((r) => r.sweep_id === sweepId);
    const planned = new Set(log.trials().map((t) => t.id));
    if (recorded.some((r) => !planned.has(r.trial_id))) {
      for (const p of replayLostProposals(spec, sweepId, recorded, log.#proposals)) {
        if (!opts.readOnly) await log.append(p);
        else log.#proposals.push(p);
        log.rebuilt++;
      }
    }
    return log;
  }

  /** The proposals, in the order they were made. */
  get proposals(): readonly Proposal[] {
    return this.#proposals;
  }

  /** Every proposed trial, in proposal order. */
  trials(): Trial[] {
    return this.#proposals.flatMap((p) => p.trials);
  }

  /** Appends a proposal and syncs it to disk (before its trials are published). */
  async append(p: Proposal): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    await appendLine(this.path, JSON.stringify(p) + "\n", true);
    this.#proposals.push(p);
  }
}

/**
 * The proposals after `proposals` that `recorded` (results.jsonl, in its order) shows were made, for a
 * proposals.jsonl that lost its last lines or all of them. The search is replayed: the next proposal is what
 * {@link proposeNext} gives from the first b recorded results, for the smallest b (from the previous proposal's
 * basis up) at which every trial it proposes has a recorded outcome; trial ids are hashes of the parameters, so a
 * match is the proposal that was made (with a basis no larger than the original's, and the reason the search gives
 * at that basis: a surrogate's proposal can be the same point from fewer results). It stops at the first
 * proposal no b matches (one whose trials were in flight when the lines were lost): the search proposes anew from
 * there, and the outcomes of any later trials stay outside the plan.
 */
export function replayLostProposals(
  spec: SweepSpec,
  sweepId: string,
  recorded: readonly RecordedResult[],
  proposals: readonly Proposal[],
): Proposal[] {
  const ids = new Set(recorded.map((r) => r.trial_id));
  const made = [...proposals];
  let basis = proposals.at(-1)?.basis ?? 0;
  for (;;) {
    let found: Proposal | undefined;
    for (let b = basis; b <= recorded.length && !found; b++) {
      const p = proposeNext(spec, sweepId, recorded.slice(0, b), made);
      if (!p) return made.slice(proposals.length);
      if (p.trials.every((t) => ids.has(t.id))) found = { ...p, basis: b };
    }
    if (!found) return made.slice(proposals.length);
    made.push(found);
    basis = found.basis;
  }
}

/** What makes a schema-valid proposal not one of this sweep, or undefined. */
function proposalMismatch(
  p: Proposal,
  spec: SweepSpec,
  sweepId: string,
  seen: ReadonlySet<string>,
): string | undefined {
  if (p.trials.length !== spec.seeds.length) {
    return `${p.trials.length} trials, but a point runs once per seed (${spec.seeds.length})`;
  }
  const params = canonicalJson(p.trials[0]!.params);
  for (const [i, t] of p.trials.entries()) {
    if (t.sweepId !== sweepId) return `trials.${i}.sweepId: not this sweep's id ${sweepId}`;
    if (t.seed !== spec.seeds[i]) return `trials.${i}.seed: expected seed ${spec.seeds[i]}, found ${t.seed}`;
    if (canonicalJson(t.params) !== params) return `trials.${i}.params: not the point of trials.0`;
    const id = trialIdOf(sweepId, t.params, t.seed);
    if (t.id !== id) return `trials.${i}.id: ${t.id} is not the id of its parameters and seed (${id})`;
    if (seen.has(t.id)) return `trial ${t.id} was proposed before`;
    let config: unknown;
    try {
      config = resolveTrialConfig(spec, t.params, t.seed);
    } catch (e) {
      return `trials.${i}.params: not a point of the spec (${(e as Error).message.slice(0, 200)})`;
    }
    if (canonicalJson(config) !== canonicalJson(t.config)) return `trials.${i}.config: not the spec's for its point`;
  }
  return undefined;
}

/** Grid points of the sparsity axis the surrogate works on: s_k = (k + 0.5) / SURROGATE_GRID. */
const SURROGATE_GRID = 200;
/** Seeded random candidate points the surrogate scores per proposal. */
const SURROGATE_CANDIDATES = 512;
/** Most trials the surrogate is fitted on (those whose tickets add the most hypervolume on their own). */
const SURROGATE_MAX_TRIALS = 100;
/** The Gaussian process's length scale, in units of each parameter's range (log ranges in log space). */
const SURROGATE_LENGTH_SCALE = 0.3;
/** Its noise, relative to the prior variance (1): trials are deterministic, but near points can differ. */
const SURROGATE_NOISE = 0.01;

/**
 * A trial's staircase on the sparsity grid: at s_k, the best validation accuracy of its tickets at sparsity ≥ s_k
 * (the front of a set of trials is the largest of their staircases, and its hypervolume their integral).
 */
function staircase(points: readonly Point2[]): Float64Array {
  const f = new Float64Array(SURROGATE_GRID);
  for (const p of points) {
    const top = Math.min(SURROGATE_GRID, Math.floor(p.x * SURROGATE_GRID + 0.5)); // s_k <= p.x for k < top
    for (let k = 0; k < top; k++) if (p.y > f[k]!) f[k] = p.y;
  }
  return f;
}

/** The inverse of a symmetric positive-definite matrix (Cholesky), or undefined when it is not one. */
function spdInverse(m: readonly number[][]): number[][] | undefined {
  const n = m.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = m[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      if (i === j) {
        if (s <= 1e-12) return undefined;
        l[i]![i] = Math.sqrt(s);
      } else l[i]![j] = s / l[j]![j]!;
    }
  }
  return Array.from({ length: n }, (_, c) => {
    const y = new Array<number>(n).fill(0), x = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      let s = i === c ? 1 : 0;
      for (let k = 0; k < i; k++) s -= l[i]![k]! * y[k]!;
      y[i] = s / l[i]![i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let k = i + 1; k < n; k++) s -= l[k]![i]! * x[k]!;
      x[i] = s / l[i]![i]!;
    }
    return x;
  });
}

/** The standard normal distribution function (Abramowitz and Stegun 7.1.26, error below 1e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.3275911 * x);
  const erf = 1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/**
 * The point with the largest expected improvement of the validation front, or undefined before two trials have
 * an outcome (or when no candidate is expected to improve it).
 *
 * The surrogate models a trial's whole ladder, not one ticket: each trial with an outcome gives its staircase
 * ({@link staircase}; a done trial's over its own ticket and every cut, a stopped trial's over the partial point it
 * was stopped at, which tells what its region gave), and every grid point s_k of the staircases is a regression
 * on the parameters' positions in their ranges: a ridge plane (once there are more trials than it has
 * coefficients; else a constant) plus a Gaussian process on the residuals (squared-exponential kernel, one length
 * scale and noise for all grid points). Each of {@link SURROGATE_CANDIDATES} seeded random points is scored by the
 * sum over the grid of the expected improvement over the front (done trials' staircases, raised to the predicted
 * staircases of the proposals in flight), with the predicted staircase as mean (clipped to [0, 1] and made
 * non-increasing) and the process's standard deviation at the candidate times its amplitude (the root mean square
 * of the residuals from the plane) as uncertainty: the expected hypervolume improvement with each grid point taken
 * alone.
 */
function modelProposal(
  dims: readonly Dim[],
  results: readonly RecordedResult[],
  proposals: readonly Proposal[],
  paramsOf: ReadonlyMap<string, ParamSet>,
  rng: Rng,
): { params: ParamSet; gain: number; fitted: number } | undefined {
  const G = SURROGATE_GRID;
  const position = (params: ParamSet) => dims.map((d) => toUnit(d, params[d.name]!));
  // every outcome's staircase, computed once: the done ones make the front, those of proposed trials the fit
  const outcomes = results
    .filter((r) => (r.status === "done" || r.status === "stopped") && r.metrics)
    .map((r) => {
      const m = r.metrics!;
      const done = r.status === "done";
      return {
        r,
        done,
        stair: staircase(done ? ticketPoints(r) : [{ x: m.sparsity, y: m.val_accuracy ?? m.accuracy }]),
      };
    });
  const seen = outcomes
    .filter(({ r }) => paramsOf.has(r.trial_id))
    .map(({ r, stair }) => ({
      id: r.trial_id,
      x: position(paramsOf.get(r.trial_id)!),
      stair,
      area: stair.reduce((a, b) => a + b, 0),
    }))
    // the trials whose staircases enclose the most area, ties by id: the same set whatever the order of results
    .sort((a, b) => b.area - a.area || (a.id < b.id ? -1 : 1))
    .slice(0, SURROGATE_MAX_TRIALS);
  const n = seen.length;
  if (n < 2) return undefined;
  const features = (x: readonly number[]) => (n > dims.length + 1 ? [1, ...x] : [1]);
  const rows = seen.map((t) => features(t.x));
  const p = rows[0]!.length;
  const ridge = spdInverse(
    Array.from(
      { length: p },
      (_, i) =>
        Array.from({ length: p }, (_, j) => rows.reduce((s, r) => s + r[i]! * r[j]!, i === j && i > 0 ? 0.05 : 0)),
    ),
  );
  if (!ridge) return undefined;
  // the plane's coefficients at every grid point: (XᵀX + ridge)⁻¹ Xᵀ y_k
  const coef = Array.from({ length: p }, () => new Float64Array(G));
  for (let k = 0; k < G; k++) {
    const xty = Array.from({ length: p }, (_, i) => rows.reduce((s, r, t) => s + r[i]! * seen[t]!.stair[k]!, 0));
    for (let i = 0; i < p; i++) coef[i]![k] = ridge[i]!.reduce((s, v, j) => s + v * xty[j]!, 0);
  }
  const plane = (f: readonly number[], k: number) => f.reduce((s, v, i) => s + v * coef[i]![k]!, 0);
  const ell2 = 2 * SURROGATE_LENGTH_SCALE ** 2;
  const kernel = (a: readonly number[], b: readonly number[]) =>
    Math.exp(-a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0) / ell2);
  const kInv = spdInverse(seen.map((a, i) => seen.map((b, j) => kernel(a.x, b.x) + (i === j ? SURROGATE_NOISE : 0))));
  if (!kInv) return undefined;
  // the process's weights at every grid point: K⁻¹ (residuals from the plane)
  const residual = seen.map((t, i) => Float64Array.from(t.stair, (v, k) => v - plane(rows[i]!, k)));
  const weights = kInv.map((row) => {
    const w = new Float64Array(G);
    for (let k = 0; k < G; k++) w[k] = row.reduce((s, v, j) => s + v * residual[j]![k]!, 0);
    return w;
  });
  // the process's amplitude: the root mean square of the residuals, one for every grid point
  let squares = 0;
  for (const r of residual) for (const v of r) squares += v * v;
  const amplitude = Math.sqrt(squares / (n * G));
  /** The predicted staircase at a position and the process's standard deviation there. */
  const predict = (x: readonly number[]) => {
    const kx = seen.map((t) => kernel(x, t.x));
    const sd = Math.sqrt(
      Math.max(0, 1 - kx.reduce((s, v, i) => s + v * kInv[i]!.reduce((a, w, j) => a + w * kx[j]!, 0), 0)),
    );
    const f = features(x), mean = new Float64Array(G);
    let cap = 1;
    for (let k = 0; k < G; k++) {
      let v = plane(f, k);
      for (let t = 0; t < n; t++) v += kx[t]! * weights[t]![k]!;
      cap = mean[k] = Math.min(cap, Math.max(0, v));
    }
    return { mean, sd };
  };
  // the front of every done trial (not only those fitted)
  const front = new Float64Array(G);
  const raise = (stair: Float64Array) => stair.forEach((v, k) => (front[k] = Math.max(front[k]!, v)));
  for (const o of outcomes) if (o.done) raise(o.stair);
  const recorded = new Set(results.map((r) => r.trial_id));
  for (const q of proposals) {
    if (q.trials.some((t) => !recorded.has(t.id))) raise(predict(position(q.trials[0]!.params)).mean);
  }
  let best: number[] | undefined, bestGain = 0;
  for (let c = 0; c < SURROGATE_CANDIDATES; c++) {
    const x = dims.map(() => rng.uniform());
    const { mean, sd } = predict(x);
    let gain = 0;
    for (let k = 0; k < G; k++) {
      const s = sd * amplitude, d = mean[k]! - front[k]!;
      gain += s < 1e-9
        ? Math.max(0, d)
        : s * Math.exp(-(d * d) / (2 * s * s)) / Math.sqrt(2 * Math.PI) + d * normalCdf(d / s);
    }
    if (gain > bestGain) [best, bestGain] = [x, gain];
  }
  if (!best || bestGain < 1e-9) return undefined;
  const params: ParamSet = {};
  dims.forEach((d, i) => (params[d.name] = fromUnit(d, best![i]!)));
  return { params, gain: bestGain / G, fitted: n };
}
