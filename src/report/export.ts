import { type Analysis, type ConfigRow, KNEE_DEFINITION, MATCHING_NOTE } from "./analysis.ts";
import { type ReportData, ticketId, type TrialRow } from "./data.ts";
import { comparabilityWarning, settingsDiff } from "./settings.ts";
import { JsonRows } from "./json_rows.ts";

/** A CSV field, quoted when it holds a comma, quote or newline (RFC 4180). */
function csvField(v: unknown): string {
  const s = v === undefined || v === null ? "" : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * `trials.csv`: one row per planned trial with its status, objectives, speed, engine and error; one column per
 * parameter name (empty where a trial's method does not take it).
 */
export function trialsCsv(d: ReportData): string {
  return [...trialsCsvLines(d)].join("");
}

/** {@link trialsCsv} a line at a time (each with its newline), for writing a large sweep's without one string. */
export function* trialsCsvLines(d: ReportData): Generator<string> {
  const names = new Set<string>();
  for (const t of d.trials) for (const k of Object.keys(t.params)) names.add(k);
  const params = [...names].sort();
  const head = [
    "trial_id",
    "group",
    "status",
    "seed",
    ...params.map((p) => `param_${p}`),
    "sparsity",
    "val_accuracy",
    "accuracy",
    "soft_accuracy",
    "cuts",
    "dominated",
    "steps_per_s",
    "train_s",
    "backend",
    "worker",
    "attempt",
    "error",
  ];
  const row = (t: TrialRow) => [
    t.trial_id,
    t.group,
    t.status,
    t.seed,
    ...params.map((p) => t.params[p]),
    t.sparsity,
    t.val_accuracy,
    t.accuracy,
    t.soft_accuracy,
    t.cuts?.points.length,
    t.dominated,
    t.steps_per_s,
    t.train_s,
    t.backend,
    t.worker,
    t.attempt,
    t.error,
  ];
  yield head.map(csvField).join(",") + "\n";
  for (const t of d.trials) yield row(t).map(csvField).join(",") + "\n";
}

/** A configuration point in `fronts.json`. */
function configJson(p: ConfigRow) {
  return {
    configuration: p.label,
    params: p.params,
    position: p.position,
    seeds: p.seeds,
    sparsity: p.sparsity,
    accuracy: p.accuracy,
    test_accuracy: p.test,
    tickets: p.members.map(ticketId),
  };
}

/** `fronts.json`: each front's points and the analysis (hypervolume with interval, knee, interpolation tables, comparisons). */
export function frontsJson(d: ReportData, a: Analysis): unknown {
  return {
    format: "ticketsweep-fronts",
    version: 1,
    sweep_id: d.sweep_id,
    name: d.name,
    objectives: [{ name: "sparsity", goal: "maximize" }, { name: "accuracy", goal: "maximize" }],
    /** The accuracy the fronts and every number of the analysis are on; `accuracy` of a point is always test. */
    selection: d.selection,
    selection_note: d.selection_note,
    hypervolume_reference: a.reference,
    bootstrap: a.bootstrap,
    /** How cuts of different seeds make one configuration point, and the knee's definition. */
    configuration_matching: MATCHING_NOTE,
    knee_definition: KNEE_DEFINITION,
    /** The levels of the two interpolation tables, chosen from what the configuration fronts reach. */
    at_sparsity_levels: a.atSparsity,
    at_accuracy_levels: a.atAccuracyLevels,
    dense_reference: d.dense,
    /** Each sweep's own dense reference, for its own fronts only. */
    dense_references: d.references,
    settings: d.settings,
    ...(d.settings.length > 1
      ? { settings_diff: settingsDiff(d.settings), comparability_warning: comparabilityWarning(d.settings) }
      : {}),
    fronts: d.fronts.map((f) => {
      const fa = a.fronts.find((x) => x.group === f.group)!;
      return {
        group: f.group,
        // made one at a time as they are written (writeJson): a front can hold every one of 100,000 tickets
        points: new JsonRows(function* () {
          for (const p of f.points) {
            yield {
              trial_id: p.trial_id,
              ...(p.cut !== undefined ? { cut: p.cut } : {}),
              sparsity: p.sparsity,
              val_accuracy: p.val_accuracy ?? null,
              accuracy: p.accuracy,
              seed: p.seed,
              params: p.params,
            };
          }
        }),
        /** The front over configurations: each point the mean and spread over its seeds at one ladder position. */
        configuration_front: new JsonRows(function* () {
          for (const p of fa.front) yield configJson(p);
        }),
        configuration_hypervolume: fa.config_hypervolume,
        knee_configuration: fa.knee_point ? configJson(fa.knee_point) : null,
        hypervolume: fa.hypervolume,
        knee: fa.knee ? ticketId(fa.knee) : null,
        accuracy_at_sparsity: fa.atSparsity,
        sparsity_at_accuracy: fa.atAccuracy,
      };
    }),
    comparisons: a.comparisons,
  };
}
