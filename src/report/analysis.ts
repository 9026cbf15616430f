import { compareFronts, type FrontComparison, MIN_SEEDS } from "../pareto/compare.ts";
import type { Point2 } from "../pareto/front.ts";
import {
  bootstrapHypervolumeOf,
  HV_REFERENCE,
  hypervolume,
  type Interval,
  type SeededPoint,
} from "../pareto/hypervolume.ts";
import { accuracyAlong, frontOf, kneeIndex, sparsityAlong } from "../pareto/interpolate.ts";
import { configFront, type ConfigPoint, configPointsOf, type PointParts, type Spread } from "../pareto/seeds.ts";
import { describeParams, type ParamSet } from "../spec/expand.ts";
import { fmtCut, type ReportData, type Selection, type TrialRow } from "./data.ts";

/** Candidate sparsity levels of the "accuracy at sparsity" table; those the fronts reach are shown. */
export const SPARSITY_LEVELS = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999];

/** The knee, as the report states it under the Pareto plot. */
export const KNEE_DEFINITION = "Knee (◇): the point of a front farthest from the straight line between its two ends, " +
  "with sparsity and accuracy each scaled to the front's own range (the best trade-off when neither objective is " +
  "preferred); on a front of one or two points, the one with the largest sparsity + accuracy.";

/** How cuts of different seeds are matched into one configuration point, as the report states it. */
export const MATCHING_NOTE = "A configuration is every parameter but the seed. Its point at ladder position i is the " +
  "mean over its seeds of their tickets at position i (0: each trial's own ticket; i: the i-th cut of its ladder, " +
  "sparsest last): for edge-popup and for cut lists given in the spec that is the same cut value on every seed, for " +
  "automatic threshold ladders (gates, hard-concrete, cs) the same step down the ladder, its threshold read off " +
  "each seed's own gates. A position that not every seed has is left out of the configuration fronts (it stays on " +
  "the per-seed fronts). Error bars and intervals: 95% percentile bootstrap over the seeds (1,000 resamples, " +
  "generator seeded per point); below 3 seeds there is no interval: the spread cannot be judged.";

/** One configuration point of a front's group, with its parameters and a label. */
export type ConfigRow = ConfigPoint<TrialRow> & {
  group: string;
  params: ParamSet;
  label: string;
  /** Its configuration's number: equal for the points of one configuration (its `config`, without the string). */
  configIndex: number;
};

/** The numbers a report shows for one front. */
export interface FrontAnalysis {
  group: string;
  /** Over the tickets of single seeds: pooled front, mean over seeds' own fronts and its interval. */
  hypervolume: Interval;
  /** Hypervolume of the configuration front (mean sparsity × mean accuracy of each point). */
  config_hypervolume: number;
  /** Every configuration point of the group, and the front over them (sparsity ascending). */
  configs: ConfigRow[];
  front: ConfigRow[];
  /** The knee of the configuration front, and the ticket of its seed closest to the point's means. */
  knee_point: ConfigRow | null;
  knee: TrialRow | null;
  /** Read along the configuration front (its means). */
  atSparsity: { sparsity: number; accuracy: number | null }[];
  atAccuracy: { accuracy: number; sparsity: number | null }[];
}

/** An accuracy level of the "sparsity at accuracy" table and what it is relative to. */
export interface AccuracyLevel {
  accuracy: number;
  /** `best − 1 pp`, `dense − 2 pp` (`<sweep> dense − 2 pp` in a comparison), or `given` (--at-accuracy). */
  basis: string;
}

/** Everything computed from the fronts: hypervolumes, knees, interpolation tables, pairwise comparisons. */
export interface Analysis {
  /** The accuracy every number here is on (the fronts' `score`): validation, or test for runs without one. */
  selection: Selection;
  reference: Point2;
  atSparsity: number[];
  atAccuracy: number[];
  atAccuracyLevels: AccuracyLevel[];
  fronts: FrontAnalysis[];
  comparisons: FrontComparison[];
  /** Ladder positions left out of the configuration fronts because not every seed of their configuration had them. */
  partial: number;
  bootstrap: { resamples: number; seed: number; level: number };
}

/**
 * The sparsity levels of the "accuracy at sparsity" table, chosen from what the configuration fronts reach: the
 * sparsest five of {@link SPARSITY_LEVELS} that some front reaches, and the sparsity every front reaches (rounded
 * down to 0.1%), so each table has a column every front fills.
 */
