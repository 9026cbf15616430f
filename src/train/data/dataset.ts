import { DataError } from "../../util/errors.ts";
import { Rng, RNG_STREAMS } from "../../util/rng.ts";

/**
 * A labelled dataset held as typed arrays: `x` is row-major n×dim, each row one sample of `shape`
 * (`[H, W, C]`, channels last), `y` holds class indices. Batches are views or copies of rows.
 */
export interface Dataset {
  x: Float32Array;
  y: Uint8Array;
  n: number;
  dim: number;
  shape: number[];
  classes: number;
}

/** A train/test pair (and the validation set carved out of the training split) and where it came from. */
export interface DataSplit {
  train: Dataset;
  test: Dataset;
  /** Held out of the training split (disjoint from `train` and `test`); null without a validation split. */
  validation: Dataset | null;
  source: string;
}

/** How many validation samples `validation` asks for out of a training split of `trainN` (absent: none). */
export function validationCount(validation: number | "auto" | undefined, trainN: number): number {
  if (validation === undefined) return 0;
  const v = validation === "auto" ? Math.floor(trainN / 10) : validation;
  if (v >= trainN) {
    throw new DataError(
      `dataset.validation = ${v} but the training split has only ${trainN} samples; lower it (it is carved out of them)`,
    );
  }
  return v;
}

/**
 * Splits a training set into (train, validation): `v` rows drawn by a seeded shuffle (stream
 * `RNG_STREAMS.validation`, 9, of `seed`) form the validation set, the other rows stay for training in their
 * order. A partition of the rows: disjoint.
 */
export function carveValidation(d: Dataset, v: number, seed: number): { train: Dataset; validation: Dataset } {
  const idx = new Rng(seed, RNG_STREAMS.validation).shuffle(Uint32Array.from({ length: d.n }, (_, i) => i));
  const held = new Uint8Array(d.n);
  const val = idx.subarray(0, v);
  for (const i of val) held[i] = 1;
  const rest = new Uint32Array(d.n - v);
  for (let i = 0, j = 0; i < d.n; i++) if (!held[i]) rest[j++] = i;
  return { train: takeRows(d, rest), validation: takeRows(d, val) };
}

/** Copies the rows `idx` of a dataset into a new one. */
export function takeRows(d: Dataset, idx: ArrayLike<number>): Dataset {
  const x = new Float32Array(idx.length * d.dim);
  const y = new Uint8Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    x.set(d.x.subarray(r * d.dim, (r + 1) * d.dim), i * d.dim);
    y[i] = d.y[r]!;
  }
  return { ...d, x, y, n: idx.length };
}

/**
 * Standardises every value with a mean and standard deviation per channel (one value each for grey
 * images), as torchvision's `Normalize` does.
 */
export function normalise(d: Dataset, mean: number[], std: number[]): void {
  const c = mean.length;
  for (let i = 0; i < d.x.length; i++) d.x[i] = (d.x[i]! - mean[i % c]!) / std[i % c]!;
}

/** `n` rows of a dataset drawn without replacement by a seeded shuffle (all rows, in order, when n is its size). */
export function seededSubset(d: Dataset, n: number, seed: number, what: string): Dataset {
  if (n > d.n) throw new DataError(`${what} = ${n} but only ${d.n} samples exist; lower it`);
  if (n === d.n) return d;
  const idx = new Rng(seed, RNG_STREAMS.fileSubset).shuffle(Uint32Array.from({ length: d.n }, (_, i) => i));
  return takeRows(d, idx.subarray(0, n));
}

/** A seeded train/test split of one pooled dataset (packages that ship train and test together). */
export function seededSplit(
  pool: Dataset,
  train: number,
  test: number,
  seed: number,
  what: string,
): [Dataset, Dataset] {
  if (train + test > pool.n) {
    throw new DataError(`dataset.train + dataset.test = ${train + test} but ${what} has ${pool.n} samples; lower them`);
  }
  const idx = new Rng(seed, RNG_STREAMS.poolSplit).shuffle(Uint32Array.from({ length: pool.n }, (_, i) => i));
  return [takeRows(pool, idx.subarray(0, train)), takeRows(pool, idx.subarray(train, train + test))];
}
