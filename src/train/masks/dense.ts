import type { TrainingConfig } from "../../spec/schema.ts";
import type { FrozenNet } from "../nets/net.ts";
import { defineMethod, type MaskMethod, optimizerFloats } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";
import type { FusedKernels } from "../../engine/native.ts";

/**
 * The dense reference: the same network from the same initial weights, its masked tensors trained normally
 * and nothing removed, so reports can show a ticket's accuracy loss against it. It yields no ticket.
 */
export class DenseTraining implements MaskMethod {
  readonly name = "dense";
  readonly trainsWeights = true;
  readonly weights: Float32Array[];
  readonly #opt: ElementOptimizer;

  constructor(net: FrozenNet, training: TrainingConfig, kernels?: FusedKernels | null) {
    this.weights = net.maskedParams.map((p) => Float32Array.from(p.w));
    this.#opt = createOptimizer(training, this.weights.map((w) => w.length), kernels);
  }

  get params(): Float32Array[] {
    return this.weights;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    this.weights.forEach((w, l) => weff[l]!.set(w));
  }

  applyGradients(dweff: Float32Array[]): void {
    this.#opt.begin();
    this.weights.forEach((w, l) => this.#opt.step(l, w, dweff[l]!));
  }

  penalty(): number {
    return 0;
  }

  binaryMask(l: number): Uint8Array {
    return new Uint8Array(this.weights[l]!.length).fill(1);
  }

  softWeights(weff: Float32Array[]): boolean {
    this.effectiveWeights(weff);
    return true;
  }
}

/** The dense reference, registered as `dense`. */
export const method = defineMethod({
  name: "dense",
  summary: "the dense reference: the weights themselves trained, no ticket",
  fields: {},
  inEveryConfig: true,
  training: { optimizer: "adam", lr: 1e-3, momentum: 0.9, weight_decay: 0, schedule: "constant" },
  ladder: null,
  memory: (_c, t) => ({ floats: 1 + optimizerFloats(t), per: "weight" }), // the trained copy
  create: ({ net, training, kernels }) => new DenseTraining(net, training, kernels),
});
