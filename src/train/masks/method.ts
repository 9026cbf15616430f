import type { MethodName } from "../../spec/schema.ts";
import type { FrozenNet } from "../nets/net.ts";

/**
 * A mask-learning method over a frozen network. The trainer calls `beginEpoch` at the start of each epoch,
 * then per step `effectiveWeights` (training mode: noise drawn), the network's forward/backward, and
 * `applyGradients` with d(task loss)/d(effective weights); the method adds its penalty's gradient and
 * updates its own parameters. The frozen weights are never written.
 */
export interface MaskMethod {
  readonly name: MethodName;
  /** True for the dense reference: it trains the weights themselves and yields no ticket. */
  readonly trainsWeights: boolean;
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
  net.layers.forEach((layer, l) => {
    const w = layer.w, m = masks[l]!, out = weff[l]!;
    for (let i = 0; i < w.length; i++) out[i] = m[i] ? w[i]! : 0;
  });
}

/** Weights per gate: 1 for one gate per weight, the row length for one gate per output neuron / channel. */
export function gateSpan(net: FrozenNet, granularity: "weight" | "neuron"): number[] {
  return net.layers.map((p) => (granularity === "weight" ? 1 : p.w.length / p.shape[0]!));
}

/** `out = W ⊙ z`, each gate value `z[j]` covering `span` consecutive weights (a row when structured). */
export function gateWeights(w: Float32Array, z: Float32Array, span: number, out: Float32Array): void {
  if (span === 1) {
    for (let i = 0; i < w.length; i++) out[i] = w[i]! * z[i]!;
    return;
  }
  for (let j = 0; j < z.length; j++) {
    const zj = z[j]!, o = j * span;
    for (let i = o; i < o + span; i++) out[i] = w[i]! * zj;
  }
}

/** d(loss)/d(z[j]) = Σ over its weights of d(loss)/d(weff)·W. */
export function gateGradients(g: Float32Array, w: Float32Array, span: number, dz: Float32Array): void {
  if (span === 1) {
    for (let i = 0; i < w.length; i++) dz[i] = g[i]! * w[i]!;
    return;
  }
  for (let j = 0; j < dz.length; j++) {
    let s = 0;
    const o = j * span;
    for (let i = o; i < o + span; i++) s += g[i]! * w[i]!;
    dz[j] = s;
  }
}

/** The per-weight binary mask of gates `keep(j)`, each covering `span` weights. */
export function expandMask(gates: number, span: number, keep: (j: number) => boolean): Uint8Array {
  const m = new Uint8Array(gates * span);
  for (let j = 0; j < gates; j++) if (keep(j)) m.fill(1, j * span, (j + 1) * span);
  return m;
}
