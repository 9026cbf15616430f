import { DataError } from "../../util/errors.ts";
import { type Dataset, type DataSplit, normalise, seededSubset } from "./dataset.ts";
import { readMaybeGzipped } from "./files.ts";

const RECORD = 1 + 3072;
export const CIFAR_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD = [0.2470, 0.2435, 0.2616];
export const CIFAR_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR_TEST_FILE = "test_batch.bin";

/**
 * Decodes CIFAR-10 binary records (`<label byte><1024 red><1024 green><1024 blue>`, row-major 32×32
 * planes) into channels-last images with pixels in [0, 1].
 */
export function parseCifar(bytes: Uint8Array, name: string): Dataset {
  if (bytes.length % RECORD !== 0) {
    throw new DataError(`${name}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte CIFAR-10 records`);
  }
  const n = bytes.length / RECORD;
  const x = new Float32Array(n * 3072), y = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    const o = r * RECORD;
    const label = bytes[o]!;
    if (label > 9) throw new DataError(`${name}: record ${r} has label ${label}, expected 0-9`);
    y[r] = label;
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) x[r * 3072 + p * 3 + c] = bytes[o + 1 + c * 1024 + p]! / 255;
    }
  }
  return { x, y, n, dim: 3072, shape: [32, 32, 3], classes: 10 };
}

function concat(parts: Dataset[]): Dataset {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const x = new Float32Array(n * 3072), y = new Uint8Array(n);
  let row = 0;
  for (const p of parts) {
    x.set(p.x, row * 3072);
    y.set(p.y, row);
    row += p.n;
  }
  return { x, y, n, dim: 3072, shape: [32, 32, 3], classes: 10 };
}

/**
 * CIFAR-10 in its binary format from a local folder (`data_batch_1.bin` … `data_batch_5.bin`,
 * `test_batch.bin`, as in `cifar-10-batches-bin/`): the files' own split, optionally a seeded subset;
 * normalised per channel.
 */
export async function loadCifar10(
  dir: string,
  train: number | undefined,
  test: number | undefined,
  seed: number,
): Promise<DataSplit> {
  const what = "dataset cifar10";
  const trainParts: Dataset[] = [];
  for (const f of CIFAR_TRAIN_FILES) trainParts.push(parseCifar(await readMaybeGzipped(dir, f, what), f));
  const fullTrain = concat(trainParts);
  const fullTest = parseCifar(await readMaybeGzipped(dir, CIFAR_TEST_FILE, what), CIFAR_TEST_FILE);
  const tr = seededSubset(fullTrain, train ?? fullTrain.n, seed, "dataset.train");
  const te = seededSubset(fullTest, test ?? fullTest.n, seed + 1, "dataset.test");
  normalise(tr, CIFAR_MEAN, CIFAR_STD);
  normalise(te, CIFAR_MEAN, CIFAR_STD);
  return {
    train: tr,
    test: te,
    validation: null,
    source: `CIFAR-10 binary files in ${dir} (${tr.n}/${te.n}, split_seed ${seed})`,
  };
}
