import { cannotJudge, type FrontComparison, MIN_SEEDS, type Region } from "../pareto/compare.ts";
import { type Analysis, KNEE_DEFINITION, MATCHING_NOTE } from "./analysis.ts";
import {
  atAccuracyTable,
  atSparsityTable,
  computeTable,
  configFrontTable,
  fmtPct,
  hypervolumeTable,
  leftOutNote,
  shownRows,
  type TableCells,
} from "./tables.ts";
import { type DenseReference, fmtCut, referenceOf, type ReportData, type TrialRow } from "./data.ts";
import { comparabilityWarning, COMPARABLE, NO_DIFFERENCE, settingsDiff, sweepHeading } from "./settings.ts";

const pct = fmtPct;
const cells = (t: TableCells) => table(t.head, t.rows, t.total);

/** A sparsity range as text: `40.00%` or `40.00-60.00%`. */
const rangeText = (r: { from: number; to: number }) =>
  Math.abs(r.from - r.to) < 1e-9 ? `${pct(r.from)}%` : `${pct(r.from)}-${pct(r.to)}%`;

/**
 * One sentence on two fronts: hypervolume difference, then, only inside the sparsity range both fronts cover,
 * where each one is more accurate, by how much, and whether that is beyond the seed-to-seed spread (or that the
 * spread cannot be judged with fewer than 3 seeds); then where only one front reaches (no verdict there).
 */
export function comparisonSentence(c: FrontComparison): string {
  const h = c.hvDiff;
  const judged = h.seeds >= MIN_SEEDS;
  const sig = !judged
    ? cannotJudge(h.seeds)
    : h.lo > 0
    ? `${c.a} larger beyond the seed-to-seed spread`
    : h.hi < 0
    ? `${c.b} larger beyond the seed-to-seed spread`
    : "within the seed-to-seed spread";
  const name = (side: "a" | "b") => (side === "a" ? c.a : c.b);
  const by = (r: Region) => `by up to ${(100 * r.maxDiff).toFixed(1)} pp`;
  const regions = c.regions.map((r) => {
    const range = rangeText(r);
    if (r.winner === "unjudged") {
      const what = r.higher === "equal"
        ? `equal at ${range} sparsity`
        : `${name(r.higher)} higher at ${range} sparsity (${by(r)})`;
      return `${what}: ${cannotJudge(r.seeds)}`;
    }
    return r.winner === "tie"
      ? `indistinguishable at ${range} sparsity (within the seed-to-seed spread, ${by(r)})`
      : `${name(r.winner)} more accurate at ${range} sparsity (${by(r)}, beyond the seed-to-seed spread)`;
  });
  const outside = c.outside.map((r) => `at ${rangeText(r)} sparsity only ${name(r.only)} reaches`);
  const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(4)}`;
  const within = c.overlap
    ? `; where both fronts reach (${rangeText(c.overlap)} sparsity): ${regions.join("; ")}`
    : `; the fronts do not overlap (${c.a}: ${rangeText(c.ranges.a)}, ${c.b}: ${rangeText(c.ranges.b)} sparsity): ` +
      "no verdict";
  const beyond = c.overlap && outside.length
    ? `; the fronts do not overlap elsewhere (${outside.join(", ")}): no verdict there`
    : "";
  return `${c.a} vs ${c.b}: hypervolume difference ${signed(h.value)} on the pooled fronts, ${signed(h.mean)} ` +
    (judged ? `[${h.lo.toFixed(4)}, ${h.hi.toFixed(4)}] ` : "") + `per seed (${sig})` + within + beyond + ".";
}

/** What the report says about configuration points, seeds and spreads (Markdown and HTML). */
export function seedsNote(a: Pick<Analysis, "partial" | "fronts">): string {
  const seeds = [...new Set(a.fronts.flatMap((f) => f.configs.map((c) => c.seeds.length)))].sort((x, y) => x - y);
  const few = seeds.filter((n) => n < MIN_SEEDS);
  return MATCHING_NOTE +
    (few.length
      ? ` Here some points have ${few.join(" or ")} seed${few.at(-1) === 1 ? "" : "s"}: ${cannotJudge(few[0]!)}.`
      : "") +
    (a.partial
      ? ` ${a.partial} ladder position${a.partial === 1 ? " was" : "s were"} left out: not every seed had ${
        a.partial === 1 ? "it" : "them"
      }.`
      : "");
}

/**
 * The configuration fronts in Markdown (also printed by the CLI): each point the mean over a configuration's seeds at
 * one ladder position, with standard deviation and bootstrap interval; how points are matched, and the knee.
 */
export function configFrontTables(d: ReportData, a: Analysis): string {
  const several = d.settings.length > 1;
  return [
    ...d.references.map((r) => referenceLine(r, d) + "\n"),
    seedsNote(a),
    "",
    KNEE_DEFINITION,
    "",
    ...a.fronts.flatMap((f) => {
      // counted without a key string per configuration, nor a list of 100,000 numbers for a set of a few
      const numbers = new Set<number>(), counts = new Set<number>();
      for (const c of f.configs) {
        numbers.add(c.configIndex);
        counts.add(c.seeds.length);
      }
      const configs = numbers.size, seeds = [...counts].join("/");
      return [
        `### Configuration front: ${f.group} (${f.front.length} of ${f.configs.length} points from ${configs} ` +
        `configuration${configs === 1 ? "" : "s"}, ${seeds || 0} seed${seeds === "1" ? "" : "s"} each)`,
        "",
        cells(configFrontTable(f, d.selection, referenceOf(d, f.group), several)),
        "",
      ];
    }),
  ].join("\n").trimEnd();
}

