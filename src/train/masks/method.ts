import type { FrozenNet } from "../nets/mlp.ts";

/**
 * A mask-learning method over a frozen network. The trainer calls, per step: `effectiveWeights` (training
 * mode: noise drawn), the network's forward/backward, then `applyGradients` with d(task loss)/d(effective
 * weights); the method adds its penalty's gradient and updates its own parameters. Weights are never written.
 */
export interface MaskMethod {
  /** Writes the effective training weights `W ⊙ z` of every layer into `weff`. */
  effectiveWeights(weff: Float32Array[]): void;
  /** Consumes d(task loss)/d(weff) of the last `effectiveWeights` call and takes one optimiser step. */
  applyGradients(dweff: Float32Array[]): void;
  /** The current value of the sparsity penalty term (already multiplied by lambda). */
  penalty(): number;
  /** The binary ticket of layer `l`: 1 keeps a weight. */
  binaryMask(l: number): Uint8Array;
  /** Writes the deterministic soft-gate weights into `weff`; returns false when the method has none. */
  softWeights(weff: Float32Array[]): boolean;
}

/** Writes `W ⊙ mask` for every layer. */
export function maskedWeights(net: FrozenNet, masks: Uint8Array[], weff: Float32Array[]): void {
  net.layers.forEach((layer, l) => {
    const w = layer.w, m = masks[l]!, out = weff[l]!;
    for (let i = 0; i < w.length; i++) out[i] = m[i] ? w[i]! : 0;
  });
}
