/**
 * What one finished pack measured: how many trials it trained together, their steps and their training time
 * (summed over its trials; they run interleaved, so it is the pack's training wall time without loading and
 * evaluation).
 */
export interface PackSample {
  k: number;
  steps: number;
  trainS: number;
  /** Masked weights of one of its trials (for the memory bound). */
  weights: number;
}

/** Bytes one trial holds per masked weight: effective weights, gradients, mask state, optimiser moments, noise. */
const BYTES_PER_WEIGHT = 4 * 8;
/** A larger K must beat the best so far by this factor to be kept. */
const GAIN = 1.05;

/**
 * Chooses how many compatible trials a worker trains together (`--pack auto`): starts at 1, doubles K while
 * the packs' throughput (training steps per second, all trials together) improves by 5%, and stays at the
 * best K once a doubling does not pay; K never exceeds `max` nor half the free memory's worth of trials. The
 * first pack (process warm-up) is not compared.
 */
export class PackTuner {
  #k = 1;
  #best: { k: number; rate: number } | null = null;
  #settled = false;
  /** The first pack warms up the process (compilation, caches) and is not compared. */
  #warm = false;
  #memoryCap = Infinity;
  readonly #max: number;
  readonly #freeBytes: () => number;

  constructor(max = 16, freeBytes: () => number = () => Deno.systemMemoryInfo().available) {
    this.#max = max;
    this.#freeBytes = freeBytes;
  }

  /** K for the next pack. */
  get k(): number {
    return Math.max(1, Math.min(this.#k, this.#max, this.#memoryCap));
  }

  /** Takes a finished pack's measurement; returns a line saying what changed, or null. */
  record(s: PackSample): string | null {
    this.#memoryCap = Math.max(1, Math.floor(this.#freeBytes() / 2 / (s.weights * BYTES_PER_WEIGHT)));
    if (!this.#warm) {
      this.#warm = true;
      return null;
    }
    if (this.#settled || s.k !== this.k || s.trainS <= 0) return null;
    const rate = s.steps / s.trainS;
    if (!this.#best || rate > this.#best.rate * GAIN) {
      const before = this.#best;
      this.#best = { k: s.k, rate };
      if (this.k * 2 > Math.min(this.#max, this.#memoryCap)) {
        this.#settled = true;
        return `pack auto: K = ${s.k} (${rate.toFixed(0)} steps/s; the memory or --pack bound stops there)`;
      }
      this.#k = this.k * 2;
      return before
        ? `pack auto: K = ${s.k} ran ${
          (rate / before.rate).toFixed(2)
        }× the steps/s of K = ${before.k}; trying ${this.#k}`
        : `pack auto: K = ${s.k} runs ${rate.toFixed(0)} steps/s; trying ${this.#k}`;
    }
    this.#settled = true;
    this.#k = this.#best.k;
    return `pack auto: K = ${s.k} ran ${(rate / this.#best.rate).toFixed(2)}× the steps/s of K = ${this.#best.k}; ` +
      `staying at ${this.#best.k}`;
  }
}
