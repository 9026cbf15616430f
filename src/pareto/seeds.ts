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
  opts: {
    seed?: number;
    resamples?: number;
    level?: number;
    /** What each point is kept as (default: itself), made as it is computed: no second copy of every point. */
    row?: (p: ConfigPoint<T>) => ConfigPoint<T>;
  } = {},
): ConfigPoints<T> {
  const { seed = 0, resamples = 1000, level = 0.95 } = opts;
  // configuration → its positions (ascending) → the first sample of each seed there; arrays, not maps: a sweep of
  // 100,000 configurations of one seed each would hold 200,000 maps
  const byConfig = new Map<string, { position: number; samples: SeedSample<T>[] }[]>();
  for (const s of samples) {
    let positions = byConfig.get(s.config);
    if (!positions) byConfig.set(s.config, positions = []);
    let i = positions.length;
    while (i > 0 && positions[i - 1]!.position > s.position) i--;
    let at = positions[i - 1];
    if (at?.position !== s.position) positions.splice(i, 0, at = { position: s.position, samples: [] });
    if (!at.samples.some((x) => x.seed === s.seed)) at.samples.push(s);
  }
  const points: ConfigPoint<T>[] = [];
  let partial = 0;
  const seedLists = new Map<string, number[]>(); // configurations of the same seeds share one list
  for (const [config, positions] of byConfig) {
    let all = [...new Set(positions.flatMap((p) => p.samples.map((x) => x.seed)))].sort((a, b) => a - b);
    const key = all.join(",");
    all = seedLists.get(key) ?? (seedLists.set(key, all), all);
    for (const { position, samples: at } of positions) {
      if (at.length < all.length) {
        partial++;
        continue;
      }
      const members = all.map((seed) => at.find((x) => x.seed === seed)!);
      const [sparsity, accuracy, test] = spreadsOf(
        [members.map((m) => m.sparsity), members.map((m) => m.accuracy), members.map((m) => m.test)],
        new Rng(seed, hash32(`${config}#${position}`)),
        resamples,
        level,
      );
      const p: ConfigPoint<T> = {
        config,
        position,
        seeds: all,
        members: members.map((m) => m.item),
        sparsity: sparsity!,
        accuracy: accuracy!,
        test: test!,
      };
      points.push(opts.row ? opts.row(p) : p);
    }
  }
  return { points, partial };
}

/** The configuration points not dominated on their mean sparsity and mean accuracy, by sparsity ascending. */
export function configFront<P extends ConfigPoint<unknown>>(points: readonly P[]): P[] {
  const nd = nonDominated(points.map((p) => ({ x: p.sparsity.mean, y: p.accuracy.mean })));
  return points.filter((_, i) => nd[i])
    .sort((a, b) => a.sparsity.mean - b.sparsity.mean || b.accuracy.mean - a.accuracy.mean);
}