export function sparsityLevels(fronts: readonly (readonly Point2[])[]): number[] {
  // reduce, not Math.max(...points): a front of 100,000 points overflows the argument list
  const ends = fronts.filter((f) => f.length).map((f) => f.reduce((m, p) => Math.max(m, p.x), -Infinity));
  if (!ends.length) return [];
  const down = (v: number) => Math.floor(v * 1000 + 1e-6) / 1000; // to 0.1%, float noise aside
  const reach = Math.max(...ends), common = down(Math.min(...ends));
  const levels = SPARSITY_LEVELS.filter((s) => s <= reach + 1e-9).slice(-5);
  if (common > 0) levels.push(common);
  if (levels.length < 2 && reach > common) levels.push(down(reach));
  return [...new Set(levels.map((v) => Number(v.toFixed(4))))].sort((a, b) => a - b);
}

/**
 * The accuracy levels of the "sparsity at accuracy ≥ X" table, chosen from what the configuration fronts reach:
 * 1, 2 and 5 points below the most accurate configuration point of any front (so the best front reaches each), and
 * 1, 2 and 5 points below each sweep's dense reference where some front of that sweep reaches the level.
 */
export function accuracyLevels(
  d: Pick<ReportData, "references" | "settings">,
  fronts: readonly { group: string; points: readonly Point2[] }[],
): AccuracyLevel[] {
  const top = (ps: readonly Point2[]) => ps.reduce((m, p) => Math.max(m, p.y), -Infinity);
  const best = Math.max(-Infinity, ...fronts.map((f) => top(f.points)));
  if (!Number.isFinite(best)) return [];
  const gaps = [0.01, 0.02, 0.05];
  const out: AccuracyLevel[] = gaps.map((g) => ({ accuracy: best - g, basis: `best − ${100 * g} pp` }));
  const several = d.settings.length > 1;
  for (const r of d.references) {
    const reach = Math.max(-Infinity, ...fronts.filter((f) => r.groups.includes(f.group)).map((f) => top(f.points)));
    for (const g of gaps) {
      if (reach >= r.accuracy - g - 1e-9) {
        out.push({ accuracy: r.accuracy - g, basis: `${several ? `${r.sweep} ` : ""}dense − ${100 * g} pp` });
      }
    }
  }
  const seen = new Set<number>();
  return out.map((l) => ({ ...l, accuracy: Number(l.accuracy.toFixed(4)) }))
    .filter((l) => !seen.has(l.accuracy) && (seen.add(l.accuracy), true))
    .sort((a, b) => b.accuracy - a.accuracy);
}

export function seededPoints(d: ReportData, group: string): SeededPoint[] {
  return d.tickets.filter((t) => t.group === group)
    .map((t) => ({ x: t.sparsity!, y: t.score!, seed: t.seed }));
}

/**
 * The hypervolume interval of a group's tickets ({@link bootstrapHypervolume} of its {@link seededPoints}), read from
 * columns: a group of 100,000 tickets makes no point object each.
 */
function groupHypervolume(d: ReportData, group: string, opts: { resamples: number; seed: number }): Interval {
  let n = 0;
  for (const t of d.tickets) if (t.group === group) n++;
  const xs = new Float64Array(n), ys = new Float64Array(n), seeds = new Float64Array(n);
  let i = 0;
  for (const t of d.tickets) {
    if (t.group !== group) continue;
    xs[i] = t.sparsity!;
    ys[i] = t.score!;
    seeds[i++] = t.seed;
  }
  return bootstrapHypervolumeOf(xs, ys, seeds, opts);
}

/** A configuration's key: its group and every parameter but the seed. */
export const configKey = (t: Pick<TrialRow, "group" | "params">) =>
  `${t.group}\u0000${JSON.stringify(Object.keys(t.params).sort().map((k) => [k, t.params[k]]))}`;

/** A configuration point's label: its parameters (no seed) and its ladder position with the cut values of its seeds. */
function configLabel(p: ConfigPoint<TrialRow>): string {
  const first = p.members[0]!;
  const params = describeParams(first.params, 0).replace(/ ?seed=0$/, "");
  if (p.position === 0) return `${params} own ticket`;
  const cuts = [...new Set(p.members.map((m) => fmtCut(m.cut!)))];
  return `${params} cut #${p.position} (${cuts.length === 1 ? cuts[0] : cuts.join("/")})`;
}

/** Where a spread's numbers lie in a point's 12 of {@link ConfigTable.spreads}: sparsity, accuracy, test. */
const SPARSITY = 0, ACCURACY = 4, TEST = 8;

/**
 * The configuration points of a report as columns: each point's three spreads as 12 numbers of one typed array, its
 * position, configuration number and list of seeds as integers, its members as a run of one array of rows; a sweep of
 * 100,000 configurations keeps ~13 MB for them, not ~35 (an object, an array and three spreads per point).
 */
