import type { Rng } from "../../util/rng.ts";

/**
 * Copies one `[H, W, C]` image into `out` with CIFAR's standard augmentation: a random `H×W` crop of the
 * image zero-padded by `pad` pixels, then a horizontal flip with probability ½; the draws come from `rng`.
 * (Zero is the padding value after normalisation, i.e. the mean pixel.)
 */
export function augmentInto(src: Float32Array, shape: number[], rng: Rng, out: Float32Array, pad = 4): void {
  const [H, W, C] = shape as [number, number, number];
  const dy = rng.int(2 * pad + 1) - pad, dx = rng.int(2 * pad + 1) - pad;
  const flip = rng.uniform() < 0.5;
  for (let y = 0; y < H; y++) {
    const sy = y + dy;
    for (let x = 0; x < W; x++) {
      const sx = (flip ? W - 1 - x : x) + dx;
      const o = (y * W + x) * C;
      if (sy < 0 || sy >= H || sx < 0 || sx >= W) { for (let c = 0; c < C; c++) out[o + c] = 0; }
      else for (let c = 0; c < C; c++) out[o + c] = src[(sy * W + sx) * C + c]!;
    }
  }
}
