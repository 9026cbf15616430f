import { Rng, RNG_STREAMS } from "../../util/rng.ts";
import type { Dataset, DataSplit } from "./dataset.ts";

export const SYNTHETIC_DIM = 64;
export const SYNTHETIC_CLASSES = 4;

/**
 * A small seeded classification task for tests: each class is a Gaussian blob around a random centre in
 * 64 dimensions (an 8×8 grey "image" for convolutional nets); learnable in a few steps, and the same for the same seed everywhere.
 */
export function loadSynthetic(train: number, test: number, seed: number): DataSplit {
  const rng = new Rng(seed, RNG_STREAMS.synthetic);
  const centres = new Float32Array(SYNTHETIC_CLASSES * SYNTHETIC_DIM);
  rng.fillNormal(centres);
  const make = (n: number): Dataset => {
    const x = new Float32Array(n * SYNTHETIC_DIM);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = rng.int(SYNTHETIC_CLASSES);
      y[i] = c;
      for (let j = 0; j < SYNTHETIC_DIM; j++) {
        x[i * SYNTHETIC_DIM + j] = centres[c * SYNTHETIC_DIM + j]! + 1.5 * rng.normal();
      }
    }
    return { x, y, n, dim: SYNTHETIC_DIM, shape: [8, 8, 1], classes: SYNTHETIC_CLASSES };
  };
  return { train: make(train), test: make(test), validation: null, source: `synthetic blobs (seed ${seed})` };
}
