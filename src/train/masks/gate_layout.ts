import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import type { CutRule } from "./method.ts";

/**
 * How a relaxation's gates lie over a network's masked layers (gates, hard-concrete, supermask): one gate per
 * weight, or one per output neuron / channel covering its whole row of `width` consecutive weights. It owns
 * the per-gate buffers' sizes, the penalty's coefficient (sum, or mean over every gate), the product `W ⊙ z`,
 * the gradient back onto the gates, the binary masks and the test-gate cut rule.
 */
export class GateLayout {
  /** Weights per gate, per layer: 1, or the row length when structured. */
  readonly widths: number[];
  /** Gates per layer. */
  readonly counts: number[];
  /** Gates in all. */
  readonly total: number;

  constructor(net: FrozenNet, granularity: "weight" | "neuron") {
    this.widths = net.maskedParams.map((p) => (granularity === "weight" ? 1 : p.w.length / p.shape[0]!));
    this.counts = net.maskedParams.map((l, i) => l.w.length / this.widths[i]!);
    this.total = this.counts.reduce((s, n) => s + n, 0);
  }

  /** The penalty's coefficient: `lambda`, or `lambda / gates` for the mean. */
  coefficient(lambda: number, penalty: "sum" | "mean"): number {
    return penalty === "mean" ? lambda / this.total : lambda;
  }

  /** One zeroed float32 buffer per layer, a value per gate. */
  buffers(): Float32Array[] {
    return this.counts.map((n) => new Float32Array(n));
  }

  /** Per-gate parameters initialised at `mean + 0.01·N(0, 1)` (STG's and L0's jittered constant). */
  jittered(rng: Rng, mean: number): Float32Array[] {
    return this.counts.map((n) => {
      const m = new Float32Array(n);
      rng.fillNormal(m);
      for (let i = 0; i < n; i++) m[i] = mean + 0.01 * m[i]!;
      return m;
    });
  }

  /** `out = W ⊙ z` for layer `l`, each gate value `z[j]` covering its `width` weights. */
  weights(l: number, w: Float32Array, z: Float32Array, out: Float32Array): void {
    gateWeights(w, z, this.widths[l]!, out);
  }

  /** d(loss)/d(z[j]) of layer `l` = Σ over its weights of d(loss)/d(weff)·W. */
  gradients(l: number, g: Float32Array, w: Float32Array, dz: Float32Array): void {
    gateGradients(g, w, this.widths[l]!, dz);
  }

  /** The per-weight binary mask of layer `l` from its gates `keep(j)`. */
  mask(l: number, keep: (j: number) => boolean): Uint8Array {
    return expandMask(this.counts[l]!, this.widths[l]!, keep);
  }

  /** A per-weight copy of layer `l`'s per-gate values `value(j)`. */
  spread(l: number, value: (j: number) => number): Float32Array {
    const width = this.widths[l]!, out = new Float32Array(this.counts[l]! * width);
    for (let j = 0; j < this.counts[l]!; j++) out.fill(value(j), j * width, (j + 1) * width);
    return out;
  }

  /**
   * The ticket ladder of a test-gate threshold: keep a gate iff `testGate(l, j) > c` (the trial's own ticket at
   * `own`); `testGate` must lie in [0, 1].
   */
  testGateCuts(own: number, testGate: (l: number, j: number) => number): CutRule {
    return {
      rule: "test_gate",
      own,
      mask: (l, c) => this.mask(l, (j) => testGate(l, j) > c),
      values: (l) => this.spread(l, (j) => testGate(l, j)),
    };
  }
}

/** `out = W ⊙ z`, each gate value `z[j]` covering `width` consecutive weights (a row when structured). */
export function gateWeights(w: Float32Array, z: Float32Array, width: number, out: Float32Array): void {
  if (width === 1) {
    for (let i = 0; i < w.length; i++) out[i] = w[i]! * z[i]!;
    return;
  }
  for (let j = 0; j < z.length; j++) {
    const zj = z[j]!, o = j * width;
    for (let i = o; i < o + width; i++) out[i] = w[i]! * zj;
  }
}

/** d(loss)/d(z[j]) = Σ over its weights of d(loss)/d(weff)·W. */
export function gateGradients(g: Float32Array, w: Float32Array, width: number, dz: Float32Array): void {
  if (width === 1) {
    for (let i = 0; i < w.length; i++) dz[i] = g[i]! * w[i]!;
    return;
  }
  for (let j = 0; j < dz.length; j++) {
    let s = 0;
    const o = j * width;
    for (let i = o; i < o + width; i++) s += g[i]! * w[i]!;
    dz[j] = s;
  }
}

/** The per-weight binary mask of gates `keep(j)`, each covering `width` weights. */
export function expandMask(gates: number, width: number, keep: (j: number) => boolean): Uint8Array {
  const m = new Uint8Array(gates * width);
  for (let j = 0; j < gates; j++) if (keep(j)) m.fill(1, j * width, (j + 1) * width);
  return m;
}
