import type { DatasetConfig } from "../../spec/schema.ts";
import { loadCifar10 } from "./cifar10.ts";
import { carveValidation, type DataSplit, validationCount } from "./dataset.ts";
import { loadFashionMnist } from "./fashion_mnist.ts";
import { loadIdx } from "./idx.ts";
import { loadMnist } from "./mnist.ts";
import { loadSynthetic } from "./synthetic.ts";

const splits = new Map<string, Promise<DataSplit>>();

/**
 * The dataset's train/test split, then `dataset.validation` samples carved out of the training split by
 * `split_seed` ({@link carveValidation}); the test split is the same with or without one.
 */
async function load(cfg: DatasetConfig): Promise<DataSplit> {
  const split = await loadTrainTest(cfg);
  const v = validationCount(cfg.validation, split.train.n);
  if (v === 0) return split;
  const { train, validation } = carveValidation(split.train, v, cfg.split_seed);
  return {
    train,
    test: split.test,
    validation,
    source: `${split.source}; validation ${v} held out of the ${split.train.n} training samples (${train.n} train)`,
  };
}

function loadTrainTest(cfg: DatasetConfig): Promise<DataSplit> {
  switch (cfg.name) {
    case "mnist":
      return loadMnist(cfg.train ?? 8000, cfg.test ?? 2000, cfg.split_seed);
    case "fashion-mnist":
      return loadFashionMnist(cfg.train ?? 60000, cfg.test ?? 10000, cfg.split_seed);
    case "idx":
      return loadIdx(cfg.path!, cfg.train, cfg.test, cfg.split_seed);
    case "cifar10":
      return loadCifar10(cfg.path!, cfg.train, cfg.test, cfg.split_seed);
    case "synthetic":
      return Promise.resolve(loadSynthetic(cfg.train ?? 512, cfg.test ?? 256, cfg.split_seed));
  }
}

/**
 * The train/test split a dataset config names, decoded once per worker process and shared by its trials
 * (augmentation happens per batch, so it is not part of the key).
 */
export function loadDataset(cfg: DatasetConfig): Promise<DataSplit> {
  const key = JSON.stringify({ ...cfg, augment: false });
  let p = splits.get(key);
  if (!p) {
    p = load(cfg);
    splits.set(key, p);
    p.catch(() => splits.delete(key));
  }
  return p;
}
