import type { Rng } from "../util/rng.ts";
import { stableId } from "../util/hash.ts";
import { Plan } from "./plan.ts";
import {
  fmtCount,
  limitsOf,
  METHOD_FIELDS,
  type MethodName,
  type Parameter,
  PARAMETER_TARGETS,
  type ParameterName,
  type SweepSpec,
  TRAINING_DEFAULTS,
  type TrialConfig,
  TrialConfigSchema,
} from "./schema.ts";

export type ParamValue = number | string | boolean;
export type ParamSet = Record<string, ParamValue>;

/** One unit of work: a configuration with its parameters and seed, and an id stable across runs. */
export interface Trial {
  id: string;
  sweepId: string;
  params: ParamSet;
  seed: number;
  config: TrialConfig;
}

/**
 * The id of a sweep: its name and a hash of its validated spec, so a re-run of the same spec finds its runs.
 * `limits` bound what may run but do not change it, so raising one keeps the id.
 */
export function sweepIdOf(spec: SweepSpec): string {
  return `${spec.name}-${stableId({ ...spec, limits: undefined }, 8)}`;
}

/** The id of a trial: a hash of the sweep id, the trial's parameters and its seed. */
export function trialIdOf(sweepId: string, params: ParamSet, seed: number): string {
  return stableId({ sweep: sweepId, params, seed });
}

/**
 * The points of one parameter for grid search: its values, or `count` points on its range.
 * A log scale spaces them evenly in log10; a one-point range is its min.
 */
export function gridPoints(p: Parameter): ParamValue[] {
  if (p.values) return p.values;
  const { min, max } = p as { min: number; max: number };
  const count = p.count ?? 1;
  if (count === 1) return [min];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = i / (count - 1);
    out.push(
      p.scale === "log"
        ? roundSig(10 ** (Math.log10(min) + t * (Math.log10(max) - Math.log10(min))))
        : roundSig(min + t * (max - min)),
    );
  }
  return out;
}

/** One random draw of a parameter. */
export function samplePoint(p: Parameter, rng: Rng): ParamValue {
  if (p.values) return p.values[rng.int(p.values.length)]!;
  const { min, max } = p as { min: number; max: number };
  const u = rng.uniform();
  return p.scale === "log"
    ? roundSig(10 ** (Math.log10(min) + u * (Math.log10(max) - Math.log10(min))))
    : roundSig(min + u * (max - min));
}

/** Rounds to 6 significant digits, so that ids and reports do not depend on float noise. */
export function roundSig(x: number): number {
  return Number(x.toPrecision(6));
}

/** A parameter key split into its optional method scope and its name: `cs.lambda` is `lambda` for cs only. */
export function parseParameterKey(key: string): { scope?: MethodName; name: string } {
  const dot = key.indexOf(".");
  if (dot < 0) return { name: key };
  return { scope: key.slice(0, dot) as MethodName, name: key.slice(dot + 1) };
}

/** Whether a sweepable parameter means anything to a method (training settings apply to all). */
export function parameterAppliesTo(name: string, method: MethodName): boolean {
  const target = PARAMETER_TARGETS[name as ParameterName];
  if (target === "training") return true;
  return name !== "method" && (METHOD_FIELDS[method]?.includes(name) ?? false);
}

/** The methods a sweep runs: the values of `parameters.method`, else `method.name`. */
export function sweepMethods(spec: SweepSpec): MethodName[] {
  const p = spec.parameters["method"];
  if (p?.values) return [...new Set(p.values.map(String))] as MethodName[];
  return [spec.method.name];
}

/** The parameter keys that apply to method `m`, by plain name (a scoped key wins over the unscoped one). */
export function keysFor(spec: SweepSpec, m: MethodName): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of Object.keys(spec.parameters).sort()) {
    const { scope, name } = parseParameterKey(key);
    if (name === "method") continue;
    if (scope === m || (scope === undefined && !out.has(name) && parameterAppliesTo(name, m))) out.set(name, key);
  }
  return out;
}

/**
 * The spec's settings with one trial's parameters applied, validated. Training settings the spec leaves out
 * come from the method's defaults.
 */
