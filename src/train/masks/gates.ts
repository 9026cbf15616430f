import type { MethodConfig, TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/mlp.ts";
import { gaussTable, normCdf, normPdf } from "./math.ts";
import type { MaskMethod } from "./method.ts";
import { createOptimizer } from "./optimizer.ts";

/** Options for tests: a fixed noise source replaces the generator. */
export interface GatesOptions {
  noise?: (layer: number, eps: Float32Array) => void;
}

/**
 * Continuously relaxed Bernoulli gates (Gaussian stochastic gates, SCIENCE.md §1), one gate per weight:
 * `z = clamp(mu + sigma·eps, 0, 1)`, `eps ~ N(0, 1)` fresh every step, effective weight `W·z`, penalty
 * `lambda · Σ Φ(mu/sigma)` (or the mean over all gates). No straight-through estimator: the clamp's
 * gradient is 1 inside (0, 1) and 0 outside. Binary ticket: keep iff `mu > threshold`.
 */
export class BernoulliGates implements MaskMethod {
  readonly mu: Float32Array[];
  readonly #net: FrozenNet;
  readonly #u: Float32Array[];
  readonly #sigma: number;
  readonly #coef: number;
  readonly #threshold: number;
  readonly #rng: Rng;
  readonly #opt;
  readonly #noise?: GatesOptions["noise"];

  constructor(net: FrozenNet, method: MethodConfig, training: TrainingConfig, rng: Rng, opts: GatesOptions = {}) {
    this.#net = net;
    this.#rng = rng;
    this.#sigma = method.sigma;
    this.#threshold = method.threshold;
    const total = net.layers.reduce((s, l) => s + l.w.length, 0);
    this.#coef = method.penalty === "mean" ? method.lambda / total : method.lambda;
    // STG's initialisation: mu = mu_init + 0.01·N(0, 1).
    this.mu = net.layers.map((l) => {
      const m = new Float32Array(l.w.length);
      rng.fillNormal(m);
      for (let i = 0; i < m.length; i++) m[i] = method.mu_init + 0.01 * m[i]!;
      return m;
    });
    this.#u = net.layers.map((l) => new Float32Array(l.w.length));
    this.#opt = createOptimizer(training, this.mu.map((m) => m.length));
    this.#noise = opts.noise;
  }

  effectiveWeights(weff: Float32Array[]): void {
    const s = this.#sigma;
    this.#net.layers.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, out = weff[l]!;
      if (this.#noise) this.#noise(l, u);
      else this.#rng.fillNormal(u);
      for (let i = 0; i < u.length; i++) {
        const v = mu[i]! + s * u[i]!;
        u[i] = v;
        out[i] = v <= 0 ? 0 : v >= 1 ? w[i]! : w[i]! * v;
      }
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const s = this.#sigma, k = this.#coef / s * 0.3989422804014327, opt = this.#opt;
    const invS = 1 / s;
    opt.begin();
    const adam = opt.adam;
    this.#net.layers.forEach((layer, l) => {
      const u = this.#u[l]!, mu = this.mu[l]!, w = layer.w, g = dweff[l]!;
      if (adam) {
        // fused: penalty gradient, clamp gate, and the Adam step in one pass
        const m1 = adam.m1[l]!, m2 = adam.m2[l]!;
        const lr = adam.lr / adam.c1(), ic2 = 1 / adam.c2();
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
      for (let i = 0; i < mu.length; i++) {
        const m = mu[i]!, v = u[i]!;
        let grad = k * gaussTable(m * invS);
        if (v > 0 && v < 1) grad += g[i]! * w[i]!;
        mu[i] = opt.update(l, i, m, grad);
      }
    });
  }

  penalty(): number {
    let p = 0;
    for (const mu of this.mu) for (let i = 0; i < mu.length; i++) p += normCdf(mu[i]! / this.#sigma);
    return this.#coef * p;
  }

  /** d(penalty)/d(mu_i), for tests. */
  penaltyGradient(l: number, i: number): number {
    return (this.#coef / this.#sigma) * normPdf(this.mu[l]![i]! / this.#sigma);
  }

  binaryMask(l: number): Uint8Array {
    const mu = this.mu[l]!, t = this.#threshold;
    const m = new Uint8Array(mu.length);
    for (let i = 0; i < mu.length; i++) m[i] = mu[i]! > t ? 1 : 0;
    return m;
  }

  softWeights(weff: Float32Array[]): boolean {
    this.#net.layers.forEach((layer, l) => {
      const mu = this.mu[l]!, w = layer.w, out = weff[l]!;
      for (let i = 0; i < mu.length; i++) {
        const z = mu[i]! <= 0 ? 0 : mu[i]! >= 1 ? 1 : mu[i]!;
        out[i] = w[i]! * z;
      }
    });
    return true;
  }
}
