import type { MethodConfig, TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import type { CutRule, MaskMethod } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";
import { keptCount, topKMask } from "./top_k.ts";
import type { FusedKernels } from "../../engine/native.ts";

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
  readonly #kernels: FusedKernels | null;

  constructor(net: FrozenNet, method: MethodConfig, training: TrainingConfig, rng: Rng, kernels?: FusedKernels | null) {
    this.#kernels = kernels ?? null;
    this.#net = net;
    this.#k = method.k;
    this.cuts = { ...this.cuts, own: method.k };
    this.scores = net.layers.map((p) => {
      const a = 1 / Math.sqrt(p.fanIn), s = new Float32Array(p.w.length);
      for (let i = 0; i < s.length; i++) s[i] = (2 * rng.uniform() - 1) * a;
      return s;
    });
    this.#mask = this.scores.map((s) => new Uint8Array(s.length));
    this.#scratch = this.scores.map((s) => new Float32Array(s.length));
    this.#opt = createOptimizer(training, this.scores.map((s) => s.length), kernels);
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    this.#net.layers.forEach((layer, l) => {
      const m = this.#mask[l]!, w = layer.w, out = weff[l]!;
      if (this.#kernels) {
        this.#kernels.popupForward(this.scores[l]!, w, m, out, this.#scratch[l]!, keptCount(w.length, this.#k));
        return;
      }
      topKMask(this.scores[l]!, this.#k, m, this.#scratch[l]!);
      for (let i = 0; i < w.length; i++) out[i] = m[i] ? w[i]! : 0;
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    this.#opt.begin();
    const sgd = this.#opt.sgd;
    this.#net.layers.forEach((layer, l) => {
      const s = this.scores[l]!, w = layer.w, g = dweff[l]!, grad = this.#scratch[l]!;
      if (this.#kernels && sgd) {
        this.#kernels.popupSgd(s, g, w, sgd.mom[l]!, sgd.momentum, sgd.weightDecay, this.#opt.lr);
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
