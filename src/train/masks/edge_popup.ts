import { z } from "zod";
import { fn, type FusedKernels, registerKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { type CutRule, defineMethod, type MaskMethod, optimizerFloats } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";
import { keptCount, topKMask } from "./top_k.ts";

/** edge-popup's settings (docs/science.md, "edge-popup"). */
const FIELDS = {
  /** Fraction of each layer's weights kept. */
  k: z.number().finite().gt(0).max(1).default(0.5),
};
export type EdgePopupConfig = z.infer<z.ZodObject<typeof FIELDS>>;

/** edge-popup's native kernels (edge_popup.c). */
export interface EdgePopupKernels {
  /** Exact top-`keep` mask by |score| (ties in index order) and `weff = w ⊙ mask`. */
  forward(
    scores: Float32Array,
    w: Float32Array,
    mask: Uint8Array,
    weff: Float32Array,
    scratch: Float32Array,
    keep: number,
  ): void;
  /** The straight-through gradient and an SGD step (momentum, weight decay) on the scores. */
  sgd(
    s: Float32Array,
    g: Float32Array,
    w: Float32Array,
    mom: Float32Array,
    momentum: number,
    wd: number,
    lr: number,
  ): void;
}

const NATIVE = registerKernels<EdgePopupKernels>({
  name: "edge-popup",
  source: new URL("./edge_popup.c", import.meta.url),
  symbols: { ts_topk_weights: fn("bbbbb ii"), ts_popup_sgd: fn("bbbb i fff") },
  bind: (f) => ({
    forward: (scores, w, mask, weff, scratch, keep) =>
      f.ts_topk_weights!(scores, w, mask, weff, scratch, scores.length, keep),
    sgd: (s, g, w, mom, momentum, wd, lr) => f.ts_popup_sgd!(s, g, w, mom, s.length, momentum, wd, lr),
  }),
});

/**
 * edge-popup (Ramanujan et al. 2020; docs/science.md): a score per weight, initialised `U(±1/sqrt(fan_in))`;
 * the forward pass keeps the top-k fraction of `|score|` in each layer; the backward pass is straight-through
 * (d(loss)/d(mask) goes to the scores unchanged, through the absolute value: `sign(s)·g·W`). SGD with
 * momentum, weight decay on the scores and a cosine schedule by default.
 */
export class EdgePopup implements MaskMethod {
  readonly name = "edge-popup";
  readonly trainsWeights = false;
  readonly scores: Float32Array[];
  readonly #net: FrozenNet;
  readonly #k: number;
  readonly #mask: Uint8Array[];
  readonly #scratch: Float32Array[];
  readonly #opt: ElementOptimizer;
  readonly #kernels: EdgePopupKernels | null;

  constructor(
    net: FrozenNet,
    method: EdgePopupConfig,
    training: TrainingConfig,
    rng: Rng,
    kernels?: FusedKernels | null,
  ) {
    this.#kernels = NATIVE.of(kernels);
    this.#net = net;
    this.#k = method.k;
    this.cuts = { ...this.cuts, own: method.k };
    this.scores = net.maskedParams.map((p) => {
      const a = 1 / Math.sqrt(p.fanIn), s = new Float32Array(p.w.length);
      for (let i = 0; i < s.length; i++) s[i] = (2 * rng.uniform() - 1) * a;
      return s;
    });
    this.#mask = this.scores.map((s) => new Uint8Array(s.length));
    this.#scratch = this.scores.map((s) => new Float32Array(s.length));
    this.#opt = createOptimizer(training, this.scores.map((s) => s.length), kernels);
  }

  get params(): Float32Array[] {
    return this.scores;
  }

  /** The straight-through estimator's smooth forward: `|s|·W` (its gradient `sign(s)·g·W` is what the scores get). */
  relaxedWeights(weff: Float32Array[]): void {
    this.#net.maskedParams.forEach((layer, l) => {
      const s = this.scores[l]!, w = layer.w, out = weff[l]!;
      for (let i = 0; i < w.length; i++) out[i] = Math.abs(s[i]!) * w[i]!;
    });
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    this.#net.maskedParams.forEach((layer, l) => {
      const m = this.#mask[l]!, w = layer.w, out = weff[l]!;
      if (this.#kernels) {
        this.#kernels.forward(this.scores[l]!, w, m, out, this.#scratch[l]!, keptCount(w.length, this.#k));
        return;
      }
      topKMask(this.scores[l]!, this.#k, m, this.#scratch[l]!);
      for (let i = 0; i < w.length; i++) out[i] = m[i] ? w[i]! : 0;
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    this.#opt.begin();
    const sgd = this.#opt.sgd;
    this.#net.maskedParams.forEach((layer, l) => {
      const s = this.scores[l]!, w = layer.w, g = dweff[l]!, grad = this.#scratch[l]!;
      if (this.#kernels && sgd) {
        this.#kernels.sgd(s, g, w, sgd.mom[l]!, sgd.momentum, sgd.weightDecay, this.#opt.lr);
        return;
      }
      for (let i = 0; i < s.length; i++) grad[i] = Math.sign(s[i]!) * g[i]! * w[i]!;
      this.#opt.step(l, s, grad);
    });
  }

  penalty(): number {
    return 0;
  }

  binaryMask(l: number): Uint8Array {
    return this.cuts.mask(l, this.#k);
  }

  /** Ticket ladder: a keep fraction k' <= k; the top k' of each layer by |score| (the training rule at k'). */
  cuts: CutRule = {
    rule: "keep_fraction",
    own: 0,
    mask: (l, c) => {
      const m = new Uint8Array(this.scores[l]!.length);
      topKMask(this.scores[l]!, c, m, this.#scratch[l]!);
      return m;
    },
  };

  softWeights(): boolean {
    return false;
  }
}

/** edge-popup, registered as `edge-popup`. */
export const method = defineMethod({
  name: "edge-popup",
  summary: "edge-popup (Ramanujan et al. 2020): the top-k fraction of |score| per layer, straight-through",
  fields: FIELDS,
  inEveryConfig: true,
  training: { optimizer: "sgd", lr: 0.1, momentum: 0.9, weight_decay: 1e-4, schedule: "cosine" },
  ladder: "keep_fraction",
  memory: (_c, t) => ({ floats: 2.25 + optimizerFloats(t), per: "weight" }), // score, top-k scratch, the byte mask
  create: ({ net, config, training, rng, kernels }) => new EdgePopup(net, config, training, rng, kernels),
});
