import type { MethodConfig, TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { logF32, sigmoidF32 } from "./math.ts";
import type { FusedKernels } from "../../engine/native.ts";
import { type CutRule, expandMask, gateGradients, gateSpan, gateWeights, type MaskMethod } from "./method.ts";
import { createOptimizer, type ElementOptimizer } from "./optimizer.ts";

const f = Math.fround;
/** The uniform noise is kept inside [1e-6, 1 − 1e-6] (float32) so that its logit stays finite. */
const U_MIN = f(1e-6), U_MAX = f(1 - 1e-6);

/** Options for tests: a fixed source of the uniform noise `u` replaces the generator. */
export interface HardConcreteOptions {
  noise?: (layer: number, u: Float32Array) => void;
  /** Native per-weight kernels (same numbers as the loops here). */
  kernels?: FusedKernels | null;
}

/**
 * Hard-concrete gates (Louizos, Welling, Kingma 2018; docs/science.md), per weight or per output neuron:
 * `u ~ U(0, 1)`, `s = sigmoid((log u − log(1−u) + log_alpha) / beta)`, `z = clamp(s·(zeta−gamma) + gamma, 0, 1)`;
 * expected-L0 penalty `lambda · Σ sigmoid(log_alpha − beta·log(−gamma/zeta))`. Test gate
 * `clamp(sigmoid(log_alpha)·(zeta−gamma) + gamma, 0, 1)`; the binary ticket keeps it iff above `threshold`.
 */
export class HardConcreteGates implements MaskMethod {
  readonly name = "hard-concrete";
  readonly trainsWeights = false;
  readonly logAlpha: Float32Array[];
  readonly #net: FrozenNet;
  readonly #span: number[];
  readonly #s: Float32Array[];
  readonly #z: Float32Array[];
  readonly #beta: number;
  readonly #gamma: number;
  readonly #zeta: number;
  readonly #shift: number;
  readonly #coef: number;
  readonly #threshold: number;
  readonly #rng: Rng;
  readonly #opt: ElementOptimizer;
  readonly #noise?: HardConcreteOptions["noise"];
  readonly #kernels: FusedKernels | null;

  constructor(net: FrozenNet, m: MethodConfig, training: TrainingConfig, rng: Rng, opts: HardConcreteOptions = {}) {
    this.#net = net;
    this.#rng = rng;
    this.#beta = m.hc_beta;
    this.#gamma = m.gamma;
    this.#zeta = m.zeta;
    this.#shift = m.hc_beta * Math.log(-m.gamma / m.zeta);
    this.#threshold = m.threshold;
    this.cuts = { ...this.cuts, own: this.#threshold };
    this.#span = gateSpan(net, m.granularity);
    const counts = net.layers.map((l, i) => l.w.length / this.#span[i]!);
    const total = counts.reduce((s, n) => s + n, 0);
    this.#coef = m.penalty === "mean" ? m.lambda / total : m.lambda;
    const init = Math.log((1 - m.init_p) / m.init_p);
    this.logAlpha = counts.map((n) => {
      const a = new Float32Array(n);
      rng.fillNormal(a);
      for (let i = 0; i < n; i++) a[i] = init + 0.01 * a[i]!;
      return a;
    });
    this.#s = counts.map((n) => new Float32Array(n));
    this.#z = counts.map((n) => new Float32Array(n));
    this.#kernels = opts.kernels ?? null;
    this.#opt = createOptimizer(training, counts, this.#kernels);
    this.#noise = opts.noise;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    const beta = f(this.#beta), g = f(this.#gamma), span = f(this.#zeta - this.#gamma);
    this.#net.layers.forEach((layer, l) => {
      const la = this.logAlpha[l]!, s = this.#s[l]!, z = this.#z[l]!;
      if (this.#kernels && !this.#noise && this.#span[l] === 1) {
        return this.#kernels.hcForward(s, z, la, layer.w, weff[l]!, beta, g, span, this.#rng.s);
      }
      if (this.#noise) this.#noise(l, s);
      else for (let j = 0; j < s.length; j++) s[j] = this.#rng.uniform();
      for (let j = 0; j < s.length; j++) {
        const u = Math.min(Math.max(s[j]!, U_MIN), U_MAX);
        const sj = sigmoidF32(f(f(logF32(f(u / f(1 - u))) + la[j]!) / beta));
        s[j] = sj;
        const v = f(f(sj * span) + g);
        const c0 = f(v + Math.abs(v)) * 0.5; // clamp(v, 0, 1) as the native kernel computes it
        z[j] = c0 < 1 ? c0 : 1;
      }
      gateWeights(layer.w, z, this.#span[l]!, weff[l]!);
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const beta = f(this.#beta), g = f(this.#gamma), span = f(this.#zeta - this.#gamma);
    const shift = f(this.#shift), coef = f(this.#coef);
    this.#opt.begin();
    this.#net.layers.forEach((layer, l) => {
      const la = this.logAlpha[l]!, s = this.#s[l]!, dz = this.#z[l]!;
      if (this.#kernels && this.#span[l] === 1) {
        this.#kernels.hcGrad(dz, dweff[l]!, layer.w, s, la, beta, g, span, shift, coef);
        this.#opt.step(l, la, dz);
        return;
      }
      gateGradients(dweff[l]!, layer.w, this.#span[l]!, dz);
      for (let j = 0; j < la.length; j++) {
        const sj = s[j]!, v = f(f(sj * span) + g);
        const q = sigmoidF32(f(la[j]! - shift));
        const pen = f(f(coef * q) * f(1 - q));
        dz[j] = v > 0 && v < 1 ? f(f(f(f(f(dz[j]! * span) * sj) * f(1 - sj)) / beta) + pen) : pen;
      }
      this.#opt.step(l, la, dz);
    });
  }

  penalty(): number {
    let p = 0;
    const shift = f(this.#shift);
    for (const la of this.logAlpha) for (let j = 0; j < la.length; j++) p += sigmoidF32(f(la[j]! - shift));
    return this.#coef * p;
  }

  /** The deterministic test gate of one log_alpha. */
  testGate(logAlpha: number): number {
    const v = f(f(sigmoidF32(logAlpha) * f(this.#zeta - this.#gamma)) + f(this.#gamma));
    return v <= 0 ? 0 : v >= 1 ? 1 : v;
  }

  binaryMask(l: number): Uint8Array {
    return this.cuts.mask(l, this.#threshold);
  }

  /** Ticket ladder: the test-gate threshold; keep iff `testGate(log_alpha) > c`. */
  cuts: CutRule = {
    rule: "test_gate",
    own: 0,
    mask: (l, c) => {
      const la = this.logAlpha[l]!;
      return expandMask(la.length, this.#span[l]!, (j) => this.testGate(la[j]!) > c);
    },
    values: (l) => {
      const la = this.logAlpha[l]!, span = this.#span[l]!, out = new Float32Array(la.length * span);
      for (let j = 0; j < la.length; j++) out.fill(this.testGate(la[j]!), j * span, (j + 1) * span);
      return out;
    },
  };

  softWeights(weff: Float32Array[]): boolean {
    this.#net.layers.forEach((layer, l) => {
      const la = this.logAlpha[l]!, z = this.#z[l]!;
      for (let j = 0; j < la.length; j++) z[j] = this.testGate(la[j]!);
      gateWeights(layer.w, z, this.#span[l]!, weff[l]!);
    });
    return true;
  }
}
