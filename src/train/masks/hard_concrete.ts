import { z } from "zod";
import { fn, type FusedKernels, registerKernels } from "../../engine/native.ts";
import type { TrainingConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { GateLayout } from "./gate_layout.ts";
import { logF32, sigmoidF32 } from "../float32.ts";
import { type CutRule, defineMethod, type MaskMethod, optimizerFloats, SHARED_FIELDS } from "./method.ts";
import { type AdamStep, adamStepOf, createOptimizer, type ElementOptimizer } from "./optimizer.ts";

const f = Math.fround;
/** The uniform noise is kept inside [1e-6, 1 − 1e-6] (float32) so that its logit stays finite. */
const U_MIN = f(1e-6), U_MAX = f(1 - 1e-6);

/** Hard-concrete's settings (docs/science.md, "Hard-concrete"; Louizos et al.'s defaults). */
const FIELDS = {
  lambda: SHARED_FIELDS.lambda,
  penalty: SHARED_FIELDS.penalty,
  granularity: SHARED_FIELDS.granularity,
  threshold: SHARED_FIELDS.threshold,
  /** Temperature. */
  hc_beta: z.number().finite().positive().default(2 / 3),
  /** The stretch interval (gamma, zeta). */
  gamma: z.number().finite().negative().default(-0.1),
  zeta: z.number().finite().gt(1).default(1.1),
  /** Initial drop rate (Louizos et al.'s `droprate_init`): `sigmoid(log_alpha)` starts at `1 − init_p`. */
  init_p: z.number().finite().gt(0).lt(1).default(0.5),
};
export type HardConcreteConfig = z.infer<z.ZodObject<typeof FIELDS>>;

/** Hard-concrete's native kernels (hard_concrete.c), per weight in float32. */
export interface HardConcreteKernels {
  /** Uniform draws (state advanced), `s`, `z` and `weff = w·z`. */
  forward(
    s: Float32Array,
    z: Float32Array,
    logAlpha: Float32Array,
    w: Float32Array,
    weff: Float32Array,
    beta: number,
    gamma: number,
    stretch: number,
    rngState: Uint32Array,
  ): void;
  /** The gradient on log_alpha (before the optimiser), into `dz`. */
  grad(
    dz: Float32Array,
    g: Float32Array,
    w: Float32Array,
    s: Float32Array,
    logAlpha: Float32Array,
    beta: number,
    gamma: number,
    stretch: number,
    shift: number,
    coef: number,
  ): void;
  /** The same gradient and an Adam step on log_alpha in one pass (as the optimiser's step, same bits). */
  adam(
    logAlpha: Float32Array,
    g: Float32Array,
    w: Float32Array,
    s: Float32Array,
    beta: number,
    gamma: number,
    stretch: number,
    shift: number,
    coef: number,
    step: AdamStep,
  ): void;
}

const NATIVE = registerKernels<HardConcreteKernels>({
  name: "hard-concrete",
  source: new URL("./hard_concrete.c", import.meta.url),
  symbols: {
    ts_hc_forward: fn("bbbbb i fff b"),
    ts_hc_grad: fn("bbbbb i fffff"),
    ts_hc_adam: fn("bbbbbb i fffff ffff"),
  },
  bind: (f) => ({
    forward: (s, z, la, w, weff, beta, gamma, stretch, st) =>
      f.ts_hc_forward!(s, z, la, w, weff, la.length, beta, gamma, stretch, st),
    grad: (dz, g, w, s, la, beta, gamma, stretch, shift, coef) =>
      f.ts_hc_grad!(dz, g, w, s, la, la.length, beta, gamma, stretch, shift, coef),
    adam: (la, g, w, s, beta, gamma, stretch, shift, coef, a) =>
      f.ts_hc_adam!(la, g, w, s, a.m1, a.m2, la.length, beta, gamma, stretch, shift, coef, a.lr, a.wd, a.c1, a.c2),
  }),
});

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
  readonly #layout: GateLayout;
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
  readonly #kernels: HardConcreteKernels | null;
  readonly cuts: CutRule;

  constructor(
    net: FrozenNet,
    m: HardConcreteConfig,
    training: TrainingConfig,
    rng: Rng,
    opts: HardConcreteOptions = {},
  ) {
    this.#net = net;
    this.#rng = rng;
    this.#beta = m.hc_beta;
    this.#gamma = m.gamma;
    this.#zeta = m.zeta;
    this.#shift = m.hc_beta * Math.log(-m.gamma / m.zeta);
    this.#threshold = m.threshold;
    const layout = this.#layout = new GateLayout(net, m.granularity);
    this.#coef = layout.coefficient(m.lambda, m.penalty);
    this.logAlpha = layout.jittered(rng, Math.log((1 - m.init_p) / m.init_p));
    this.#s = layout.buffers();
    this.#z = layout.buffers();
    this.#kernels = NATIVE.of(opts.kernels);
    this.#opt = createOptimizer(training, layout.counts, opts.kernels);
    this.#noise = opts.noise;
    // Ticket ladder: the test-gate threshold; keep iff `testGate(log_alpha) > c`.
    this.cuts = layout.testGateCuts(this.#threshold, (l, j) => this.testGate(this.logAlpha[l]![j]!));
  }

  get params(): Float32Array[] {
    return this.logAlpha;
  }

  beginEpoch(epoch: number, epochs: number): void {
    this.#opt.beginEpoch(epoch, epochs);
  }

  effectiveWeights(weff: Float32Array[]): void {
    const beta = f(this.#beta), g = f(this.#gamma), stretch = f(this.#zeta - this.#gamma);
    this.#net.maskedParams.forEach((layer, l) => {
      const la = this.logAlpha[l]!, s = this.#s[l]!, z = this.#z[l]!;
      if (this.#kernels && !this.#noise && this.#layout.widths[l] === 1) {
        return this.#kernels.forward(s, z, la, layer.w, weff[l]!, beta, g, stretch, this.#rng.s);
      }
      if (this.#noise) this.#noise(l, s);
      else for (let j = 0; j < s.length; j++) s[j] = this.#rng.uniform();
      for (let j = 0; j < s.length; j++) {
        const u = Math.min(Math.max(s[j]!, U_MIN), U_MAX);
        const sj = sigmoidF32(f(f(logF32(f(u / f(1 - u))) + la[j]!) / beta));
        s[j] = sj;
        const v = f(f(sj * stretch) + g);
        const c0 = f(v + Math.abs(v)) * 0.5; // clamp(v, 0, 1) as the native kernel computes it
        z[j] = c0 < 1 ? c0 : 1;
      }
      this.#layout.weights(l, layer.w, z, weff[l]!);
    });
  }

  applyGradients(dweff: Float32Array[]): void {
    const beta = f(this.#beta), g = f(this.#gamma), stretch = f(this.#zeta - this.#gamma);
    const shift = f(this.#shift), coef = f(this.#coef);
    this.#opt.begin();
    this.#net.maskedParams.forEach((layer, l) => {
      const la = this.logAlpha[l]!, s = this.#s[l]!, dz = this.#z[l]!;
      if (this.#kernels && this.#layout.widths[l] === 1) {
        const adam = adamStepOf(this.#opt, l);
        if (adam) return this.#kernels.adam(la, dweff[l]!, layer.w, s, beta, g, stretch, shift, coef, adam);
        this.#kernels.grad(dz, dweff[l]!, layer.w, s, la, beta, g, stretch, shift, coef);
        this.#opt.step(l, la, dz);
        return;
      }
      this.#layout.gradients(l, dweff[l]!, layer.w, dz);
      for (let j = 0; j < la.length; j++) {
        const sj = s[j]!, v = f(f(sj * stretch) + g);
        const q = sigmoidF32(f(la[j]! - shift));
        const pen = f(f(coef * q) * f(1 - q));
        dz[j] = v > 0 && v < 1 ? f(f(f(f(f(dz[j]! * stretch) * sj) * f(1 - sj)) / beta) + pen) : pen;
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

  softWeights(weff: Float32Array[]): boolean {
    this.#net.maskedParams.forEach((layer, l) => {
      const la = this.logAlpha[l]!, z = this.#z[l]!;
      for (let j = 0; j < la.length; j++) z[j] = this.testGate(la[j]!);
      this.#layout.weights(l, layer.w, z, weff[l]!);
    });
    return true;
  }
}

/** Hard-concrete gates, registered as `hard-concrete`. */
export const method = defineMethod({
  name: "hard-concrete",
  summary: "hard-concrete gates (Louizos et al. 2018) with the expected-L0 penalty",
  fields: FIELDS,
  inEveryConfig: true,
  training: { optimizer: "adam", lr: 0.05, momentum: 0.9, weight_decay: 0, schedule: "constant" },
  ladder: "test_gate",
  memory: (c, t) => ({ floats: 3 + optimizerFloats(t), per: c.granularity === "neuron" ? "row" : "weight" }), // log_alpha, noise, gate
  create: ({ net, config, training, rng, kernels }) => new HardConcreteGates(net, config, training, rng, { kernels }),
});
