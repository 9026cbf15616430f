import type { DatasetConfig } from "../../spec/schema.ts";
import type { DataSplit } from "./dataset.ts";
import { loadMnist } from "./mnist.ts";
import { loadSynthetic } from "./synthetic.ts";

const splits = new Map<string, Promise<DataSplit>>();

/** The train/test split a dataset config names, decoded once per worker process and shared by its trials. */
export function loadDataset(cfg: DatasetConfig): Promise<DataSplit> {
  const key = JSON.stringify(cfg);
  let p = splits.get(key);
  if (!p) {
    p = cfg.name === "mnist"
      ? loadMnist(cfg.train, cfg.test, cfg.split_seed)
      : Promise.resolve(loadSynthetic(cfg.train, cfg.test, cfg.split_seed));
    splits.set(key, p);
    p.catch(() => splits.delete(key));
  }
  return p;
}
