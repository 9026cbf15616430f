import { MIN_SEEDS } from "./compare.ts";
import { nonDominated } from "./front.ts";
import { percentile } from "./hypervolume.ts";
import { Rng } from "../util/rng.ts";

/** Mean and spread of one quantity over the seeds of a configuration point. */
export interface Spread {
  mean: number;
  /** Sample standard deviation (n − 1); null with one seed. */
  sd: number | null;
  /**
   * Percentile bootstrap interval of the mean (the seeds resampled with replacement); null below {@link MIN_SEEDS}
   * seeds, where the spread cannot be judged.
   */
  lo: number | null;
  hi: number | null;
}

/** One ticket of one seed: its configuration (every parameter but the seed), its place on the trial's ladder. */
export interface SeedSample<T> {
  config: string;
  /** 0: the trial's own ticket; i: the i-th cut of its ladder (sparsest last). */
  position: number;
  seed: number;
  sparsity: number;
  accuracy: number;
  /** Test accuracy beside the selection accuracy (the same as `accuracy` for runs without a validation split). */
  test: number;
  item: T;
}

/**
 * A configuration point: the tickets at the same ladder position of every seed of one configuration, as one point
 * with the mean and spread of its sparsity and accuracies over those seeds.
 */
export interface ConfigPoint<T> {
  config: string;
  position: number;
  /** The seeds behind the point, ascending; its members in the same order. */
  seeds: number[];
  members: T[];
  sparsity: Spread;
  accuracy: Spread;
  test: Spread;
}

/** The configuration points of a set of tickets, and how many ladder positions were left out (not every seed had them). */
export interface ConfigPoints<T> {
  points: ConfigPoint<T>[];
  partial: number;
}

/** FNV-1a hash of a string: the generator stream of one configuration point (its interval independent of the others). */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

function sd(v: readonly number[]): number | null {
  if (v.length < 2) return null;
  const m = mean(v);
  return Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1));
}

/**
 * Mean and spread of several quantities measured on the same seeds: standard deviation, and a percentile bootstrap
 * interval of each mean from one set of resamples of the seeds (paired: a resample draws whole seeds). Below
 * {@link MIN_SEEDS} seeds no interval (null). Reproducible for a given generator.
 */
export function spreadsOf(columns: readonly (readonly number[])[], rng: Rng, resamples = 1000, level = 0.95): Spread[] {
  const n = columns[0]?.length ?? 0;
  const draws = columns.map(() => [] as number[]);
  if (n >= MIN_SEEDS) {
    for (let r = 0; r < resamples; r++) {
      const idx = Array.from({ length: n }, () => rng.int(n));
      columns.forEach((c, j) => draws[j]!.push(idx.reduce((s, i) => s + c[i]!, 0) / n));
    }
  }
  return columns.map((c, j) => {
    const d = draws[j]!.sort((a, b) => a - b);
    const ok = d.length > 0;
    return {
      mean: mean(c),
      sd: sd(c),
      lo: ok ? percentile(d, (1 - level) / 2) : null,
      hi: ok ? percentile(d, 1 - (1 - level) / 2) : null,
    };
  });
}

/**
 * Groups tickets into configuration points. Cuts are matched across seeds by their position on the trial's ladder:
 * the own tickets of a configuration's seeds are one point, their first cuts another, and so on. A position that not
 * every seed of the configuration has (a cut dropped on one seed as repeated or out of range) is left out and counted
 * in `partial`; those tickets stay on the per-seed fronts. Each point's bootstrap draws from its own generator
 * stream (`seed`, a hash of its configuration and position), so its interval does not depend on the other points.
 */
export function configPoints<T>(
  samples: readonly SeedSample<T>[],
  opts: { seed?: number; resamples?: number; level?: number } = {},
): ConfigPoints<T> {
  const index = new Map<string, number>(); // each configuration numbered where it first appears
  const config = Int32Array.from(
    samples,
    (s) => index.get(s.config) ?? (index.set(s.config, index.size), index.size - 1),
  );
  const at = (i: number) => samples[i]!;
  return configPointsOf<T, ConfigPoint<T>>({
    length: samples.length,
    config,
    key: (i) => at(i).config,
    position: (i) => at(i).position,
    seed: (i) => at(i).seed,
    sparsity: (i) => at(i).sparsity,
    accuracy: (i) => at(i).accuracy,
    test: (i) => at(i).test,
    item: (i) => at(i).item,
  }, (p, first) => ({
    config: samples[first]!.config,
    position: p.position,
    seeds: p.seeds,
    members: p.members,
    sparsity: p.sparsity,
    accuracy: p.accuracy,
    test: p.test,
  }), opts);
}

/**
 * The tickets {@link configPointsOf} groups, read by index: a report of 100,000 tickets makes no sample object and no
 * key string per ticket (the key of a configuration is asked for only where its bootstrap draws, 3 seeds or more).
 */