class ConfigTable {
  spreads: Float64Array;
  position: Int32Array;
  configIndex: Int32Array;
  seedList: Int32Array;
  /** Point `i`'s members are `members[memberStart[i]]` up to `members[memberStart[i + 1]]`. */
  memberStart: Int32Array;
  readonly members: TrialRow[] = [];
  /** The lists of seeds the points share (configurations of the same seeds share one). */
  readonly seedLists: number[][] = [];
  readonly #seedListIndex = new Map<number[], number>();
  size = 0;

  /** Room for `capacity` points (every point has a ticket of its own: at most one per ticket). */
  constructor(capacity: number) {
    this.spreads = new Float64Array(12 * capacity);
    this.position = new Int32Array(capacity);
    this.configIndex = new Int32Array(capacity);
    this.seedList = new Int32Array(capacity);
    this.memberStart = new Int32Array(capacity + 1);
  }

  /** Keeps a point; its index. */
  add(p: PointParts<TrialRow>): number {
    const i = this.size++;
    [p.sparsity, p.accuracy, p.test].forEach((s, j) => {
      // null where the seeds are too few (sd below 2 seeds, an interval below MIN_SEEDS): told by the seeds again
      this.spreads.set([s.mean, s.sd ?? NaN, s.lo ?? NaN, s.hi ?? NaN], 12 * i + 4 * j);
    });
    this.position[i] = p.position;
    this.configIndex[i] = p.configIndex;
    let list = this.#seedListIndex.get(p.seeds);
    if (list === undefined) this.#seedListIndex.set(p.seeds, list = this.seedLists.push(p.seeds) - 1);
    this.seedList[i] = list;
    for (const m of p.members) this.members.push(m);
    this.memberStart[i + 1] = this.members.length;
    return i;
  }

  /** Drops the room left over (a sweep of several seeds has fewer points than tickets). */
  trim(): void {
    const n = this.size;
    this.#seedListIndex.clear();
    if (n === this.position.length) return; // full (one seed: a point per ticket): no copy
    this.spreads = this.spreads.slice(0, 12 * n);
    this.position = this.position.slice(0, n);
    this.configIndex = this.configIndex.slice(0, n);
    this.seedList = this.seedList.slice(0, n);
    this.memberStart = this.memberStart.slice(0, n + 1);
  }

  /** Point `i`'s spread at `at` ({@link SPARSITY}, {@link ACCURACY}, {@link TEST}), as spreadsOf made it. */
  spread(i: number, at: number): Spread {
    const v = this.spreads, o = 12 * i + at, n = this.seedLists[this.seedList[i]!]!.length;
    return {
      mean: v[o]!,
      sd: n < 2 ? null : v[o + 1]!,
      lo: n < MIN_SEEDS ? null : v[o + 2]!,
      hi: n < MIN_SEEDS ? null : v[o + 3]!,
    };
  }
}

/**
 * A configuration point as a row of a {@link ConfigTable}: its fields read from the columns when asked for (each
 * spread and the list of members made each time), its group and parameters those of its first member, its key and
 * label made when asked for (a sweep of 100,000 configurations holds no 200,000 strings for them).
 */
class ConfigPointRow implements ConfigRow {
  readonly #t: ConfigTable;
  readonly #i: number;

  constructor(t: ConfigTable, i: number) {
    this.#t = t;
    this.#i = i;
  }
  get position(): number {
    return this.#t.position[this.#i]!;
  }
  get seeds(): number[] {
    return this.#t.seedLists[this.#t.seedList[this.#i]!]!;
  }
  get members(): TrialRow[] {
    return this.#t.members.slice(this.#t.memberStart[this.#i], this.#t.memberStart[this.#i + 1]);
  }
  /** Its configuration's number, in the order the configurations first appear among the tickets. */
  get configIndex(): number {
    return this.#t.configIndex[this.#i]!;
  }
  get sparsity(): Spread {
    return this.#t.spread(this.#i, SPARSITY);
  }
  get accuracy(): Spread {
    return this.#t.spread(this.#i, ACCURACY);
  }
  get test(): Spread {
    return this.#t.spread(this.#i, TEST);
  }
  get config(): string {
    return configKey(this.#first);
  }
  get group(): string {
    return this.#first.group;
  }
  get params(): ParamSet {
    return this.#first.params;
  }
  get label(): string {
    return configLabel(this);
  }
  get #first(): TrialRow {
    return this.#t.members[this.#t.memberStart[this.#i]!]!;
  }
}

/**
 * Numbers configurations (group and every parameter but the seed) in the order they are first given, as
 * {@link configKey} would tell them apart, without a key string each: a tree of maps, one level a parameter (names
 * sorted), keyed by the values themselves (a finite number, string or boolean is the same key exactly when its JSON
 * is; JSON writes every other number as null).
 */
