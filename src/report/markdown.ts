import type { FrontComparison } from "../pareto/compare.ts";
import type { Analysis } from "./analysis.ts";
import { atAccuracyTable, atSparsityTable, fmtPct, hypervolumeTable, type TableCells } from "./tables.ts";
import { fmtCut, type ReportData, type TrialRow } from "./data.ts";

const pct = fmtPct;
const cells = (t: TableCells) => table(t.head, t.rows);

/** One sentence on two fronts: hypervolume difference and where each one is more accurate, with the seed spread. */
export function comparisonSentence(c: FrontComparison): string {
  const h = c.hvDiff;
  const sig = h.seeds < 2
    ? "one seed: no spread to judge against"
    : h.lo > 0
    ? `${c.a} larger beyond the seed-to-seed spread`
    : h.hi < 0
    ? `${c.b} larger beyond the seed-to-seed spread`
    : "within the seed-to-seed spread";
  const regions = c.regions.map((r) => {
    const range = r.from === r.to ? `${pct(r.from)}%` : `${pct(r.from)}-${pct(r.to)}%`;
    return r.winner === "tie"
      ? `indistinguishable at ${range} sparsity`
      : `${r.winner === "a" ? c.a : c.b} more accurate at ${range} sparsity (by up to ${
        (100 * r.maxDiff).toFixed(1)
      } pp)`;
  });
  const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(4)}`;
  return `${c.a} vs ${c.b}: hypervolume difference ${signed(h.value)} on the pooled fronts, ${signed(h.mean)} ` +
    `[${h.lo.toFixed(4)}, ${h.hi.toFixed(4)}] per seed (${sig})` +
    (regions.length ? `; ${regions.join("; ")}.` : "; their fronts share no sparsity range.");
}

/** The analysis tables in Markdown: hypervolume and knee, accuracy at sparsity, sparsity at accuracy, comparisons. */
export function analysisTables(a: Analysis): string {
  return [
    `### Hypervolume and knee`,
    "",
    `Reference point (sparsity ${a.reference.x}, accuracy ${a.reference.y}). "pooled": the front of all seeds; ` +
    `"per seed": the mean over single seeds' fronts, with a ${100 * a.bootstrap.level}% bootstrap interval ` +
    `(${a.bootstrap.resamples} resamples of the seeds, generator seed ${a.bootstrap.seed}).`,
    "",
    cells(hypervolumeTable(a)),
    "",
    `### ${cap(a.selection)} accuracy at sparsity (interpolated along each front; empty: not reached)`,
    "",
    cells(atSparsityTable(a)),
    "",
    `### Sparsity at ${a.selection} accuracy (highest along each front; empty: never reached)`,
    "",
    cells(atAccuracyTable(a)),
    "",
    `### Front comparison`,
    "",
    a.comparisons.length ? a.comparisons.map((c) => `- ${comparisonSentence(c)}`).join("\n") : "Only one front.",
  ].join("\n");
}

const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

function table(head: string[], rows: string[][]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

/** The front of each group as a Markdown table (also printed by the CLI). */
export function frontTables(d: ReportData): string {
  const dense = d.dense;
  const val = d.selection === "validation";
  const head = d.selection_note + "\n\n" +
    (dense
      ? `Dense reference (same network, weights trained, nothing removed): ${pct(dense.accuracy)}% ${d.selection} ` +
        `accuracy${val ? `, ${pct(dense.test_accuracy)}% test` : ""} ` +
        `(mean of ${dense.trials} trial${dense.trials === 1 ? "" : "s"}).\n\n`
      : "");
  const delta = (r: TrialRow) => (dense ? [(100 * (r.score! - dense.accuracy)).toFixed(2)] : []);
  return head +
    d.fronts.map((f) => {
      const trials = d.trials.filter((t) => t.group === f.group && t.status === "done").length;
      const tickets = d.tickets.filter((t) => t.group === f.group).length;
      return `### Front: ${f.group} (${f.points.length} non-dominated of ${tickets} tickets from ${trials} done ` +
        `trials)\n\n` +
        table(
          [
            "sparsity %",
            `${d.selection} accuracy % (chooses)`,
            ...(val ? ["test accuracy %"] : []),
            ...(dense ? ["Δ vs dense (pp)"] : []),
            "cut",
            "parameters",
            "trial",
          ],
          f.points.map((r) => [
            pct(r.sparsity),
            pct(r.score),
            ...(val ? [pct(r.accuracy)] : []),
            ...delta(r),
            r.cut === undefined ? "own" : fmtCut(r.cut),
            r.label,
            r.trial_id,
          ]),
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
export function renderMarkdown(d: ReportData, a: Analysis): string {
  const rows = [...d.trials].sort((a, b) =>
    a.group.localeCompare(b.group) || (b.sparsity ?? -1) - (a.sparsity ?? -1) || (b.accuracy ?? -1) - (a.accuracy ?? -1)
  );
  const failures = d.trials.filter((t) => t.status === "failed");
  return [
    `# Sweep ${d.name} (${d.sweep_id})`,
    "",
    `Trials: ${d.counts.total} planned, ${d.counts.done} done, ${d.counts.failed} failed, ${d.counts.pending} pending.`,
    `Objectives: sparsity (fraction of masked weights removed by the binary ticket) and binary-ticket ` +
    `${d.selection} accuracy, both maximised. ${d.selection_note}`,
    `Masked layers: ${d.masked_layers.join(", ") || "n/a"}. Engines: ${d.backends.join(", ") || "n/a"}.`,
    "",
    "## Pareto fronts",
    "",
    frontTables(d),
    "",
    "## Analysis",
    "",
    analysisTables(a),
    "",
    "## All trials",
    "",
    table(TRIAL_COLUMNS, rows.map(trialRow)),
    "",
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
