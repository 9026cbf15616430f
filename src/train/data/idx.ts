import { DataError } from "../../util/errors.ts";
import { type Dataset, type DataSplit, normalise, seededSubset } from "./dataset.ts";
import { readMaybeGzipped } from "./files.ts";
import { MNIST_MEAN, MNIST_STD } from "./mnist.ts";

/** A decoded IDX file: its dimensions and its unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Decodes an IDX file (LeCun's MNIST format): magic `0x00 0x00 0x08 <ndims>` (unsigned bytes), then
 * `ndims` big-endian 32-bit sizes, then the data.
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DataError(`${name}: not an IDX file (bad magic)`);
  if (bytes[2] !== 0x08) {
    throw new DataError(`${name}: IDX type 0x${bytes[2]!.toString(16)} unsupported (expected 0x08, ubyte)`);
  }
  const nd = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => view.getUint32(4 + 4 * i));
  const start = 4 + 4 * nd, size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < start + size) {
    throw new DataError(`${name}: truncated (${bytes.length - start} data bytes, dims ${dims.join("×")} need ${size})`);
  }
  return { dims, data: bytes.subarray(start, start + size) };
}

export const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

async function readPair(dir: string, images: string, labels: string): Promise<Dataset> {
  const what = "dataset idx";
  const img = parseIdx(await readMaybeGzipped(dir, images, what), images);
  const lab = parseIdx(await readMaybeGzipped(dir, labels, what), labels);
  if (img.dims.length !== 3) {
    throw new DataError(`${images}: expected 3 dimensions (n, rows, cols), found ${img.dims.length}`);
  }
  const [n, h, w] = img.dims as [number, number, number];
  if (lab.dims[0] !== n) throw new DataError(`${labels}: ${lab.dims[0]} labels for ${n} images in ${images}`);
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; i++) x[i] = img.data[i]! / 255;
  const y = Uint8Array.from(lab.data);
  return { x, y, n, dim: h * w, shape: [h, w, 1], classes: Math.max(...y) + 1 };
}

/**
 * MNIST-format IDX files from a local folder (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 * `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`): the files' own train/test
 * split, optionally a seeded subset of each; normalised with the MNIST mean and standard deviation.
 */
export async function loadIdx(
  dir: string,
  train: number | undefined,
  test: number | undefined,
  seed: number,
): Promise<DataSplit> {
  const fullTrain = await readPair(dir, IDX_FILES.trainImages, IDX_FILES.trainLabels);
  const fullTest = await readPair(dir, IDX_FILES.testImages, IDX_FILES.testLabels);
  const classes = Math.max(fullTrain.classes, fullTest.classes);
  const tr = { ...seededSubset(fullTrain, train ?? fullTrain.n, seed, "dataset.train"), classes };
  const te = { ...seededSubset(fullTest, test ?? fullTest.n, seed + 1, "dataset.test"), classes };
  normalise(tr, [MNIST_MEAN], [MNIST_STD]);
  normalise(te, [MNIST_MEAN], [MNIST_STD]);
  return { train: tr, test: te, validation: null, source: `IDX files in ${dir} (${tr.n}/${te.n}, split_seed ${seed})` };
}