export class ConfigNumbers {
  #count = 0;
  readonly #groups = new Map<string, ConfigNode>();

  of(group: string, params: ParamSet): number {
    let node = this.#groups.get(group);
    if (!node) this.#groups.set(group, node = { id: -1 });
    for (const k of Object.keys(params).sort()) {
      const v = params[k], key = v === undefined || (typeof v === "number" && !Number.isFinite(v)) ? null : v;
      node.next ??= new Map();
      let byValue = node.next.get(k);
      if (!byValue) node.next.set(k, byValue = new Map());
      let child = byValue.get(key);
      if (!child) byValue.set(key, child = { id: -1 });
      node = child;
    }
    if (node.id < 0) node.id = this.#count++;
    return node.id;
  }
}

/** A node of {@link ConfigNumbers}: its configuration's number (-1: none ends here) and the next parameter's values. */
interface ConfigNode {
  id: number;
  next?: Map<string, Map<string | number | boolean | null, ConfigNode>>;
}

/** The configuration points of a report's tickets per group; reproducible for a given bootstrap seed. */
export function configRows(d: ReportData, opts: { seed?: number; resamples?: number } = {}) {
  const done = d.tickets.filter((t) => t.status === "done");
  const numbers = new ConfigNumbers(), table = new ConfigTable(done.length);
  const { points, partial } = configPointsOf<TrialRow, ConfigRow>(
    {
      length: done.length,
      config: Int32Array.from(done, (t) => numbers.of(t.group, t.params)),
      key: (i) => configKey(done[i]!),
      position: (i) => done[i]!.cut_index ?? 0,
      seed: (i) => done[i]!.seed,
      sparsity: (i) => done[i]!.sparsity!,
      accuracy: (i) => done[i]!.score!,
      test: (i) => done[i]!.accuracy!,
      item: (i) => done[i]!,
    },
    (p) => new ConfigPointRow(table, table.add(p)),
    opts,
  );
  table.trim();
  return { rows: points, partial };
}

/** The member of a configuration point whose ticket is closest to the point's means. */
function representative(p: ConfigRow): TrialRow {
  const dist = (t: TrialRow) => Math.hypot(t.sparsity! - p.sparsity.mean, t.score! - p.accuracy.mean);
  return p.members.reduce((a, t) => (dist(t) < dist(a) ? t : a));
}

/** Analyses every front of a report; reproducible for a given bootstrap `seed`. */
export function analyse(
  d: ReportData,
  opts: { atAccuracy?: number[]; seed?: number; resamples?: number } = {},
): Analysis {
  const seed = opts.seed ?? 0, resamples = opts.resamples ?? 1000;
  const { rows, partial } = configRows(d, { seed, resamples });
  const means = (ps: readonly ConfigRow[]) => ps.map((p) => ({ x: p.sparsity.mean, y: p.accuracy.mean }));
  const built = d.fronts.map((f) => {
    const configs = rows.filter((r) => r.group === f.group);
    const front = configFront(configs);
    return { group: f.group, configs, front, pts: means(front) }; // the means once (a front of 100,000)
  });
  const atSparsity = sparsityLevels(built.map((b) => b.pts));
  const atAccuracyLevels = opts.atAccuracy
    ? opts.atAccuracy.map((accuracy) => ({ accuracy, basis: "given" }))
    : accuracyLevels(d, built.map((b) => ({ group: b.group, points: b.pts })));
  const fronts = built.map(({ group, configs, front, pts }): FrontAnalysis => {
    const k = kneeIndex(pts);
    const knee = k >= 0 ? front[k]! : null;
    const along = frontOf(pts); // once for every level below (a front of 100,000 points made again per level)
    return {
      group,
      hypervolume: groupHypervolume(d, group, { resamples, seed }),
      config_hypervolume: hypervolume(pts),
      configs,
      front,
      knee_point: knee,
      knee: knee ? representative(knee) : null,
      // read 1e-9 short of each level: a mean over seeds lands a float's noise away from it
      atSparsity: atSparsity.map((s) => ({ sparsity: s, accuracy: accuracyAlong(along, s - 1e-9) })),
      atAccuracy: atAccuracyLevels.map((l) => ({
        accuracy: l.accuracy,
        sparsity: sparsityAlong(along, l.accuracy),
      })),
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
    atSparsity,
    atAccuracy: atAccuracyLevels.map((l) => l.accuracy),
    atAccuracyLevels,
    fronts,
    comparisons,
    partial,
    bootstrap: { resamples, seed, level: 0.95 },
  };
}
