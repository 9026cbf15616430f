import { z } from "zod";
import { fn, type FusedKernels, registerKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import { type Rng, ZIGGURAT } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { GateLayout } from "./gate_layout.ts";
import { GAUSS_TABLE, gaussTable, normCdf, normPdf } from "./math.ts";
import { type CutRule, defineMethod, type MaskMethod, optimizerFloats, SHARED_FIELDS } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";

/** Gates' settings (docs/science.md, "Gates"). */
const FIELDS = {
  lambda: SHARED_FIELDS.lambda,
  penalty: SHARED_FIELDS.penalty,
  granularity: SHARED_FIELDS.granularity,
  threshold: SHARED_FIELDS.threshold,
  /** Noise scale of the Gaussian gates. */
  sigma: z.number().finite().positive().default(0.5),
  /** Initial mean of the gates. */
  mu_init: z.number().finite().default(0.5),
};
export type GatesConfig = z.infer<z.ZodObject<typeof FIELDS>>;

/** Gates' native kernels (gates.c): noise, clamp and product in one pass; penalty gradient, clamp and Adam in one. */
export interface GatesKernels {
  forward(
    mu: Float32Array,
    w: Float32Array,
    u: Float32Array,
    weff: Float32Array,
    sigma: number,
    rng: Uint32Array,
  ): void;
  adam(
    mu: Float32Array,
    u: Float32Array,
    g: Float32Array,
    w: Float32Array,
    m1: Float32Array,
    m2: Float32Array,
    k: number,
    invS: number,
    lr: number,
    ic2: number,
  ): void;
}

const NATIVE = registerKernels<GatesKernels>({
  name: "gates",
  source: new URL("./gates.c", import.meta.url),
  symbols: { ts_gates_forward: fn("bbbb i d bbbb"), ts_gates_adam: fn("bbbbbb i dddd b") },
  bind: (f) => {
    const { KN, WN, FN } = ZIGGURAT;
    return {
      forward: (mu, w, u, weff, sigma, st) => f.ts_gates_forward!(mu, w, u, weff, mu.length, sigma, st, KN, WN, FN),
      adam: (mu, u, g, w, m1, m2, k, invS, lr, ic2) =>
        f.ts_gates_adam!(mu, u, g, w, m1, m2, mu.length, k, invS, lr, ic2, GAUSS_TABLE),
    };
  },
});

/** Options: native fused kernels (same numbers, faster); for tests, a fixed noise source replaces the generator. */
export interface GatesOptions {
  noise?: (layer: number, eps: Float32Array) => void;
  kernels?: FusedKernels | null;
}

/**
 * Continuously relaxed Bernoulli gates (Gaussian stochastic gates, docs/science.md), one gate per weight or per
 * output neuron / channel: `z = clamp(mu + sigma·eps, 0, 1)`, `eps ~ N(0, 1)` fresh every step, effective
 * weight `W·z`, penalty `lambda · Σ Φ(mu/sigma)` (or the mean over all gates). No straight-through
 * estimator: the clamp's gradient is 1 inside (0, 1) and 0 outside. Binary ticket: keep iff the test gate
 * `clamp(mu, 0, 1)` is above `threshold` (with the default 0: `mu > 0`).
 */
export class BernoulliGates implements MaskMethod {
  readonly name = "gates";
  readonly trainsWeights = false;
  readonly mu: Float32Array[];
  readonly #net: FrozenNet;
  readonly #layout: GateLayout;
  readonly #u: Float32Array[];
  readonly #z: Float32Array[];
  readonly #sigma: number;
  readonly #coef: number;
  readonly #threshold: number;
  readonly #rng: Rng;
  readonly #opt: ElementOptimizer;
  readonly #fused: boolean;
  readonly #noise?: GatesOptions["noise"];
  readonly #kernels: GatesKernels | null;
  readonly cuts: CutRule;

  constructor(net: FrozenNet, method: GatesConfig, training: TrainingConfig, rng: Rng, opts: GatesOptions = {}) {
    this.#net = net;
    this.#rng = rng;
    this.#sigma = method.sigma;
    this.#threshold = method.threshold;
    const layout = this.#layout = new GateLayout(net, method.granularity);
    this.#coef = layout.coefficient(method.lambda, method.penalty);
    // STG's initialisation: mu = mu_init + 0.01·N(0, 1).
    this.mu = layout.jittered(rng, method.mu_init);
    this.#u = layout.buffers();
    this.#z = layout.buffers();
    this.#opt = createOptimizer(training, layout.counts, opts.kernels);
    this.#fused = method.granularity === "weight" && training.optimizer === "adam" && training.weight_decay === 0;
    this.#noise = opts.noise;
    this.#kernels = NATIVE.of(opts.kernels);
    // Ticket ladder: the test-gate threshold; keep iff `clamp(mu, 0, 1) > c`.
    this.cuts = layout.testGateCuts(this.#threshold, (l, j) => clampUnit(this.mu[l]![j]!));
  }

  get params(): Float32Array[] {
    return this.mu;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    const s = this.#sigma;
    this.#net.maskedParams.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, out = weff[l]!, width = this.#layout.widths[l]!;
      if (width === 1 && this.#kernels && !this.#noise) {
        this.#kernels.forward(mu, w, u, out, s, this.#rng.s);
        return;
      }
      if (this.#noise) this.#noise(l, u);
      else this.#rng.fillNormal(u);
      if (width === 1) {
        // fused: noise, clamp and the product in one pass
        for (let i = 0; i < u.length; i++) {
          const v = mu[i]! + s * u[i]!;
          u[i] = v;
          const c0 = (v + Math.abs(v)) * 0.5; // w·clamp(v, 0, 1) as the native kernel computes it, bit for bit
          out[i] = w[i]! * (c0 < 1 ? c0 : 1);
        }
        return;
      }
      const z = this.#z[l]!;
      for (let j = 0; j < u.length; j++) {
        const v = mu[j]! + s * u[j]!;
        u[j] = v;
        z[j] = v <= 0 ? 0 : v >= 1 ? 1 : v;
      }
      this.#layout.weights(l, w, z, out);
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const s = this.#sigma, k = this.#coef / s * 0.3989422804014327, opt = this.#opt;
    const invS = 1 / s;
    opt.begin();
    const adam = opt.adam;
    this.#net.maskedParams.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, g = dweff[l]!;
      if (this.#fused && adam) {
        // fused: penalty gradient, clamp gate, and the Adam step in one pass
        const m1 = adam.m1[l]!, m2 = adam.m2[l]!;
        const lr = opt.lr / adam.c1(), ic2 = 1 / adam.c2();
        if (this.#kernels) {
          this.#kernels.adam(mu, u, g, w, m1, m2, k, invS, lr, ic2);
          return;
        }
        for (let i = 0; i < mu.length; i++) {
          const m = mu[i]!, v = u[i]!;
          let grad = k * gaussTable(m * invS);
          if (v > 0 && v < 1) grad += g[i]! * w[i]!;
          const a = 0.9 * m1[i]! + 0.1 * grad;
          const b = 0.999 * m2[i]! + 0.001 * grad * grad;
          m1[i] = a;
          m2[i] = b;
          mu[i] = m - lr * a / (Math.sqrt(b * ic2) + 1e-8);
        }
        return;
      }
      const dz = this.#z[l]!;
      this.#layout.gradients(l, g, w, dz);
      for (let j = 0; j < mu.length; j++) {
        const v = u[j]!;
        dz[j] = (v > 0 && v < 1 ? dz[j]! : 0) + k * gaussTable(mu[j]! * invS);
      }
      opt.step(l, mu, dz);
    });
  }

  penalty(): number {
    let p = 0;
    for (const mu of this.mu) for (let i = 0; i < mu.length; i++) p += normCdf(mu[i]! / this.#sigma);
    return this.#coef * p;
  }

  /** d(penalty)/d(mu_j), for tests. */
  penaltyGradient(l: number, j: number): number {
    return (this.#coef / this.#sigma) * normPdf(this.mu[l]![j]! / this.#sigma);
  }

  binaryMask(l: number): Uint8Array {
    return this.cuts.mask(l, this.#threshold);
  }

  softWeights(weff: Float32Array[]): boolean {
    this.#net.maskedParams.forEach((layer, l) => {
      const mu = this.mu[l]!, z = this.#z[l]!;
      for (let j = 0; j < mu.length; j++) z[j] = clampUnit(mu[j]!);
      this.#layout.weights(l, layer.w, z, weff[l]!);
    });
    return true;
  }
}

/** `clamp(x, 0, 1)`. */
function clampUnit(x: number): number {
  return x <= 0 ? 0 : x >= 1 ? 1 : x;
}

/** Gaussian stochastic gates, registered as `gates`. */
export const method = defineMethod({
  name: "gates",
  summary: "Gaussian stochastic gates: z = clamp(mu + sigma·eps, 0, 1), penalty lambda·ΣΦ(mu/sigma)",
  fields: FIELDS,
  inEveryConfig: true,
  training: { optimizer: "adam", lr: 0.05, momentum: 0.9, weight_decay: 0, schedule: "constant" },
  ladder: "test_gate",
  memory: (c, t) => ({ floats: 3 + optimizerFloats(t), per: c.granularity === "neuron" ? "row" : "weight" }), // mu, noise, gate
  create: ({ net, config, training, rng, kernels }) => new BernoulliGates(net, config, training, rng, { kernels }),
});