/** The analysis tables in Markdown: hypervolume and knee, accuracy at sparsity, sparsity at accuracy, comparisons. */
export function analysisTables(a: Analysis): string {
  return [
    `### Hypervolume and knee`,
    "",
    `Reference point (sparsity ${a.reference.x}, accuracy ${a.reference.y}). "pooled": the front of all seeds' ` +
    `tickets; "per seed": the mean over single seeds' fronts, with a ${100 * a.bootstrap.level}% bootstrap interval ` +
    `(${a.bootstrap.resamples} resamples of the seeds, generator seed ${a.bootstrap.seed}; none below ${MIN_SEEDS} ` +
    `seeds); "configuration front": the front of the configuration points' means. The knee is that of the ` +
    `configuration front (defined above); its ticket is the one of its seeds closest to the point's means.`,
    "",
    cells(hypervolumeTable(a)),
    "",
    `### ${cap(a.selection)} accuracy at sparsity (interpolated along each configuration front; empty: not reached)`,
    "",
    `Levels chosen from what the fronts reach: the sparsest of 50, 80, 90, 95, 98, 99, 99.5 and 99.9% that some ` +
    `front reaches, and the sparsity every front reaches.`,
    "",
    cells(atSparsityTable(a)),
    "",
    `### Sparsity at ${a.selection} accuracy (highest along each configuration front; empty: never reached)`,
    "",
    a.atAccuracyLevels.some((l) => l.basis !== "given")
      ? `Levels chosen from what the fronts reach: 1, 2 and 5 points below the most accurate configuration point, ` +
        `and below the dense reference where a front reaches that.`
      : `Levels given with --at-accuracy.`,
    "",
    cells(atAccuracyTable(a)),
    "",
    `### Front comparison`,
    "",
    a.comparisons.length ? a.comparisons.map((c) => `- ${comparisonSentence(c)}`).join("\n") : "Only one front.",
  ].join("\n");
}

const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** A Markdown table of at most {@link TABLE_ROWS} rows; `total`: how many rows `rows` was chosen from. */
function table(head: string[], rows: string[][], total = rows.length): string {
  const esc = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");
  const shown = shownRows(rows);
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...shown.map((r) => `| ${r.map(esc).join(" | ")} |`),
    ...(total > shown.length ? ["", leftOutNote(shown.length, total)] : []),
  ].join("\n");
}

/**
 * The settings that differ between the compared sweeps (setting | A | B ...) and the warning when they make the
 * fronts not comparable, in Markdown; empty for a single sweep.
 */
export function settingsSection(d: Pick<ReportData, "settings">): string {
  if (d.settings.length < 2) return "";
  const diff = settingsDiff(d.settings);
  const warning = comparabilityWarning(d.settings);
  return [
    "## Settings that differ",
    "",
    diff.length
      ? table(
        ["setting", ...d.settings.map(sweepHeading)],
        diff.map((r) => [r.setting, ...r.values]),
      )
      : NO_DIFFERENCE,
    "",
    warning ? `**${warning}**` : COMPARABLE,
    "",
  ].join("\n");
}

