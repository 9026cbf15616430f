import { z } from "zod";
import { fn, type FusedKernels, registerKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import type { FrozenNet } from "../nets/net.ts";
import { FLT_NORMAL_MIN, sigmoidF32 } from "../float32.ts";
import { type CutRule, defineMethod, type MaskMethod, optimizerFloats, SHARED_FIELDS } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";

const f = Math.fround;

/** Continuous sparsification's settings (docs/science.md, "Continuous sparsification"). */
const FIELDS = {
  lambda: SHARED_FIELDS.lambda,
  penalty: SHARED_FIELDS.penalty,
  /** Initial mask score. */
  s0: z.number().finite().default(0),
  /** Final temperature of each round. */
  beta_final: z.number().finite().gt(1).default(200),
  /** Rounds. */
  rounds: z.number().int().positive().default(3),
};
export type CsConfig = z.infer<z.ZodObject<typeof FIELDS>>;

/** Continuous sparsification's native kernels (continuous_sparsification.c), in float32. */
export interface CsKernels {
  /** `sig = sigmoid(beta·s)`, `weff = w·c·sig`. */
  forward(s: Float32Array, w: Float32Array, sig: Float32Array, weff: Float32Array, beta: number, c: number): void;
  /** The gradient on the scores: `(g·w + coef)·k·sig·(1 − sig)`. */
  grad(grad: Float32Array, g: Float32Array, w: Float32Array, sig: Float32Array, coef: number, k: number): void;
  /** The same gradient and an SGD step on the scores in one pass (as `grad` then the optimiser's SGD). */
  sgd(
    s: Float32Array,
    g: Float32Array,
    w: Float32Array,
    sig: Float32Array,
    mom: Float32Array,
    coef: number,
    k: number,
    lr: number,
    momentum: number,
    wd: number,
  ): void;
}

const NATIVE = registerKernels<CsKernels>({
  name: "cs",
  source: new URL("./continuous_sparsification.c", import.meta.url),
  symbols: { ts_cs_forward: fn("bbbb i ff"), ts_cs_sgd: fn("bbbbb i fffff"), ts_cs_grad: fn("bbbb i ff") },
  bind: (f) => ({
    forward: (sc, w, sig, weff, beta, c) => f.ts_cs_forward!(sc, w, sig, weff, sc.length, beta, c),
    grad: (grad, g, w, sig, coef, k) => f.ts_cs_grad!(grad, g, w, sig, grad.length, coef, k),
    sgd: (sc, g, w, sig, mom, coef, k, lr, momentum, wd) =>
      f.ts_cs_sgd!(sc, g, w, sig, mom, sc.length, coef, k, lr, momentum, wd),
  }),
});

/** Where epoch `epoch` (from 0) of `epochs` falls: its round and the temperature beta it trains at. */
export interface CsEpoch {
  round: number;
  beta: number;
}

/**
 * Continuous sparsification's temperature schedule: the epochs split into `rounds` rounds as evenly as
 * possible (earlier rounds take the remainder); in each round beta starts at 1 and is multiplied every epoch
 * by `final^(1/(E−1))`, so it reaches `final` at the round's last epoch (a one-epoch round trains at `final`).
 */
export function csSchedule(epochs: number, rounds: number, final: number): CsEpoch[] {
  const out: CsEpoch[] = [];
  const r = Math.min(rounds, epochs);
  for (let round = 0; round < r; round++) {
    const e = Math.floor(epochs / r) + (round < epochs % r ? 1 : 0);
    for (let i = 0; i < e; i++) out.push({ round, beta: e === 1 ? final : final ** (i / (e - 1)) });
  }
  return out;
}

/**
 * Continuous sparsification, strong-ticket variant (Savarese et al. 2020; docs/science.md): weights frozen,
 * one score `s` per weight, soft mask `m = sigmoid(beta·s) / sigmoid(s0)`, penalty `lambda · Σ m` (or the
 * mean), beta annealed per {@link csSchedule}; between rounds `s ← min(beta·s, s0)`. Ticket: `s > 0`.
 */
export class ContinuousSparsification implements MaskMethod {
  readonly name = "cs";
  readonly trainsWeights = false;
  readonly s: Float32Array[];
  readonly #net: FrozenNet;
  readonly #sig: Float32Array[];
  readonly #g: Float32Array[];
  readonly #s0: number;
  readonly #scale: number;
  readonly #coef: number;
  readonly #method: CsConfig;
  readonly #opt: ElementOptimizer;
  #schedule: CsEpoch[] = [];
  #beta = 1;
  #round = 0;

  readonly #kernels: CsKernels | null;

  constructor(net: FrozenNet, method: CsConfig, training: TrainingConfig, kernels?: FusedKernels | null) {
    this.#net = net;
    this.#kernels = NATIVE.of(kernels);
    this.#method = method;
    this.#s0 = method.s0;
    this.#scale = f(1 / sigmoidF32(f(method.s0)));
    const sizes = net.maskedParams.map((l) => l.w.length);
    const total = sizes.reduce((a, b) => a + b, 0);
    this.#coef = method.penalty === "mean" ? method.lambda / total : method.lambda;
    this.s = sizes.map((n) => new Float32Array(n).fill(method.s0));
    this.#sig = sizes.map((n) => new Float32Array(n));
    this.#g = sizes.map((n) => new Float32Array(n));
    this.#opt = createOptimizer(training, sizes, kernels);
  }

  get params(): Float32Array[] {
    return this.s;
  }

  /** The temperature of the current epoch. */
  get beta(): number {
    return this.#beta;
  }

  beginEpoch(epoch: number, epochs: number): void {
    if (this.#schedule.length !== epochs) {
      this.#schedule = csSchedule(epochs, this.#method.rounds, this.#method.beta_final);
    }
    const at = this.#schedule[epoch]!;
    if (at.round !== this.#round) {
      // a new round: s ← min(beta·s, s0) with the previous round's final beta, then beta restarts
      for (const s of this.s) for (let i = 0; i < s.length; i++) s[i] = Math.min(this.#beta * s[i]!, this.#s0);
      this.#round = at.round;
    }
    this.#beta = at.beta;
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    const beta = f(this.#beta), c = this.#scale;
    this.#net.maskedParams.forEach((layer, l) => {
      const s = this.s[l]!, sig = this.#sig[l]!, w = layer.w, out = weff[l]!;
      if (this.#kernels) return this.#kernels.forward(s, w, sig, out, beta, c);
      for (let i = 0; i < s.length; i++) {
        const q = sigmoidF32(f(beta * s[i]!));
        sig[i] = q;
        const v = f(f(w[i]! * c) * q);
        out[i] = v * (Math.abs(v) >= FLT_NORMAL_MIN ? 1 : 0); // subnormal weights slow every product down
      }
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const k = f(this.#scale * f(this.#beta)), coef = f(this.#coef);
    this.#opt.begin();
    const sgd = this.#opt.sgd;
    this.#net.maskedParams.forEach((layer, l) => {
      const sig = this.#sig[l]!, w = layer.w, g = dweff[l]!, grad = this.#g[l]!;
      if (this.#kernels && sgd) {
        const lr = this.#opt.lr;
        return this.#kernels.sgd(this.s[l]!, g, w, sig, sgd.mom[l]!, coef, k, lr, sgd.momentum, sgd.weightDecay);
      }
      if (this.#kernels) this.#kernels.grad(grad, g, w, sig, coef, k);
      else {
        for (let i = 0; i < sig.length; i++) {
          const q = sig[i]!;
          grad[i] = f(f(f(f(g[i]! * w[i]!) + coef) * k) * q) * f(1 - q);
        }
      }
      this.#opt.step(l, this.s[l]!, grad);
    });
  }

  penalty(): number {
    let p = 0;
    for (const s of this.s) for (let i = 0; i < s.length; i++) p += sigmoidF32(f(f(this.#beta) * s[i]!));
    return this.#coef * this.#scale * p;
  }

  binaryMask(l: number): Uint8Array {
    return this.cuts.mask(l, 0);
  }

  /** Ticket ladder: a threshold on s; keep iff `s > c` (the own ticket: c = 0). */
  readonly cuts: CutRule = {
    rule: "s",
    own: 0,
    mask: (l, c) => {
      const s = this.s[l]!;
      const m = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) m[i] = s[i]! > c ? 1 : 0;
      return m;
    },
    values: (l) => this.s[l]!,
  };

  softWeights(weff: Float32Array[]): boolean {
    this.effectiveWeights(weff);
    return true;
  }
}

/** Continuous sparsification, registered as `cs`. */
export const method = defineMethod({
  name: "cs",
  summary: "continuous sparsification (Savarese et al. 2020): sigmoid(beta·s) annealed over rounds",
  fields: FIELDS,
  inEveryConfig: true,
  training: { optimizer: "sgd", lr: 0.1, momentum: 0.9, weight_decay: 0, schedule: "constant" },
  ladder: "s",
  memory: (_c, t) => ({ floats: 3 + optimizerFloats(t), per: "weight" }), // score, sigmoid, gradient
  create: ({ net, config, training, kernels }) => new ContinuousSparsification(net, config, training, kernels),
});
