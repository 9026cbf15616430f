export { loadSpec, parseSpec } from "./load.ts";
export { describeParams, expandTrials, gridPoints, resolveTrialConfig, sweepIdOf, trialIdOf } from "./expand.ts";
export type { ParamSet, ParamValue, Trial } from "./expand.ts";
export { BACKENDS, PARAMETER_NAMES, SweepSpecSchema, TrialConfigSchema } from "./schema.ts";
export type { Backend, SweepSpec, TrialConfig } from "./schema.ts";
