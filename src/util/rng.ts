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
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
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
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 = s2 ^ s0;
    this.#s3 = s3 ^ s1;
    this.#s1 = s1 ^ this.#s2;
    this.#s0 = s0 ^ this.#s3;
    this.#s2 ^= t;
    this.#s3 = (this.#s3 << 11) | (this.#s3 >>> 21);
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

  /** Fills `out` with standard normal samples; the fast path for per-weight noise. */
  fillNormal(out: Float32Array): void {
    const n = out.length;
    let i = 0;
    if (this.#hasSpare && n > 0) {
      out[i++] = this.#spare;
      this.#hasSpare = false;
    }
    for (; i + 1 < n; i += 2) {
      const u = this.uniformOpen(), v = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      const a = 6.283185307179586 * v;
      out[i] = r * Math.cos(a);
      out[i + 1] = r * Math.sin(a);
    }
    if (i < n) out[i] = this.normal();
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
