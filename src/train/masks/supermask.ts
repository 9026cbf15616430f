import { z } from "zod";
import { fn, type FusedKernels, registerKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { GateLayout } from "./gate_layout.ts";
import { sigmoidF32 } from "../float32.ts";
import { type CutRule, defineMethod, type MaskMethod, optimizerFloats } from "./method.ts";
import { type AdamStep, adamStepOf, createOptimizer, type ElementOptimizer } from "./optimizer.ts";

const f = Math.fround;

/** Supermask's settings. */
const FIELDS = {
  /** The initial mask score of every weight (the reference code's `sigmoid_bias`): keep probability sigmoid(it). */
  mask_init: z.number().finite().default(0),
};
export type SupermaskConfig = z.infer<z.ZodObject<typeof FIELDS>>;

/** Supermask's native kernels (supermask.c). */
export interface SupermaskKernels {
  /** `p = sigmoid(s)`, the Bernoulli draws (state advanced) and `weff = m ? w : 0`. */
  forward(s: Float32Array, w: Float32Array, p: Float32Array, weff: Float32Array, rng: Uint32Array): void;
  /** The straight-through gradient on the scores, `g·w·p·(1 − p)`. */
  grad(grad: Float32Array, g: Float32Array, w: Float32Array, p: Float32Array): void;
  /** The same gradient and an Adam step on the scores in one pass (as the optimiser's step, same bits). */
  adam(s: Float32Array, g: Float32Array, w: Float32Array, p: Float32Array, step: AdamStep): void;
}

const NATIVE = registerKernels<SupermaskKernels>({
  name: "supermask",
  source: new URL("./supermask.c", import.meta.url),
  symbols: {
    ts_supermask_forward: fn("bbbb i b"),
    ts_supermask_grad: fn("bbbb i"),
    ts_supermask_adam: fn("bbbbbb i ffff"),
  },
  bind: (k) => ({
    forward: (s, w, p, weff, st) => k.ts_supermask_forward!(s, w, p, weff, s.length, st),
    grad: (grad, g, w, p) => k.ts_supermask_grad!(grad, g, w, p, grad.length),
    adam: (s, g, w, p, a) => k.ts_supermask_adam!(s, g, w, p, a.m1, a.m2, s.length, a.lr, a.wd, a.c1, a.c2),
  }),
});

/**
 * Supermask (Zhou, Lan, Liu, Yosinski 2019, "Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask"):
 * weights frozen, one score `s` per weight, initialised at `mask_init`; every step samples the mask
 * `m ~ Bernoulli(sigmoid(s))` afresh and trains on `W ⊙ m`; the backward pass is straight-through (the
 * reference's `m + sigmoid(s) − stop_gradient(sigmoid(s))`): d(loss)/d(s) = d(loss)/d(m)·sigmoid'(s), with
 * d(loss)/d(m) = g·W. No sparsity penalty: the sparsity is what the task leaves. Ticket: the expected mask
 * rounded, `sigmoid(s) > 0.5`, i.e. `s > 0` (the reference evaluates sampled masks, or this rounding with its
 * `--round_mask`); its ladder cuts `s` higher. Soft weights: `sigmoid(s)·W`, the expected mask.
 */
export class Supermask implements MaskMethod {
  readonly name = "supermask";
  readonly trainsWeights = false;
  readonly s: Float32Array[];
  readonly #net: FrozenNet;
  readonly #layout: GateLayout;
  readonly #p: Float32Array[];
  readonly #g: Float32Array[];
  readonly #rng: Rng;
  readonly #opt: ElementOptimizer;
  readonly #kernels: SupermaskKernels | null;

  constructor(net: FrozenNet, m: SupermaskConfig, training: TrainingConfig, rng: Rng, kernels?: FusedKernels | null) {
    this.#net = net;
    this.#rng = rng;
    const layout = this.#layout = new GateLayout(net, "weight");
    this.s = layout.counts.map((n) => new Float32Array(n).fill(m.mask_init));
    this.#p = layout.buffers();
    this.#g = layout.buffers();
    this.#opt = createOptimizer(training, layout.counts, kernels);
    this.#kernels = NATIVE.of(kernels);
  }

  get params(): Float32Array[] {
    return this.s;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    this.#net.maskedParams.forEach((layer, l) => {
      const s = this.s[l]!, p = this.#p[l]!, w = layer.w, out = weff[l]!;
      if (this.#kernels) return this.#kernels.forward(s, w, p, out, this.#rng.s);
      for (let i = 0; i < s.length; i++) p[i] = sigmoidF32(s[i]!);
      for (let i = 0; i < s.length; i++) out[i] = this.#rng.uniform() < p[i]! ? w[i]! : 0;
    });
  }

  /** The straight-through estimator's smooth forward: `sigmoid(s)·W` (the gradient the scores get is its own). */
  relaxedWeights(weff: Float32Array[]): void {
    this.softWeights(weff);
  }

  applyGradients(dweff: Float32Array[]): void {
    this.#opt.begin();
    this.#net.maskedParams.forEach((layer, l) => {
      const p = this.#p[l]!, w = layer.w, g = dweff[l]!, grad = this.#g[l]!;
      const adam = this.#kernels && adamStepOf(this.#opt, l);
      if (adam) return this.#kernels!.adam(this.s[l]!, g, w, p, adam);
      if (this.#kernels) this.#kernels.grad(grad, g, w, p);
      else for (let i = 0; i < p.length; i++) grad[i] = f(f(f(g[i]! * w[i]!) * p[i]!) * f(1 - p[i]!));
      this.#opt.step(l, this.s[l]!, grad);
    });
  }

  penalty(): number {
    return 0;
  }

  binaryMask(l: number): Uint8Array {
    return this.cuts.mask(l, 0);
  }

  /** Ticket ladder: a threshold on s; keep iff `s > c` (the own ticket: c = 0, keep probability above one half). */
  readonly cuts: CutRule = {
    rule: "s",
    own: 0,
    mask: (l, c) => this.#layout.mask(l, (j) => this.s[l]![j]! > c),
    values: (l) => this.s[l]!,
  };

  softWeights(weff: Float32Array[]): boolean {
    this.#net.maskedParams.forEach((layer, l) => {
      const s = this.s[l]!, w = layer.w, out = weff[l]!;
      for (let i = 0; i < s.length; i++) out[i] = f(w[i]! * sigmoidF32(s[i]!));
    });
    return true;
  }
}

/** Supermask, registered as `supermask`. */
export const method = defineMethod({
  name: "supermask",
  summary: "supermask (Zhou et al. 2019): m ~ Bernoulli(sigmoid(s)) each step, straight-through, no penalty",
  fields: FIELDS,
  // inferred: Adam at 0.3 gave the best own-ticket validation accuracy of Adam 0.03-1 and SGD 1-1000 on the
  // quickstart's MNIST LeNet-300-100, 10 epochs (the sampled-mask gradients through sigmoid' are small)
  training: { optimizer: "adam", lr: 0.3, momentum: 0.9, weight_decay: 0, schedule: "constant" },
  ladder: "s",
  memory: (_c, t) => ({ floats: 3 + optimizerFloats(t), per: "weight" }), // score, probability, gradient
  create: ({ net, config, training, rng, kernels }) => new Supermask(net, config, training, rng, kernels),
});
