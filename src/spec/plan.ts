import { createHash } from "node:crypto";
import { Rng, RNG_STREAMS } from "../util/rng.ts";
import { TicketsweepError } from "../util/errors.ts";
import {
  gridPoints,
  keysFor,
  type ParamSet,
  type ParamValue,
  PlanContext,
  PlannedTrial,
  samplePoint,
  sweepIdOf,
  sweepMethods,
  tooManyTrialsMessage,
  type Trial,
  trialGroup,
  trialIdOf,
} from "./expand.ts";
import type { Parameter, SweepSpec } from "./schema.ts";

/** The trials of a plan: a {@link Plan} read by index, or a list. */
export type TrialList = Plan | readonly Trial[];

/** `trials` as a {@link Plan} of `spec` (a list is read as it is). */
export function planOf(spec: SweepSpec, sweepId: string, trials: TrialList): Plan {
  return trials instanceof Plan ? trials : Plan.fromList(spec, sweepId, trials);
}

/** A trial id as {@link trialIdOf} makes it: 12 lowercase hex digits (48 bits, exact in a float64). */
const ID_RE = /^[0-9a-f]{12}$/;

/** How the trials of a plan are enumerated before repeats are dropped: raw index → parameters and seed. */
interface Source {
  /** Raw trials (points × seeds), repeats included. */
  readonly raw: number;
  params(raw: number): ParamSet;
  seed(raw: number): number;
}

/**
 * A spec's plan, read by index: its trials in order (ids, parameters and seeds; {@link expandTrials} lists them as
 * objects), without a trial object kept per trial. Grid search decodes an index over each method's
 * grid points and the seeds (mixed radix, nothing stored per trial); random search keeps its draws as typed-array
 * columns (a value list's draw as its index). Each trial's id is kept as a 48-bit number (8 bytes a trial) in an
 * open-addressing table, so a result's trial is found (and a forged id refused: only an id of the plan is found)
 * without a string or an object per trial. A trial is made when asked for ({@link at}) and not kept.
 *
 * A plan from a stored list ({@link Plan.fromList}: `sweep.json` versions 1 and 2, adaptive proposals) reads the
 * list's trials.
 */
export class Plan implements Iterable<Trial> {
  /** How many trials. */
  readonly size: number;
  /** The hash of every id in order (`sha256` of the ids, one a line, first 16 hex digits). */
  readonly fingerprint: string;
  readonly #ctx: PlanContext;
  readonly #source: Source | null;
  readonly #list: readonly Trial[] | null;
  /** The raw index of each trial where a repeat was dropped (random search from a value list), else null. */
  readonly #rawOf: Uint32Array | null;
  /** Each trial's id as a number. */
  readonly #ids: Float64Array;
  /** Open addressing over {@link #ids}: slot → trial index + 1 (0: empty). */
  readonly #table: Int32Array;
  /** Ids that are not 12 hex digits (a list from an older version): id → index. */
  readonly #other: Map<string, number> | null;

  private constructor(
    readonly spec: SweepSpec,
    readonly sweepId: string,
    source: Source | null,
    list: readonly Trial[] | null,
  ) {
    this.#ctx = new PlanContext(spec);
    this.#source = source;
    this.#list = list;
    const raw = source ? source.raw : list!.length;
    let cap = 16;
    while (cap < 2 * raw) cap *= 2;
    const table = new Int32Array(cap);
    const ids = new Float64Array(raw);
    const rawOf = new Uint32Array(source ? raw : 0);
    let other: Map<string, number> | null = null;
    const hash = createHash("sha256");
    let n = 0;
    for (let r = 0; r < raw; r++) {
      const id = source ? trialIdOf(sweepId, source.params(r), source.seed(r)) : list![r]!.id;
      if (!ID_RE.test(id)) {
        // only a stored list can hold one; its ids are unique (checked when sweep.json was read)
        (other ??= new Map()).set(id, n);
        ids[n++] = -1;
        hash.update(id + "\n");
        continue;
      }
      const key = parseInt(id, 16);
      let slot = key % cap;
      let repeat = false;
      for (let at = table[slot]!; at !== 0; slot = (slot + 1) & (cap - 1), at = table[slot]!) {
        if (ids[at - 1] === key) {
          repeat = true;
          break;
        }
      }
      if (repeat) continue; // random search may draw the same point twice from a value list: the first is kept
      table[slot] = n + 1;
      if (source) rawOf[n] = r;
      ids[n++] = key;
      hash.update(id + "\n");
    }
    this.size = n;
    this.#ids = n === raw ? ids : ids.slice(0, n);
    this.#rawOf = source && n !== raw ? rawOf.slice(0, n) : null;
    this.#table = table;
    this.#other = other;
    this.fingerprint = hash.digest("hex").slice(0, 16);
    if (list && n !== raw) throw new TicketsweepError(`${sweepId}: the plan lists a trial id twice`);
  }

