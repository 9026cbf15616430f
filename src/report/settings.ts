import type { Trial } from "../spec/expand.ts";
import { DEFAULT_TRAIN, METHOD_FIELDS, type MethodName } from "../spec/schema.ts";
import { layersText } from "../train/nets/custom.ts";

/** The settings of one sweep as text, from its planned trials' configurations (every default resolved). */
export interface SweepSettings {
  /** The sweep's label in a comparison (its name, or its id where two sweeps share a name). */
  sweep: string;
  sweep_id: string;
  /** Setting → value, in a fixed order (data, network, training, method, seeds, swept parameters). */
  values: Record<string, string>;
}

/** One setting that differs between the compared sweeps: its value in each (`—`: not set there). */
export interface SettingDiff {
  setting: string;
  values: string[];
}

/** A difference that makes the fronts not comparable: what differs, where, and why it matters. */
export interface ComparabilityIssue {
  what: string;
  settings: SettingDiff[];
  why: string;
}

/** What a comparison says when no setting differs, and when none of the differences matters for comparability. */
export const NO_DIFFERENCE = "None: the sweeps' data, network, training and method settings, seeds and swept ranges " +
  "are the same.";
export const COMPARABLE = "The fronts are comparable: same data, sizes, split, network, initialiser, weight seed " +
  "and epochs.";

/** The test-split size of the packaged datasets when a spec leaves `test` out (idx, cifar10: their files'). */
const DEFAULT_TEST: Record<string, number> = { mnist: 2000, "fashion-mnist": 10000, synthetic: 256 };
const TRAINING_FIELDS = ["epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule"];
const VIT_FIELDS = ["patch_size", "dim", "depth", "heads", "mlp_ratio"];
const ABSENT = "—";

const show = (v: unknown): string =>
  v === undefined || v === null ? ABSENT : Array.isArray(v) ? `[${v.map(show).join(", ")}]` : String(v);

/** One value, or `method: value` per method where the methods differ (methods sorted by name). */
function perMethod(entries: [string, unknown][]): string {
  const by = new Map<string, Set<string>>();
  for (const [m, v] of entries) by.set(m, (by.get(m) ?? new Set()).add(show(v)));
  const all = new Set([...by.values()].flatMap((s) => [...s]));
  if (all.size <= 1) return [...all][0] ?? ABSENT;
  return [...by.keys()].sort().map((m) => `${m}: ${[...by.get(m)!].join(", ")}`).join("; ");
}

/** The values a swept parameter takes in `trials`: a short list, or `min … max (n values)`. */
function sweptRange(trials: Iterable<Trial>, param: string): string {
  const seen = new Set<unknown>(); // one pass, no list of 100,000 values first
  for (const t of trials) {
    if (!(param in t.params)) continue;
    const v = t.params[param];
    seen.add(typeof v === "number" ? v : show(v));
  }
  const distinct = [...seen];
  if (distinct.every((v) => typeof v === "number")) {
    const nums = (distinct as number[]).sort((a, b) => a - b);
    const fmt = (x: number) => String(Number(x.toPrecision(4)));
    return nums.length <= 5
      ? nums.map(fmt).join(", ")
      : `${fmt(nums[0]!)} … ${fmt(nums[nums.length - 1]!)} (${nums.length} values)`;
  }
  return distinct.map(String).join(", ");
}

/**
 * The settings of a sweep from its trials: dataset (name, path, train/test/validation sizes resolved, split seed,
 * augmentation), network (architecture, widths, ViT sizes or custom layers, initialiser, weight seed, masked
 * tensors), training and method settings that are not swept (one value, or one per method), tickets, engine,
 * methods, seeds, and each swept parameter's values. Trials with partial configurations (hand-made ones) give
 * what they have.
 */
