import { z } from "zod";
import type { FusedKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";

/**
 * A mask-learning method over a frozen network. The trainer calls `beginEpoch` at the start of each epoch,
 * then per step `effectiveWeights` (training mode: noise drawn), the network's forward/backward, and
 * `applyGradients` with d(task loss)/d(effective weights); the method adds its penalty's gradient and
 * updates its own parameters. The frozen weights are never written.
 */
export interface MaskMethod {
  readonly name: string;
  /** True for the dense reference: it trains the weights themselves and yields no ticket. */
  readonly trainsWeights: boolean;
  /** The learned parameters (one buffer per masked layer; the weights themselves for dense), for tests and tools. */
  readonly params: Float32Array[];
  /**
   * Straight-through methods only: writes the smooth forward whose exact gradient `applyGradients` follows
   * (edge-popup `|s|·W`, supermask `sigmoid(s)·W`), so that it can be checked by finite differences.
   */
  relaxedWeights?(weff: Float32Array[]): void;
  /** Epoch schedules (learning rate, temperature, rounds); `epoch` counts from 0. */
  beginEpoch(epoch: number, epochs: number): void;
  /** Writes the effective training weights (e.g. `W ⊙ z`) of every masked layer into `weff`. */
  effectiveWeights(weff: Float32Array[]): void;
  /** Consumes d(task loss)/d(weff) of the last `effectiveWeights` call and takes one optimiser step. */
  applyGradients(dweff: Float32Array[]): void;
  /** The current value of the sparsity penalty term (already multiplied by lambda). */
  penalty(): number;
  /** The binary ticket of layer `l`: 1 keeps a weight. */
  binaryMask(l: number): Uint8Array;
  /** Writes the deterministic soft weights (test gates; trained weights for dense); false when there are none. */
  softWeights(weff: Float32Array[]): boolean;
  /**
   * The method's ticket rule at another cut (ticket ladders): what a cut value means, the value of its own
   * ticket, and the mask of layer `l` at cut `c` (the same rule `binaryMask` applies at `own`). Absent for dense.
   */
  readonly cuts?: CutRule;
}

/** How a method's learned mask parameters are cut into a ticket (see `src/train/ladder.ts`). */
export interface CutRule {
  /** `test_gate`, `s`: keep iff the value is above the cut; `keep_fraction`: keep the top fraction by |score|. */
  readonly rule: "test_gate" | "s" | "keep_fraction";
  /** The cut of the trial's own ticket (its threshold, 0, or k). */
  readonly own: number;
  /** The mask of layer `l` at cut `c`. */
  mask(l: number, c: number): Uint8Array;
  /** Threshold rules: the per-weight values the cut is compared with (layer `l`), for choosing cuts. */
  values?(l: number): Float32Array;
}

/** Writes `W ⊙ mask` for every masked layer. */
export function maskedWeights(net: FrozenNet, masks: Uint8Array[], weff: Float32Array[]): void {
  net.maskedParams.forEach((layer, l) => {
    const w = layer.w, m = masks[l]!, out = weff[l]!;
    for (let i = 0; i < w.length; i++) out[i] = m[i] ? w[i]! : 0;
  });
}

/** The optimiser a method trains with unless the spec says otherwise (docs/science.md, "Optimiser defaults"). */
export interface TrainingDefaults {
  optimizer: "adam" | "sgd";
  lr: number;
  momentum: number;
  weight_decay: number;
  schedule: "constant" | "cosine";
}

/** What a method's factory gets: the frozen net, its own settings (typed, defaults filled), training, draws. */
export interface MethodContext<C> {
  net: FrozenNet;
  config: C;
  training: TrainingConfig;
  rng: Rng;
  /** Native kernels when they could be built (a method finds its own by its registration handle). */
  kernels: FusedKernels | null;
}

/** Settings shared by several methods: one declaration each, so that the flat spec field means one thing. */
export const SHARED_FIELDS = {
  /** Weight of the sparsity penalty. */
  lambda: z.number().finite().nonnegative().default(1e-4),
  /** Penalty over all gates summed, or their mean. */
  penalty: z.enum(["sum", "mean"]).default("sum"),
  /** One gate per weight, or per output neuron / channel (structured). */
  granularity: z.enum(["weight", "neuron"]).default("weight"),
  /** A weight is kept iff its deterministic test gate is above this. */
  threshold: z.number().finite().min(0).max(1).default(0),
} as const;

/**
 * A mask method, declared in one place (its module under `src/train/masks/`, which exports it as `method`; the
 * registry finds it there): its name, its spec fields with types and defaults (the spec schema, the sweepable
 * parameters and the report's settings are derived from them), its optimiser defaults, its ticket ladder rule,
 * its state's memory, and its factory. Its native kernels, if any, register by name next to it
 * (`registerKernels` in `src/engine/native.ts`) as an optional faster path of the same loops.
 */
export interface MethodDefinition<F extends z.ZodRawShape = z.ZodRawShape> {
  /** The spec's `method.name`. */
  readonly name: string;
  /** One line for listings (README, messages). */
  readonly summary: string;
  /** Its settings, flat in the spec's `method:` block; a field several methods read comes from {@link SHARED_FIELDS}. */
  readonly fields: F;
  /**
   * True for the methods that existed before the registry: their fields (with defaults) appear in every trial's
   * configuration, so that no sweep id changed. A method added later leaves it off: its fields appear, with
   * their defaults, only in configurations that run it.
   */
  readonly inEveryConfig?: boolean;
  readonly training: TrainingDefaults;
  /** How its ticket ladder cuts (`src/train/ladder.ts`); null when it yields no ticket (dense). */
  readonly ladder: CutRule["rule"] | null;
  /**
   * Per-unit float32 buffers it keeps besides the frozen weights (optimiser moments included), and whether a
   * unit is a weight or an output row (structured gates), for the worker's memory estimate.
   */
  memory(config: z.infer<z.ZodObject<F>>, training: TrainingConfig): { floats: number; per: "weight" | "row" };
  create(ctx: MethodContext<z.infer<z.ZodObject<F>>>): MaskMethod;
}

/** A method definition with its field types checked: `export const method = defineMethod({...})`. */
export function defineMethod<F extends z.ZodRawShape>(def: MethodDefinition<F>): MethodDefinition<F> {
  return def;
}

/** Optimiser moments per parameter: Adam's two, SGD's momentum. */
export function optimizerFloats(training: TrainingConfig): number {
  return training.optimizer === "adam" ? 2 : 1;
}

/** A method's own settings from a partial, flat `method:` block (other keys ignored), typed, defaults filled. */
export function settingsOf<F extends z.ZodRawShape>(
  def: MethodDefinition<F>,
  given: Record<string, unknown> = {},
): z.infer<z.ZodObject<F>> {
  return z.object(def.fields).parse(given);
}