export interface SampleColumns<T> {
  readonly length: number;
  /** Each ticket's configuration, numbered 0, 1, 2, ... in the order the configurations first appear. */
  readonly config: ArrayLike<number>;
  /** The configuration's key of ticket `i` (its points' generator streams hash it with their position). */
  key(i: number): string;
  position(i: number): number;
  seed(i: number): number;
  sparsity(i: number): number;
  accuracy(i: number): number;
  test(i: number): number;
  item(i: number): T;
}

/** A configuration point before it is kept: what {@link configPointsOf} gives to its `row`. */
export type PointParts<T> = Omit<ConfigPoint<T>, "config"> & { configIndex: number };

/** An unused generator: below {@link MIN_SEEDS} seeds {@link spreadsOf} draws nothing. */
const NO_DRAWS = new Rng(0);

/**
 * {@link configPoints} over tickets read by index: each point is made by `row` (with the index of its configuration's
 * first ticket) as it is computed, points in the order their configurations first appear, positions ascending.
 */
export function configPointsOf<T, P>(
  cols: SampleColumns<T>,
  row: (p: PointParts<T>, first: number) => P,
  opts: { seed?: number; resamples?: number; level?: number } = {},
): { points: P[]; partial: number } {
  const { seed = 0, resamples = 1000, level = 0.95 } = opts;
  const n = cols.length, config = cols.config;
  // the tickets by configuration, then position, then their order (typed arrays, no object per ticket)
  const position = Float64Array.from({ length: n }, (_, i) => cols.position(i));
  const order = Uint32Array.from({ length: n }, (_, i) => i)
    .sort((a, b) => config[a]! - config[b]! || position[a]! - position[b]! || a - b);
  const points: P[] = [];
  let partial = 0;
  const seedLists = new Map<string, number[]>(); // configurations of the same seeds share one list
  const oneSeed = new Map<number, number[]>(); // the same for one seed, without a key string each
  for (let lo = 0; lo < n;) {
    const c = config[order[lo]!]!;
    let hi = lo;
    while (hi < n && config[order[hi]!] === c) hi++;
    // each position's tickets, the first of each seed kept (a ticket repeated for a seed is not counted twice)
    const groups: number[][] = [];
    for (let j = lo; j < hi;) {
      const p = position[order[j]!]!, kept: number[] = [];
      for (; j < hi && position[order[j]!] === p; j++) {
        const i = order[j]!, s = cols.seed(i);
        if (!kept.some((k) => cols.seed(k) === s)) kept.push(i);
      }
      groups.push(kept);
    }
    let all = [...new Set(groups.flatMap((g) => g.map((i) => cols.seed(i))))].sort((a, b) => a - b);
    if (all.length === 1) {
      const shared = oneSeed.get(all[0]!);
      if (shared) all = shared;
      else oneSeed.set(all[0]!, all);
    } else {
      const key = all.join(",");
      all = seedLists.get(key) ?? (seedLists.set(key, all), all);
    }
    const first = order[lo]!;
    for (const kept of groups) {
      if (kept.length < all.length) {
        partial++;
        continue;
      }
      const members = all.map((s) => kept.find((i) => cols.seed(i) === s)!);
      const p = position[members[0]!]!;
      const [sparsity, accuracy, test] = spreadsOf(
        [members.map((i) => cols.sparsity(i)), members.map((i) => cols.accuracy(i)), members.map((i) => cols.test(i))],
        members.length >= MIN_SEEDS ? new Rng(seed, hash32(`${cols.key(first)}#${p}`)) : NO_DRAWS,
        resamples,
        level,
      );
      points.push(row({
        configIndex: c,
        position: p,
        seeds: all,
        members: members.map((i) => cols.item(i)),
        sparsity: sparsity!,
        accuracy: accuracy!,
        test: test!,
      }, first));
    }
    lo = hi;
  }
  return { points, partial };
}

/** The configuration points not dominated on their mean sparsity and mean accuracy, by sparsity ascending. */
export function configFront<P extends ConfigPoint<unknown>>(points: readonly P[]): P[] {
  // each point's means read once: a point's spreads may be made when asked for (a report's configuration rows), and
  // a sort asking in its comparisons made ~40 of them per point (millions for a front of 100,000)
  const means = points.map((p) => ({ x: p.sparsity.mean, y: p.accuracy.mean }));
  const nd = nonDominated(means);
  const on: number[] = [];
  for (let i = 0; i < points.length; i++) if (nd[i]) on.push(i);
  // the same order as sorting the points themselves (a stable sort of the same keys)
  return on.sort((a, b) => means[a]!.x - means[b]!.x || means[b]!.y - means[a]!.y).map((i) => points[i]!);
}