export function resolveTrialConfig(spec: SweepSpec, params: ParamSet, seed: number): TrialConfig {
  const method: Record<string, unknown> = { ...spec.method };
  if (typeof params["method"] === "string") method["name"] = params["method"];
  const defaults = TRAINING_DEFAULTS[method["name"] as MethodName] ?? TRAINING_DEFAULTS.gates;
  const given = Object.fromEntries(Object.entries(spec.training).filter(([, v]) => v !== undefined));
  const training: Record<string, unknown> = { ...defaults, ...given };
  for (const [name, value] of Object.entries(params)) {
    const target = PARAMETER_TARGETS[name as ParameterName];
    if (name === "method") continue;
    if (target === "method") method[name] = value;
    else if (target === "training") training[name] = value;
  }
  return TrialConfigSchema.parse({
    dataset: spec.dataset,
    model: spec.model,
    method,
    training,
    backend: spec.backend,
    seed,
    tickets: spec.tickets,
  });
}

/** What the trials of one plan share: the spec, and each method's resolved configuration without parameters. */
export class PlanContext {
  readonly #bases = new Map<string, TrialConfig>();
  constructor(readonly spec: SweepSpec) {}

  /** The method a trial of this plan runs (its `method` parameter, else the spec's). */
  method(params: ParamSet): string {
    return typeof params["method"] === "string" ? params["method"] : this.spec.method.name;
  }

  /**
   * The validated configuration of `method` with no parameter applied, computed once per method. Its `dataset`,
   * `model` and `tickets` are frozen: every trial's configuration shares them.
   */
  base(method: string): TrialConfig {
    let b = this.#bases.get(method);
    if (!b) {
      b = resolveTrialConfig(this.spec, { method }, 0);
      deepFreeze(b.dataset);
      deepFreeze(b.model);
      if (b.tickets) deepFreeze(b.tickets);
      this.#bases.set(method, b);
    }
    return b;
  }

  /**
   * {@link resolveTrialConfig} without validating again: the method's base with the trial's parameters applied
   * where they land, as resolveTrialConfig does. Every value of every parameter was checked where it lands when
   * the spec was parsed (checkParameterValues in load.ts), and no schema of a parameter's target transforms it.
   */
  config(params: ParamSet, seed: number): TrialConfig {
    const base = this.base(this.method(params));
    let method: Record<string, unknown> | undefined, training: Record<string, unknown> | undefined;
    for (const [name, value] of Object.entries(params)) {
      if (name === "method") continue;
      const target = PARAMETER_TARGETS[name as ParameterName];
      if (target === "method") (method ??= { ...base.method })[name] = value;
      else if (target === "training") (training ??= { ...base.training })[name] = value;
    }
    return {
      ...base,
      method: (method ?? { ...base.method }) as TrialConfig["method"],
      training: (training ?? { ...base.training }) as TrialConfig["training"],
      seed,
    };
  }
}

function deepFreeze(o: unknown): void {
  if (o === null || typeof o !== "object" || Object.isFrozen(o)) return;
  Object.freeze(o);
  for (const v of Object.values(o)) deepFreeze(v);
}

/**
 * A trial of a plan, compact: its id, parameters and seed. Its {@link Trial.config} is resolved from the plan's spec
 * when asked for (publishing, a ticket's manifest) and not kept. A {@link Plan} makes one when a trial is read and
 * keeps none; `sweep.json` versions 1 and 2 listed them.
 */
export class PlannedTrial implements Trial {
  readonly id: string;
  readonly sweepId: string;
  readonly params: ParamSet;
  readonly seed: number;
  readonly #plan: PlanContext;

  constructor(plan: PlanContext, sweepId: string, id: string, params: ParamSet, seed: number) {
    this.#plan = plan;
    this.sweepId = sweepId;
    this.id = id;
    this.params = params;
    this.seed = seed;
  }

  get config(): TrialConfig {
    return this.#plan.config(this.params, this.seed);
  }

  /** The method it runs, without resolving its configuration. */
  get group(): string {
    return this.#plan.method(this.params);
  }

  /** Its planned epochs, without resolving its configuration. */
  get epochs(): number {
    const e = this.params["epochs"];
    return typeof e === "number" ? e : this.#plan.base(this.group).training.epochs;
  }

  toJSON(): { id: string; sweepId: string; params: ParamSet; seed: number } {
    return { id: this.id, sweepId: this.sweepId, params: this.params, seed: this.seed };
  }
}

/** A trial's method (its front's group), cheap for a {@link PlannedTrial}. */
export function trialGroup(t: Trial): string {
  return t instanceof PlannedTrial ? t.group : t.config.method.name;
}

