import { Rng } from "../util/rng.ts";
import { stableId } from "../util/hash.ts";
import {
  type Parameter,
  PARAMETER_TARGETS,
  type ParameterName,
  type SweepSpec,
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

/** The id of a sweep: its name and a hash of its validated spec, so a re-run of the same spec finds its runs. */
export function sweepIdOf(spec: SweepSpec): string {
  return `${spec.name}-${stableId(spec, 8)}`;
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
function roundSig(x: number): number {
  return Number(x.toPrecision(6));
}

/** The spec's settings with one trial's parameters applied, validated. */
export function resolveTrialConfig(spec: SweepSpec, params: ParamSet, seed: number): TrialConfig {
  const method: Record<string, unknown> = { ...spec.method };
  const training: Record<string, unknown> = { ...spec.training };
  for (const [name, value] of Object.entries(params)) {
    const target = PARAMETER_TARGETS[name as ParameterName];
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
  });
}

/** Expands a spec into its trials: the cartesian product (grid) or N seeded samples (random), times the seeds. */
export function expandTrials(spec: SweepSpec): Trial[] {
  const sweepId = sweepIdOf(spec);
  const names = Object.keys(spec.parameters).sort();
  let sets: ParamSet[];
  if (spec.search.strategy === "grid") {
    sets = [{}];
    for (const name of names) {
      const pts = gridPoints(spec.parameters[name]!);
      sets = sets.flatMap((s) => pts.map((v) => ({ ...s, [name]: v })));
    }
  } else {
    const rng = new Rng(spec.search.seed, 1);
    sets = [];
    for (let i = 0; i < spec.search.samples!; i++) {
      const s: ParamSet = {};
      for (const name of names) s[name] = samplePoint(spec.parameters[name]!, rng);
      sets.push(s);
    }
  }
  const seen = new Set<string>();
  const trials: Trial[] = [];
  for (const params of sets) {
    for (const seed of spec.seeds) {
      const id = trialIdOf(sweepId, params, seed);
      if (seen.has(id)) continue; // random search may draw the same point twice from a value list
      seen.add(id);
      trials.push({ id, sweepId, params, seed, config: resolveTrialConfig(spec, params, seed) });
    }
  }
  return trials;
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
