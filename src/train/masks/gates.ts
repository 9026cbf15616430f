import type { MethodConfig, TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { gaussTable, normCdf, normPdf } from "./math.ts";
import { type CutRule, expandMask, gateGradients, gateSpan, gateWeights, type MaskMethod } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";
import type { FusedKernels } from "../../engine/native.ts";

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
  readonly #span: number[];
  readonly #u: Float32Array[];
  readonly #z: Float32Array[];
  readonly #sigma: number;
  readonly #coef: number;
  readonly #threshold: number;
  readonly #rng: Rng;
  readonly #opt: ElementOptimizer;
  readonly #fused: boolean;
  readonly #noise?: GatesOptions["noise"];
  readonly #kernels: FusedKernels | null;

  constructor(net: FrozenNet, method: MethodConfig, training: TrainingConfig, rng: Rng, opts: GatesOptions = {}) {
    this.#net = net;
    this.#rng = rng;
    this.#sigma = method.sigma;
    this.#threshold = method.threshold;
    this.cuts = { ...this.cuts, own: this.#threshold };
    this.#span = gateSpan(net, method.granularity);
    const counts = net.layers.map((l, i) => l.w.length / this.#span[i]!);
    const total = counts.reduce((s, n) => s + n, 0);
    this.#coef = method.penalty === "mean" ? method.lambda / total : method.lambda;
    // STG's initialisation: mu = mu_init + 0.01·N(0, 1).
    this.mu = counts.map((n) => {
      const m = new Float32Array(n);
      rng.fillNormal(m);
      for (let i = 0; i < m.length; i++) m[i] = method.mu_init + 0.01 * m[i]!;
      return m;
    });
    this.#u = counts.map((n) => new Float32Array(n));
    this.#z = counts.map((n) => new Float32Array(n));
    this.#opt = createOptimizer(training, counts, opts.kernels);
    this.#fused = method.granularity === "weight" && training.optimizer === "adam" && training.weight_decay === 0;
    this.#noise = opts.noise;
    this.#kernels = opts.kernels ?? null;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    const s = this.#sigma;
    this.#net.layers.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, out = weff[l]!, span = this.#span[l]!;
      if (span === 1 && this.#kernels && !this.#noise) {
        this.#kernels.gatesForward(mu, w, u, out, s, this.#rng.s);
        return;
      }
      if (this.#noise) this.#noise(l, u);
      else this.#rng.fillNormal(u);
      if (span === 1) {
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
      gateWeights(w, z, span, out);
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const s = this.#sigma, k = this.#coef / s * 0.3989422804014327, opt = this.#opt;
    const invS = 1 / s;
    opt.begin();
    const adam = opt.adam;
    this.#net.layers.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, g = dweff[l]!;
      if (this.#fused && adam) {
        // fused: penalty gradient, clamp gate, and the Adam step in one pass
        const m1 = adam.m1[l]!, m2 = adam.m2[l]!;
        const lr = opt.lr / adam.c1(), ic2 = 1 / adam.c2();
        if (this.#kernels) {
          this.#kernels.gatesAdam(mu, u, g, w, m1, m2, k, invS, lr, ic2);
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
      gateGradients(g, w, this.#span[l]!, dz);
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

  /** Ticket ladder: the test-gate threshold; keep iff `clamp(mu, 0, 1) > c` (for c >= 0: `min(mu, 1) > c`). */
  cuts: CutRule = {
    rule: "test_gate",
    own: 0,
    mask: (l, c) => {
      const mu = this.mu[l]!;
      return expandMask(mu.length, this.#span[l]!, (j) => Math.min(mu[j]!, 1) > c);
    },
    values: (l) => {
      const mu = this.mu[l]!, span = this.#span[l]!, out = new Float32Array(mu.length * span);
      for (let j = 0; j < mu.length; j++) {
        out.fill(mu[j]! <= 0 ? 0 : mu[j]! >= 1 ? 1 : mu[j]!, j * span, (j + 1) * span);
      }
      return out;
    },
  };

  softWeights(weff: Float32Array[]): boolean {
    this.#net.layers.forEach((layer, l) => {
      const mu = this.mu[l]!, z = this.#z[l]!;
      for (let j = 0; j < mu.length; j++) z[j] = mu[j]! <= 0 ? 0 : mu[j]! >= 1 ? 1 : mu[j]!;
      gateWeights(layer.w, z, this.#span[l]!, weff[l]!);
    });
    return true;
  }
}