export function sweepSettings(
  sweep: string,
  sweepId: string,
  trials: Iterable<Trial>,
  configOf: (t: Trial) => Trial["config"] = (t) => t.config,
): SweepSettings {
  const values: Record<string, string> = {};
  // each configuration once (trials that share one configuration object tell nothing more), in the trials' order:
  // a 100,000-trial sweep is read field by field over its methods' configurations, not over 100,000 trials
  const distinct = new Set<Trial["config"]>();
  for (const t of trials) distinct.add(configOf(t)); // no list of 100,000 first
  const configs = [...distinct];
  const first = configs[0];
  const ds = first?.dataset, model = first?.model;
  const swept = new Set<string>();
  for (const t of trials) for (const k of Object.keys(t.params)) swept.add(k);
  if (ds) {
    values["dataset.name"] = ds.name;
    if (configs.some((c) => c.dataset?.path !== undefined)) values["dataset.path"] = show(ds.path);
    const train = ds.train ?? DEFAULT_TRAIN[ds.name];
    values["dataset.train"] = train === undefined ? "all of its training files" : String(train);
    const test = ds.test ?? DEFAULT_TEST[ds.name];
    values["dataset.test"] = test === undefined ? "all of its test files" : String(test);
    values["dataset.validation"] = ds.validation === undefined
      ? "none"
      : ds.validation === "auto"
      ? train === undefined ? "auto (a tenth of the training split)" : `${Math.floor(train / 10)} (auto)`
      : String(ds.validation);
    values["dataset.split_seed"] = show(ds.split_seed);
    values["dataset.augment"] = show(ds.augment);
  }
  if (model) {
    values["model.architecture"] = model.architecture;
    if (model.architecture === "mlp") values["model.widths"] = show(model.widths);
    if (model.architecture === "custom" && model.layers) {
      values["model.layers"] = layersText(model.layers);
      for (const [b, l] of Object.entries(model.blocks ?? {})) values[`model.blocks.${b}`] = layersText(l);
    }
    if (model.architecture === "vit") {
      for (const f of VIT_FIELDS) values[`model.${f}`] = show((model as Record<string, unknown>)[f]);
    }
    values["model.init"] = model.init;
    values["model.weight_seed"] = show(model.weight_seed);
    values["model.masked"] = show(model.masked);
  }
  const methodOf = (c: Trial["config"]) => c.method?.name ?? "?";
  for (const f of TRAINING_FIELDS) {
    if (swept.has(f) || !configs.some((c) => c.training)) continue;
    values[`training.${f}`] = perMethod(
      configs.map((c) => [methodOf(c), (c.training as Record<string, unknown> | undefined)?.[f]]),
    );
  }
  const methods = [...new Set(configs.map(methodOf))];
  const fields = [...new Set(methods.flatMap((m) => METHOD_FIELDS[m as MethodName] ?? []))];
  for (const f of fields) {
    if (swept.has(f)) continue;
    const readers = configs.filter((c) => (METHOD_FIELDS[methodOf(c) as MethodName] ?? []).includes(f));
    values[`method.${f}`] = perMethod(
      readers.map((c) => [methodOf(c), (c.method as Record<string, unknown> | undefined)?.[f]]),
    );
  }
  if (first?.tickets !== undefined || configs.some((c) => c.tickets)) {
    values["tickets.cuts"] = show(first?.tickets?.cuts ?? "none");
  }
  if (first?.backend !== undefined) values["backend"] = first.backend;
  values["methods"] = methods.join(", ");
  const seeds = new Set<number>();
  for (const t of trials) seeds.add(t.seed);
  values["seeds"] = [...seeds].sort((a, b) => a - b).join(", ");
  for (const p of [...swept].sort()) {
    if (p !== "method") values[`swept ${p}`] = sweptRange(trials, p);
  }
  return { sweep, sweep_id: sweepId, values };
}

/** A sweep's column heading in the settings table: its label, with its id when that is not the label. */
export function sweepHeading(s: SweepSettings): string {
  return s.sweep === s.sweep_id ? s.sweep : `${s.sweep} (${s.sweep_id})`;
}

/** The settings that differ between sweeps (any value not equal to the others), in the first sweep's order. */
export function settingsDiff(list: readonly SweepSettings[]): SettingDiff[] {
  const keys = [...new Set(list.flatMap((s) => Object.keys(s.values)))];
  return keys
    .map((setting) => ({ setting, values: list.map((s) => s.values[setting] ?? ABSENT) }))
    .filter((d) => new Set(d.values).size > 1);
}

/** Which differences make fronts not comparable, and why (in the order a reader should weigh them). */
const NOT_COMPARABLE: { what: string; match: (setting: string) => boolean; why: string }[] = [
  {
    what: "dataset",
    match: (s) => s === "dataset.name" || s === "dataset.path",
    why: "the accuracies are measured on different data",
  },
  {
    what: "data sizes",
    match: (s) => s === "dataset.train" || s === "dataset.test" || s === "dataset.validation",
    why: "a ticket learned from more samples is more accurate for that reason alone, and the accuracies are " +
      "measured on different sample sets",
  },
  {
    what: "split",
    match: (s) => s === "dataset.split_seed" || s === "dataset.augment",
    why: "the training, validation and test samples (or the augmented training data) are different draws",
  },
  {
    what: "network",
    match: (s) =>
      s === "model.architecture" || s === "model.widths" || s === "model.masked" || s === "model.layers" ||
      s.startsWith("model.blocks.") ||
      VIT_FIELDS.some((f) => s === `model.${f}`),
    why: "sparsity is counted over different weights, and the networks differ in capacity",
  },
  {
    what: "initialiser",
    match: (s) => s === "model.init",
    why: "the frozen weights the tickets select from are drawn from a different distribution",
  },
  {
    what: "weight seed",
    match: (s) => s === "model.weight_seed",
    why: "the tickets select from different frozen weights",
  },
  {
    what: "epochs",
    match: (s) => s === "training.epochs" || s === "swept epochs",
    why: "training longer (or shorter) moves a front by itself",
  },
];

/** The differences that make the compared fronts not comparable; empty when none does. */
export function comparabilityIssues(diff: readonly SettingDiff[]): ComparabilityIssue[] {
  return NOT_COMPARABLE.flatMap(({ what, match, why }) => {
    const settings = diff.filter((d) => match(d.setting));
    return settings.length ? [{ what, settings, why }] : [];
  });
}

/** The warning as one paragraph, or null when the fronts are comparable. */
export function comparabilityWarning(list: readonly SweepSettings[]): string | null {
  const issues = comparabilityIssues(settingsDiff(list));
  if (issues.length === 0) return null;
  const parts = issues.map((i) =>
    `${i.what} ${i.what.endsWith("s") ? "differ" : "differs"} (${
      i.settings.map((s) => `${s.setting}: ${s.values.join(" vs ")}`).join(", ")
    }): ${i.why}`
  );
  return `Warning: the fronts of ${list.map((s) => s.sweep).join(" and ")} are not comparable: ${
    parts.join("; ")
  }. A difference between their fronts mixes the methods' effect with these settings'.`;
}
