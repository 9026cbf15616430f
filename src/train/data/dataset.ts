/** A labelled dataset held as typed arrays: `x` is row-major n×dim, `y` holds class indices. */
export interface Dataset {
  x: Float32Array;
  y: Uint8Array;
  n: number;
  dim: number;
  classes: number;
}

/** A train/test pair and a description of where it came from. */
export interface DataSplit {
  train: Dataset;
  test: Dataset;
  source: string;
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
  return { x, y, n: idx.length, dim: d.dim, classes: d.classes };
}

/** Standardises every value with one mean and standard deviation (the usual MNIST normalisation). */
export function normalise(d: Dataset, mean: number, std: number): void {
  for (let i = 0; i < d.x.length; i++) d.x[i] = (d.x[i]! - mean) / std;
}