  /**
   * The plan of a grid or random search spec (an adaptive one plans nothing up front: size 0). `sweepId`: the id
   * of the spec as a run directory stored it, where a default added since would change the parsed spec's.
   * @throws {TicketsweepError} a spec over `limits.max_trials`, or a method whose configuration is invalid.
   */
  static of(spec: SweepSpec, sweepId = sweepIdOf(spec)): Plan {
    const tooMany = tooManyTrialsMessage(spec); // parseSpec refuses these; never start a runaway plan
    if (tooMany) throw new TicketsweepError(`${spec.name}: ${tooMany}`);
    const source = spec.search.strategy === "adaptive"
      ? { raw: 0, params: () => ({}), seed: () => 0 }
      : spec.search.strategy === "grid"
      ? gridSource(spec)
      : randomSource(spec);
    const plan = new Plan(spec, sweepId, source, null);
    // an invalid configuration throws here, not when a trial is published
    if (spec.search.strategy !== "adaptive") { for (const m of sweepMethods(spec)) plan.#ctx.base(m); }
    return plan;
  }

  /** A plan that reads a stored list of trials (`sweep.json` versions 1 and 2, adaptive proposals). */
  static fromList(spec: SweepSpec, sweepId: string, trials: readonly Trial[]): Plan {
    return new Plan(spec, sweepId, null, trials);
  }

  /** The id of trial `i`. */
  idAt(i: number): string {
    const key = this.#ids[i]!;
    return key >= 0 && !this.#list ? key.toString(16).padStart(12, "0") : this.#list![i]!.id;
  }

  /** The parameters of trial `i`, made now (without the rest of the trial). */
  paramsAt(i: number): ParamSet {
    if (this.#list) return this.#list[i]!.params;
    return this.#source!.params(this.#rawOf ? this.#rawOf[i]! : i);
  }

  /** The method trial `i` runs (its front's group), without making the trial. */
  groupAt(i: number): string {
    return this.#list ? trialGroup(this.#list[i]!) : this.#ctx.method(this.paramsAt(i));
  }

  /** The seed of trial `i`. */
  seedAt(i: number): number {
    if (this.#list) return this.#list[i]!.seed;
    return this.#source!.seed(this.#rawOf ? this.#rawOf[i]! : i);
  }

  /** Trial `i` (0 ≤ i < size), made now. */
  at(i: number): Trial {
    if (!(i >= 0 && i < this.size && Number.isInteger(i))) throw new RangeError(`trial ${i} of a plan of ${this.size}`);
    if (this.#list) return this.#list[i]!;
    const r = this.#rawOf ? this.#rawOf[i]! : i;
    const src = this.#source!;
    return new PlannedTrial(this.#ctx, this.sweepId, this.idAt(i), src.params(r), src.seed(r));
  }

  /** The index of the trial with id `id`, or -1 when none of the plan has it. */
  indexOf(id: string): number {
    if (!ID_RE.test(id)) return this.#other?.get(id) ?? -1;
    const key = parseInt(id, 16), cap = this.#table.length;
    for (
      let slot = key % cap, at = this.#table[slot]!;
      at !== 0;
      slot = (slot + 1) & (cap - 1), at = this.#table[slot]!
    ) {
      if (this.#ids[at - 1] === key) return at - 1;
    }
    return -1;
  }

  /** Whether a trial of the plan has id `id`. */
  has(id: string): boolean {
    return this.indexOf(id) >= 0;
  }

  /** The trial with id `id`, or undefined. */
  get(id: string): Trial | undefined {
    const i = this.indexOf(id);
    return i < 0 ? undefined : this.at(i);
  }

  /** {@link size}, as a list's length. */
  get length(): number {
    return this.size;
  }

  /** `f` of every trial, in order (each trial made for the call and not kept). */
  map<U>(f: (t: Trial, i: number) => U): U[] {
    const out = new Array<U>(this.size);
    for (let i = 0; i < this.size; i++) out[i] = f(this.at(i), i);
    return out;
  }

  /** Every id, in order. */
  *ids(): IterableIterator<string> {
    for (let i = 0; i < this.size; i++) yield this.idAt(i);
  }

  *[Symbol.iterator](): IterableIterator<Trial> {
    for (let i = 0; i < this.size; i++) yield this.at(i);
  }
}

/** Each method's grid: its parameters (name and points, in {@link keysFor}' order) and how many points. */
function gridSource(spec: SweepSpec): Source {
  const methodSwept = spec.parameters["method"] !== undefined;
  const seeds = spec.seeds;
  const segments = sweepMethods(spec).map((m) => {
    const dims = [...keysFor(spec, m)].map(([name, key]) => ({ name, points: gridPoints(spec.parameters[key]!) }));
    return { method: m, dims, points: dims.reduce((n, d) => n * d.points.length, 1) };
  });
  const points = segments.reduce((n, s) => n + s.points, 0);
  return {
    raw: points * seeds.length,
    seed: (r) => seeds[r % seeds.length]!,
    params(r) {
      let point = Math.floor(r / seeds.length), s = 0;
      while (point >= segments[s]!.points) point -= segments[s++]!.points;
      const seg = segments[s]!;
      // the first parameter (in keysFor's order) varies slowest, the last fastest
      const idx = new Array<number>(seg.dims.length);
      for (let k = seg.dims.length - 1; k >= 0; k--) {
        const len = seg.dims[k]!.points.length;
        idx[k] = point % len;
        point = Math.floor(point / len);
      }
      const out: ParamSet = methodSwept ? { method: seg.method } : {};
      seg.dims.forEach((d, k) => (out[d.name] = d.points[idx[k]!]!));
      return out;
    },
  };
}

/**
 * Random search's draws, made once in order from `search.seed`: per sample its method (an
 * index) and each parameter's draw in a column (a value list's as the value's index, a range's as the number).
 */
function randomSource(spec: SweepSpec): Source {
  const methodSwept = spec.parameters["method"] !== undefined;
  const methods = sweepMethods(spec);
  const seeds = spec.seeds;
  const dims = methods.map((m) =>
    [...keysFor(spec, m)].map(([name, key]) => ({ name, p: spec.parameters[key]! as Parameter }))
  );
  const width = Math.max(0, ...dims.map((d) => d.length));
  const samples = spec.search.samples!;
  const methodOf = new Uint16Array(samples);
  const draws = new Float64Array(samples * width);
  const rng = new Rng(spec.search.seed, RNG_STREAMS.randomSearch);
  for (let i = 0; i < samples; i++) {
    const m = rng.int(methods.length);
    methodOf[i] = m;
    dims[m]!.forEach(({ p }, k) => {
      // samplePoint's draw: a value list's index (one rng.int, as samplePoint takes), else the number
      draws[i * width + k] = p.values ? rng.int(p.values.length) : samplePoint(p, rng) as number;
    });
  }
  return {
    raw: samples * seeds.length,
    seed: (r) => seeds[r % seeds.length]!,
    params(r) {
      const i = Math.floor(r / seeds.length), m = methodOf[i]!;
      const out: ParamSet = methodSwept ? { method: methods[m]! } : {};
      dims[m]!.forEach(({ name, p }, k) => {
        const v = draws[i * width + k]!;
        out[name] = p.values ? p.values[v]! as ParamValue : v;
      });
      return out;
    },
  };
}
