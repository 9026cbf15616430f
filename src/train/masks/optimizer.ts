import type { TrainingConfig } from "../../spec/schema.ts";
import type { FusedKernels } from "../../engine/native.ts";

const f = Math.fround;

/** Per-parameter optimiser state and the update rule, over `sizes.length` buffers ("slots"). */
export interface ElementOptimizer {
  /** Adam's state and bias corrections, exposed so hot loops can inline the update (undefined for SGD). */
  readonly adam?: {
    m1: Float32Array[];
    m2: Float32Array[];
    c1: () => number;
    c2: () => number;
    weightDecay: number;
  };
  /** SGD's momentum buffers and constants, for the same purpose (undefined for Adam). */
  readonly sgd?: { mom: Float32Array[]; momentum: number; weightDecay: number };
  /** The learning rate of the current epoch (after the schedule). */
  readonly lr: number;
  /** Sets the epoch's learning rate from the schedule (`epoch` counts from 0). */
  beginEpoch(epoch: number, epochs: number): void;
  /** Starts a step (bias corrections). */
  begin(): void;
  /** Updates every element of buffer `slot` in place from the gradients `g`. */
  step(slot: number, p: Float32Array, g: Float32Array): void;
}

/** One buffer's Adam step as a fused kernel takes it: the buffer's moments and this step's constants. */
export interface AdamStep {
  m1: Float32Array;
  m2: Float32Array;
  lr: number;
  wd: number;
  /** This step's bias corrections (after {@link ElementOptimizer.begin}). */
  c1: number;
  c2: number;
}

/** Buffer `slot`'s Adam step for a kernel that fuses a gradient with it, or null when the optimiser is not Adam. */
export function adamStepOf(opt: ElementOptimizer, slot: number): AdamStep | null {
  const a = opt.adam;
  if (!a) return null;
  return { m1: a.m1[slot]!, m2: a.m2[slot]!, lr: opt.lr, wd: a.weightDecay, c1: a.c1(), c2: a.c2() };
}

/**
 * The learning rate of epoch `epoch` (from 0) of `epochs`: constant, or edge-popup's per-epoch cosine
 * `lr · (1 + cos(π·epoch/epochs)) / 2`.
 */
export function scheduledLr(cfg: TrainingConfig, epoch: number, epochs: number): number {
  return cfg.schedule === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * epoch / epochs)) * cfg.lr : cfg.lr;
}

/**
 * Adam (beta1 0.9, beta2 0.999, eps 1e-8) or SGD with momentum (PyTorch's form, `v = μ·v + g`), both with
 * L2 weight decay added to the gradient as PyTorch does, in float32 arithmetic as PyTorch's are (every
 * operation rounded with `Math.fround`). With `kernels`, `step` runs natively with the same bits.
 */
export function createOptimizer(
  cfg: TrainingConfig,
  sizes: number[],
  kernels?: FusedKernels | null,
): ElementOptimizer {
  const wd = cfg.weight_decay, wdF = f(wd);
  let lr = cfg.lr, lrF = f(lr); // the float32 values the per-element updates use, rounded once
  const beginEpoch = (epoch: number, epochs: number) => {
    lr = scheduledLr(cfg, epoch, epochs);
    lrF = f(lr);
  };
  if (cfg.optimizer === "sgd") {
    const mom = sizes.map((n) => new Float32Array(n));
    const mu = cfg.momentum, muF = f(mu);
    const update = (slot: number, i: number, p: number, g: number) => {
      const m = mom[slot]!;
      const v = f(f(f(muF * m[i]!) + g) + f(wdF * p));
      m[i] = v;
      return f(p - f(lrF * v));
    };
    return {
      sgd: { mom, momentum: mu, weightDecay: wd },
      get lr() {
        return lr;
      },
      beginEpoch,
      begin() {},
      step(slot, p, g) {
        if (kernels) return kernels.sgdStep(p, g, mom[slot]!, lr, mu, wd);
        for (let i = 0; i < p.length; i++) p[i] = update(slot, i, p[i]!, g[i]!);
      },
    };
  }
  const m1 = sizes.map((n) => new Float32Array(n));
  const m2 = sizes.map((n) => new Float32Array(n));
  const b1 = 0.9, b2 = 0.999;
  const B1 = f(b1), B1C = f(0.1), B2 = f(b2), B2C = f(0.001), EPS = f(1e-8);
  let t = 0, c1 = 1, c2 = 1, c1F = 1, c2F = 1;
  const update = (slot: number, i: number, p: number, g0: number) => {
    const a = m1[slot]!, b = m2[slot]!;
    const g = f(g0 + f(wdF * p));
    const m = f(f(B1 * a[i]!) + f(B1C * g));
    const v = f(f(B2 * b[i]!) + f(f(B2C * g) * g));
    a[i] = m;
    b[i] = v;
    return f(p - f(f(lrF * f(m / c1F)) / f(f(Math.sqrt(f(v / c2F))) + EPS)));
  };
  return {
    adam: { m1, m2, c1: () => c1, c2: () => c2, weightDecay: wd },
    get lr() {
      return lr;
    },
    beginEpoch,
    begin() {
      t++;
      c1 = 1 - b1 ** t;
      c2 = 1 - b2 ** t;
      c1F = f(c1);
      c2F = f(c2);
    },
    step(slot, p, g) {
      if (kernels) return kernels.adamStep(p, g, m1[slot]!, m2[slot]!, lr, wd, c1, c2);
      for (let i = 0; i < p.length; i++) p[i] = update(slot, i, p[i]!, g[i]!);
    },
  };
}
