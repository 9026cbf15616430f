import type { TrainingConfig } from "../../spec/schema.ts";

/** Per-parameter optimiser state and the update rule, applied element by element inside fused loops. */
export interface ElementOptimizer {
  /** Adam's state and step constants, exposed so hot loops can inline the update (undefined for SGD). */
  readonly adam?: { m1: Float32Array[]; m2: Float32Array[]; lr: number; c1: () => number; c2: () => number };
  /** Starts a step (bias corrections). */
  begin(): void;
  /** The new value of `p[i]` for gradient `g`, updating the state of element `i` of buffer `slot`. */
  update(slot: number, i: number, p: number, g: number): number;
}

/** Adam (beta1 0.9, beta2 0.999, eps 1e-8) or SGD with momentum, over `sizes.length` buffers. */
export function createOptimizer(cfg: TrainingConfig, sizes: number[]): ElementOptimizer {
  const lr = cfg.lr;
  if (cfg.optimizer === "sgd") {
    const mom = sizes.map((n) => new Float32Array(n));
    const mu = cfg.momentum;
    return {
      begin() {},
      update(slot, i, p, g) {
        const m = mom[slot]!;
        const v = mu * m[i]! + g;
        m[i] = v;
        return p - lr * v;
      },
    };
  }
  const m1 = sizes.map((n) => new Float32Array(n));
  const m2 = sizes.map((n) => new Float32Array(n));
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  let t = 0, c1 = 1, c2 = 1;
  return {
    adam: { m1, m2, lr, c1: () => c1, c2: () => c2 },
    begin() {
      t++;
      c1 = 1 - b1 ** t;
      c2 = 1 - b2 ** t;
    },
    update(slot, i, p, g) {
      const a = m1[slot]!, b = m2[slot]!;
      const m = b1 * a[i]! + (1 - b1) * g;
      const v = b2 * b[i]! + (1 - b2) * g * g;
      a[i] = m;
      b[i] = v;
      return p - lr * (m / c1) / (Math.sqrt(v / c2) + eps);
    },
  };
}