/** A trial's planned epochs, cheap for a {@link PlannedTrial}. */
export function trialEpochs(t: Trial): number {
  return t instanceof PlannedTrial ? t.epochs : t.config.training.epochs;
}

/**
 * The compact trials of a spec's plan from their ids, parameters and seeds (as `sweep.json` version 2 lists them): their
 * configurations are resolved from `spec` when asked for.
 */
export function plannedTrials(
  spec: SweepSpec,
  sweepId: string,
  trials: Iterable<{ id: string; params: ParamSet; seed: number }>,
): PlannedTrial[] {
  const plan = new PlanContext(spec);
  const out: PlannedTrial[] = [];
  for (const t of trials) out.push(new PlannedTrial(plan, sweepId, t.id, t.params, t.seed));
  return out;
}

/**
 * How many trials a spec expands to, counted without expanding it: per method, the product of the grid points
 * of the parameters that apply to it (or the random samples), times the seeds. An upper bound for random
 * search, where a draw that repeats an earlier one is dropped.
 *
 * @returns the count and a readable breakdown, e.g. `gates: lambda 8 × lr 3 points; × 2 seeds`.
 */
export function trialCount(spec: SweepSpec): { trials: number; detail: string } {
  const seeds = `× ${fmtCount(spec.seeds.length)} seed${spec.seeds.length === 1 ? "" : "s"}`;
  if (spec.search.strategy === "adaptive") {
    const epochs = spec.search.budget_epochs;
    if (spec.search.budget === undefined && epochs !== undefined) {
      // at most one trial per trial-epoch, and never over limits.max_trials
      const trials = Math.min(epochs, limitsOf(spec).max_trials);
      return { trials, detail: `adaptive search, a budget of ${fmtCount(epochs)} trial-epochs` };
    }
    const budget = spec.search.budget ?? 0;
    return { trials: budget, detail: `adaptive search, a budget of ${fmtCount(budget)} trials` };
  }
  if (spec.search.strategy !== "grid") {
    const samples = spec.search.samples ?? 0;
    return { trials: samples * spec.seeds.length, detail: `${fmtCount(samples)} samples ${seeds}` };
  }
  let points = 0;
  const parts: string[] = [];
  for (const m of sweepMethods(spec)) {
    let n = 1;
    const factors: string[] = [];
    for (const [name, key] of keysFor(spec, m)) {
      const p = spec.parameters[key]!;
      const k = p.values?.length ?? p.count ?? 1;
      n *= k;
      factors.push(`${name} ${fmtCount(k)}`);
    }
    points += n;
    parts.push(`${m}: ${factors.length ? factors.join(" × ") : "1"} point${n === 1 ? "" : "s"}`);
  }
  return { trials: points * spec.seeds.length, detail: `${parts.join(", ")}; ${seeds}` };
}

/** The message for a sweep with more trials than its `limits.max_trials`. */
export function tooManyTrialsMessage(spec: SweepSpec): string | undefined {
  const { trials, detail } = trialCount(spec);
  const limit = limitsOf(spec).max_trials;
  if (trials <= limit) return undefined;
  return `the sweep has ${fmtCount(trials)} trials (${detail}), more than limits.max_trials ` +
    `(${fmtCount(limit)}); shrink the grid or the seeds, or raise the limit with \`limits: { max_trials: N }\``;
}

/**
 * Expands a spec into its trials, as a list: its {@link Plan} (src/spec/plan.ts) made into one trial object each. Per
 * method the sweep runs, the parameters that apply to it are crossed (grid) or drawn N times with a seed (random);
 * then every seed. Parameters that do not apply to a method are left out of its trials, so no two trials differ only
 * in a setting their method ignores. The coordinator reads the plan by index instead.
 */
export function expandTrials(spec: SweepSpec): PlannedTrial[] {
  return Plan.of(spec).map((t) => t as PlannedTrial);
}

/** A short human label of a trial's parameters, e.g. `lambda=0.001 lr=0.05 seed=0`. */
export function describeParams(params: ParamSet, seed: number): string {
  const fmt = (v: ParamValue) =>
    typeof v !== "number"
      ? String(v)
      : v !== 0 && Math.abs(v) < 1e-3
      ? Number(v.toPrecision(3)).toExponential()
      : String(Number(v.toPrecision(3)));
  const parts = Object.keys(params).sort().map((k) => `${k}=${fmt(params[k]!)}`);
  parts.push(`seed=${seed}`);
  return parts.join(" ");
}