/** The line on a dense reference: whose it is, its accuracies and how many trials. */
export function referenceLine(r: DenseReference, d: Pick<ReportData, "selection" | "references" | "settings">): string {
  const val = d.selection === "validation";
  const whose = d.settings.length > 1 ? `Dense reference of ${r.sweep}, for its fronts only` : "Dense reference";
  return `${whose} (same network, weights trained, nothing removed): ${pct(r.accuracy)}% ${d.selection} ` +
    `accuracy${val ? `, ${pct(r.test_accuracy)}% test` : ""} (mean of ${r.trials} trial${r.trials === 1 ? "" : "s"}).`;
}

/** The front of each group as a Markdown table (also printed by the CLI). */
export function frontTables(d: ReportData): string {
  const val = d.selection === "validation";
  const several = d.settings.length > 1;
  const head = d.selection_note + "\n\n" + d.references.map((r) => referenceLine(r, d) + "\n\n").join("") +
    (several
      ? d.settings.filter((s) => !d.references.some((r) => r.sweep === s.sweep))
        .map((s) => `${s.sweep} has no dense reference: its fronts have no Δ column.\n\n`).join("")
      : "");
  return head +
    d.fronts.map((f) => {
      const dense = referenceOf(d, f.group);
      const delta = (r: TrialRow) => (dense ? [(100 * (r.score! - dense.accuracy)).toFixed(2)] : []);
      let trials = 0, tickets = 0; // counted, not listed (100,000 each)
      for (const t of d.trials) if (t.group === f.group && t.status === "done") trials++;
      for (const t of d.tickets) if (t.group === f.group) tickets++;
      return `### Front: ${f.group} (${f.points.length} non-dominated of ${tickets} tickets from ${trials} done ` +
        `trials)\n\n` +
        table(
          [
            "sparsity %",
            `${d.selection} accuracy % (chooses)`,
            ...(val ? ["test accuracy %"] : []),
            ...(dense ? [several ? `Δ vs ${dense.sweep} dense (pp)` : "Δ vs dense (pp)"] : []),
            "cut",
            "parameters",
            "trial",
          ],
          // only the rows shown are made (a front can hold every one of 100,000 tickets)
          shownRows(f.points).map((r) => [
            pct(r.sparsity),
            pct(r.score),
            ...(val ? [pct(r.accuracy)] : []),
            ...delta(r),
            r.cut === undefined ? "own" : fmtCut(r.cut),
            r.label,
            r.trial_id,
          ]),
          f.points.length,
        );
    }).join("\n\n");
}

/** The columns of the all-trials table (Markdown and HTML). */
export const TRIAL_COLUMNS = [
  "trial",
  "method",
  "parameters",
  "status",
  "sparsity %",
  "validation accuracy %",
  "test accuracy %",
  "soft-gate test accuracy %",
  "cuts",
  "front",
  "steps/s",
  "engine",
  "worker",
];

/** One row of the all-trials table. */
export function trialRow(r: TrialRow): string[] {
  return [
    r.trial_id,
    r.group,
    r.label,
    r.status,
    pct(r.sparsity),
    pct(r.val_accuracy),
    pct(r.accuracy),
    pct(r.soft_accuracy),
    r.cuts ? String(r.cuts.points.length) : "",
    r.dominated === undefined ? "" : r.dominated ? "dominated" : "front",
    r.steps_per_s === undefined ? "" : r.steps_per_s.toFixed(1),
    r.backend ?? "",
    r.worker ?? "",
  ];
}

/** The Markdown report: summary, fronts, analysis, all trials, failures with reasons, workers, and the spec. */
/**
 * The trials by group (`localeCompare`), then sparsity and accuracy descending (none: -1), ties in their order: the
 * keys read once per trial into columns (a sort that asked each row in every comparison made millions of numbers and
 * string comparisons for 100,000 trials), each group's place found once.
 */
export function sortedTrials(trials: readonly TrialRow[]): TrialRow[] {
  const n = trials.length, names: string[] = [], groupOf = new Map<string, number>();
  const group = new Uint32Array(n), sparsity = new Float64Array(n), accuracy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = trials[i]!;
    let g = groupOf.get(t.group);
    if (g === undefined) groupOf.set(t.group, g = names.push(t.group) - 1);
    group[i] = g;
    sparsity[i] = t.sparsity ?? -1;
    accuracy[i] = t.accuracy ?? -1;
  }
  // each group's rank among the groups, equal for groups localeCompare takes as equal
  const byName = names.map((_, g) => g).sort((a, b) => names[a]!.localeCompare(names[b]!) || a - b);
  const rank = new Uint32Array(names.length);
  byName.forEach((g, j) => {
    rank[g] = j > 0 && names[byName[j - 1]!]!.localeCompare(names[g]!) === 0 ? rank[byName[j - 1]!]! : j;
  });
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    rank[group[a]!]! - rank[group[b]!]! || sparsity[b]! - sparsity[a]! || accuracy[b]! - accuracy[a]! || a - b
  );
  return order.map((i) => trials[i]!);
}

