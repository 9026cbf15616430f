import { z } from "zod";

const int = () => z.number().int();
const posInt = () => z.number().int().positive();

/** The dataset a sweep trains on. */
export const DatasetSchema = z.object({
  name: z.enum(["mnist", "synthetic"]).default("mnist"),
  train: posInt().default(8000),
  test: posInt().default(2000),
  split_seed: int().default(0),
}).strict();

/** The frozen network: architecture, widths, initialiser and the seed of its weights. */
export const ModelSchema = z.object({
  architecture: z.enum(["mlp"]).default("mlp"),
  widths: z.array(posInt()).default([300, 100]),
  init: z.enum(["uniform", "kaiming_normal", "signed_constant"]).default("uniform"),
  weight_seed: int().default(0),
}).strict();

/** The masking method and its fixed settings (Bernoulli gates, SCIENCE.md §1). */
export const MethodSchema = z.object({
  name: z.enum(["gates"]).default("gates"),
  lambda: z.number().nonnegative().default(1e-4),
  sigma: z.number().positive().default(0.5),
  mu_init: z.number().default(0.5),
  penalty: z.enum(["sum", "mean"]).default("sum"),
  threshold: z.number().default(0),
}).strict();

/** Training settings shared by all trials unless a parameter overrides them. */
export const TrainingSchema = z.object({
  epochs: posInt().default(2),
  batch_size: posInt().default(128),
  optimizer: z.enum(["adam", "sgd"]).default("adam"),
  lr: z.number().positive().default(0.05),
  momentum: z.number().min(0).max(1).default(0.9),
}).strict();

export const BACKENDS = ["auto", "blas", "wasm", "cpu", "js"] as const;
export const BackendSchema = z.enum(BACKENDS);

/** Where each sweepable parameter lands in a trial's configuration. */
export const PARAMETER_TARGETS = {
  lambda: "method",
  sigma: "method",
  mu_init: "method",
  penalty: "method",
  threshold: "method",
  lr: "training",
  epochs: "training",
  batch_size: "training",
  optimizer: "training",
  momentum: "training",
} as const;
export type ParameterName = keyof typeof PARAMETER_TARGETS;
export const PARAMETER_NAMES = Object.keys(PARAMETER_TARGETS) as ParameterName[];

/** One swept parameter: either a list of `values`, or a range `{min, max, scale}` with `count` for grid search. */
export const ParameterSchema = z.object({
  values: z.array(z.union([z.number(), z.string(), z.boolean()])).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  scale: z.enum(["linear", "log"]).optional(),
  count: posInt().optional(),
}).strict().superRefine((p, ctx) => {
  const isRange = p.min !== undefined || p.max !== undefined;
  if (p.values !== undefined) {
    if (isRange || p.scale !== undefined || p.count !== undefined) {
      ctx.addIssue({ code: "custom", message: "give either `values: [...]` or a range `{min, max}`, not both" });
    }
    if (p.values.length === 0) {
      ctx.addIssue({ code: "custom", path: ["values"], message: "expected at least one value, found an empty list" });
    }
    return;
  }
  if (p.min === undefined || p.max === undefined) {
    ctx.addIssue({
      code: "custom",
      message: "expected `values: [...]` or both `min` and `max`, found " +
        (isRange ? `only ${p.min === undefined ? "max" : "min"}` : "neither"),
    });
    return;
  }
  if (p.min > p.max) {
    ctx.addIssue({ code: "custom", path: ["min"], message: `expected min <= max, found min ${p.min} > max ${p.max}` });
  }
  if (p.scale === "log" && p.min <= 0) {
    ctx.addIssue({ code: "custom", path: ["min"], message: `a log scale needs min > 0, found ${p.min}` });
  }
});
export type Parameter = z.infer<typeof ParameterSchema>;

export const SearchSchema = z.object({
  strategy: z.enum(["grid", "random"]).default("grid"),
  samples: posInt().optional(),
  seed: int().default(0),
}).strict();

export const ObjectiveSchema = z.object({
  name: z.enum(["sparsity", "accuracy"]),
  goal: z.enum(["maximize"]).default("maximize"),
}).strict();

/** Sweep spec, version 1. */
export const SweepSpecSchema = z.object({
  version: z.literal(1).default(1),
  name: z.string().regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/,
    "expected a name of letters, digits, '-' and '_' (at most 64, starting with a letter or digit)",
  ),
  description: z.string().optional(),
  dataset: DatasetSchema.default({}),
  model: ModelSchema.default({}),
  method: MethodSchema.default({}),
  parameters: z.record(z.string(), ParameterSchema).default({}),
  search: SearchSchema.default({}),
  seeds: z.array(int()).min(1, "expected at least one seed").default([0]),
  training: TrainingSchema.default({}),
  objectives: z.array(ObjectiveSchema).min(1).default([{ name: "sparsity", goal: "maximize" }, {
    name: "accuracy",
    goal: "maximize",
  }]),
  backend: BackendSchema.default("auto"),
  max_attempts: posInt().max(20).default(3),
}).strict().superRefine((s, ctx) => {
  const ranged = Object.entries(s.parameters).filter(([, p]) => p.values === undefined);
  if (s.search.strategy === "grid") {
    for (const [name, p] of ranged) {
      if (p.count === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["parameters", name, "count"],
          message: "a range in a grid search needs `count` (how many points), found none",
        });
      }
    }
  } else if (s.search.samples === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "samples"],
      message: "random search needs `samples` (how many trials to draw), found none",
    });
  }
});

export type SweepSpec = z.infer<typeof SweepSpecSchema>;
export type DatasetConfig = z.infer<typeof DatasetSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type MethodConfig = z.infer<typeof MethodSchema>;
export type TrainingConfig = z.infer<typeof TrainingSchema>;
export type Backend = z.infer<typeof BackendSchema>;

/** Everything a worker needs to run one trial: the spec's settings with the trial's parameters applied. */
export const TrialConfigSchema = z.object({
  dataset: DatasetSchema,
  model: ModelSchema,
  method: MethodSchema,
  training: TrainingSchema,
  backend: BackendSchema,
  seed: int(),
}).strict();
export type TrialConfig = z.infer<typeof TrialConfigSchema>;
