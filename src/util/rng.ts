/**
 * Every stream id a generator is derived with (`new Rng(seed, stream)`), by the seed it is derived from; the
 * table in docs/architecture.md ("Random streams") says what each draws. Each stream of a seed is its own
 * sequence; one stream used for two kinds of draws would couple them, so a new kind of draw takes a new id here.
 * `weights` and `proposal` are bases: tensor `i` takes `weights + i`, proposal `n` takes `proposal + n`.
 */
export const RNG_STREAMS = {
  /** `search.seed`: random search's samples (method and parameter values), src/spec/expand.ts. */
  randomSearch: 1,
  /** Trial `seed`: the mask method's initial parameters and its noise at every step, src/train/trial.ts. */
  method: 2,
  /** Trial `seed`: the order of the training rows, shuffled every epoch (one order for a pack). */
  batchOrder: 3,
  /** Trial `seed`: augmentation (random crop and flip). */
  augment: 4,
  /** `search.seed`: adaptive search's initial design (the Latin hypercube's permutations). */
  initialDesign: 7,
  /** `dataset.split_seed`: the train/test split of a pooled package (mnist, fashion-mnist). */
  poolSplit: 7,
  /** `dataset.split_seed` (train) and `split_seed + 1` (test): the subsets of idx and cifar10's own splits. */
  fileSubset: 8,
  /** `dataset.split_seed`: the validation rows held out of the training split. */
  validation: 9,
  /** `dataset.split_seed`: the synthetic dataset (class centres, labels, samples). */
  synthetic: 11,
  /** The analysis seed (0): hypervolume's bootstrap over seeds, src/pareto/hypervolume.ts. */
  hypervolumeBootstrap: 21,
  /** The analysis seed (0): the bootstrap of front comparisons, src/pareto/compare.ts. */
  compareBootstrap: 22,
  /** `model.weight_seed`: the frozen network's tensor `i` (in build order) takes `weights + i`. */
  weights: 1000,
  /** `search.seed`: adaptive proposal `n` takes `proposal + n`. */
  proposal: 1000,
} as const;

/**
 * Seeded pseudo-random numbers: xoshiro128** seeded through splitmix32.
 *
 * Every random draw in ticketsweep goes through this generator (never `Math.random`), so the same seed gives
 * the same numbers in any process on any machine.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = new Rng(7), b = new Rng(7);
 * if (a.uniform() !== b.uniform()) throw new Error("not reproducible");
 * ```
 */
export class Rng {
  /** xoshiro128** state: four 32-bit words. */
  readonly s = new Uint32Array(4);
  #spare = 0;
  #hasSpare = false;

  /** Seeds the generator; `stream` selects an independent sequence for the same seed. */
  constructor(seed: number, stream = 0) {
    let x = (Math.floor(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s[0] = next();
    this.s[1] = next();
    this.s[2] = next();
    this.s[3] = next();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const st = this.s;
    const s1 = st[1]!;
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    st[2]! ^= st[0]!;
    st[3]! ^= s1;
    st[1]! ^= st[2]!;
    st[0]! ^= st[3]!;
    st[2]! ^= t;
    st[3] = (st[3]! << 11) | (st[3]! >>> 21);
    return r;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in the open interval (0, 1). */
  uniformOpen(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal sample (Box–Muller, both outputs used). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const u = this.uniformOpen(), v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * v;
    this.#spare = r * Math.sin(a);
    this.#hasSpare = true;
    return r * Math.cos(a);
  }

  /**
   * Fills `out` with standard normal samples: the fast path for per-weight noise (Marsaglia–Tsang ziggurat,
   * 128 layers, generator inlined; about 5 ns a sample against 30 for Box–Muller).
   */
  fillNormal(out: Float32Array): void {
    const st = this.s;
    let s0 = st[0]!, s1 = st[1]!, s2 = st[2]!, s3 = st[3]!;
    const n = out.length;
    for (let i = 0; i < n; i++) {
      // xoshiro128**, inlined
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9);
      // the layer from the low 7 bits, the value from the other 25, so that the two are independent
      const iz = r & 127;
      const hz = r & ~127;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      if (Math.abs(hz) < KN[iz]!) {
        out[i] = hz * WN[iz]!;
        continue;
      }
      // slow path (about 1.2% of draws): hand the state back and use the general routine
      st[0] = s0;
      st[1] = s1;
      st[2] = s2;
      st[3] = s3;
      out[i] = this.#zigguratTail(hz, iz);
      s0 = st[0]!;
      s1 = st[1]!;
      s2 = st[2]!;
      s3 = st[3]!;
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
  }

  #zigguratTail(hz: number, iz: number): number {
    const r = 3.442619855899;
    for (;;) {
      const x = hz * WN[iz]!;
      if (iz === 0) {
        let xx: number, y: number;
        do {
          xx = -Math.log(this.uniformOpen()) / r;
          y = -Math.log(this.uniformOpen());
        } while (y + y < xx * xx);
        return hz > 0 ? r + xx : -r - xx;
      }
      if (FN[iz]! + this.uniform() * (FN[iz - 1]! - FN[iz]!) < Math.exp(-0.5 * x * x)) return x;
      const u = this.nextU32() | 0;
      iz = u & 127;
      hz = u & ~127;
      if (Math.abs(hz) < KN[iz]!) return hz * WN[iz]!;
    }
  }

  /** Fills `out` with uniform samples in the open interval (0, 1). */
  fillUniformOpen(out: Float32Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.uniformOpen();
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

// Ziggurat tables (Marsaglia & Tsang 2000, 128 layers, 32-bit signed draws); native kernels get the same ones.
const KN = new Float64Array(128);
const WN = new Float64Array(128);
const FN = new Float64Array(128);
export const ZIGGURAT = { KN, WN, FN } as const;
{
  const m1 = 2147483648.0;
  let dn = 3.442619855899, tn = dn;
  const vn = 9.91256303526217e-3;
  const q = vn / Math.exp(-0.5 * dn * dn);
  KN[0] = (dn / q) * m1;
  KN[1] = 0;
  WN[0] = q / m1;
  WN[127] = dn / m1;
  FN[0] = 1;
  FN[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = (dn / tn) * m1;
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / m1;
  }
}