export function renderMarkdown(d: ReportData, a: Analysis): string {
  const rows = sortedTrials(d.trials);
  const failures = d.trials.filter((t) => t.status === "failed");
  const stopped = d.trials.filter((t) => t.status === "stopped");
  return [
    `# Sweep ${d.name} (${d.sweep_id})`,
    "",
    `Trials: ${d.counts.total} planned, ${d.counts.done} done, ${
      d.counts.stopped ? `${d.counts.stopped} stopped early, ` : ""
    }${d.counts.failed} failed, ${d.counts.pending} pending.`,
    `Objectives: sparsity (fraction of masked weights removed by the binary ticket) and binary-ticket ` +
    `${d.selection} accuracy, both maximised. ${d.selection_note}`,
    `Masked layers: ${d.masked_layers.join(", ") || "n/a"}. Engines: ${d.backends.join(", ") || "n/a"}.`,
    "",
    ...(d.settings.length > 1 ? [settingsSection(d)] : []),
    "## Pareto fronts of configurations (mean over seeds)",
    "",
    configFrontTables(d, a),
    "",
    "## Ticket fronts (every seed's tickets pooled, each point one seed's ticket)",
    "",
    frontTables(d),
    "",
    "## Analysis",
    "",
    analysisTables(a),
    "",
    ...computeSection(d),
    "## All trials",
    "",
    table(TRIAL_COLUMNS, shownRows(rows).map(trialRow), rows.length),
    "",
    ...(stopped.length ? [stoppedSection(d, stopped), ""] : []),
    "## Failures",
    "",
    failures.length
      ? table(
        ["trial", "parameters", "attempt", "reason"],
        failures.map((f) => [f.trial_id, f.label, String(f.attempt ?? ""), f.error ?? ""]),
      )
      : "None.",
    "",
    "## Workers",
    "",
    d.workers.length
      ? table(
        ["host", "worker", "engine", "device", "Deno", "results"],
        d.workers.map((w) => [w.host, w.worker, w.backend, w.device, w.deno, String(w.trials)]),
      )
      : "None yet.",
    "",
    "## Spec",
    "",
    "```yaml",
    d.spec_text.trimEnd(),
    "```",
    "",
  ].join("\n");
}

/**
 * The trials stopped early (dominated at a rung): where they stopped and their partial point, which enters no
 * front; "under the front" says whether a ticket of the final front of its group beats that point on both axes.
 */
function stoppedSection(d: ReportData, stopped: TrialRow[]): string {
  const under = (r: TrialRow) => {
    const front = d.fronts.find((f) => f.group === r.group)?.points ?? [];
    const score = d.selection === "validation" ? r.val_accuracy : r.accuracy;
    if (typeof score !== "number" || r.sparsity === undefined) return "";
    return front.some((p) => p.sparsity! >= r.sparsity! && p.score! >= score) ? "yes" : "no";
  };
  return [
    "## Stopped early",
    "",
    "Trials stopped at a rung because another trial had reached a point there that beat theirs by the margin " +
    "(spec `early_stop`). Their partial point (the ticket they had when stopped) is shown here and enters no front.",
    "",
    table(
      [
        "trial",
        "parameters",
        "epochs trained",
        "sparsity %",
        "validation accuracy %",
        "test accuracy %",
        "under the front",
      ],
      stopped.map((r) => [
        r.trial_id,
        r.label,
        r.stopped ? `${r.stopped.epochs.toFixed(2)} of ${r.stopped.planned_epochs}` : "",
        pct(r.sparsity),
        pct(r.val_accuracy),
        pct(r.accuracy),
        under(r),
      ]),
    ),
  ].join("\n");
}

/** Hypervolume against compute (trial-epochs), side by side in a comparison; nothing before any outcome. */
function computeSection(d: ReportData): string[] {
  const t = computeTable(d.compute ?? []);
  if (!t) return [];
  return [
    "### Hypervolume against compute",
    "",
    "The hypervolume of every ticket of the done trials (own tickets and cuts, the dense reference left out) after " +
    "the outcomes recorded within each budget of trial-epochs, in recording order: a done trial counts its " +
    "epochs, a trial stopped early the epochs it trained, a failed one nothing; stopped trials add no point. " +
    "pareto.json has every step (`compute`).",
    "",
    cells(t),
    "",
  ];
}
