import type { ReportData, TrialRow } from "./data.ts";

const pct = (v: number | undefined | null) => (v === undefined || v === null ? "" : (100 * v).toFixed(2));

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
  const head = dense
    ? `Dense reference (same network, weights trained, nothing removed): ${pct(dense.accuracy)}% test accuracy ` +
      `(mean of ${dense.trials} trial${dense.trials === 1 ? "" : "s"}).\n\n`
    : "";
  const delta = (r: TrialRow) => (dense ? [(100 * (r.accuracy! - dense.accuracy)).toFixed(2)] : []);
  return head +
    d.fronts.map((f) =>
      `### Front: ${f.group} (${f.points.length} non-dominated of ${
        d.trials.filter((t) => t.group === f.group && t.status === "done").length
      } done)\n\n` +
      table(
        ["sparsity %", "accuracy %", ...(dense ? ["Δ vs dense (pp)"] : []), "parameters", "trial"],
        f.points.map((r) => [pct(r.sparsity), pct(r.accuracy), ...delta(r), r.label, r.trial_id]),
      )
    ).join("\n\n");
}

function trialRow(r: TrialRow): string[] {
  return [
    r.trial_id,
    r.group,
    r.label,
    r.status,
    pct(r.sparsity),
    pct(r.accuracy),
    pct(r.soft_accuracy),
    r.dominated === undefined ? "" : r.dominated ? "dominated" : "front",
    r.steps_per_s === undefined ? "" : r.steps_per_s.toFixed(1),
    r.backend ?? "",
  ];
}

/** The Markdown report: summary, fronts, all trials, failures with reasons, and the spec. */
export function renderMarkdown(d: ReportData): string {
  const rows = [...d.trials].sort((a, b) =>
    a.group.localeCompare(b.group) || (b.sparsity ?? -1) - (a.sparsity ?? -1) || (b.accuracy ?? -1) - (a.accuracy ?? -1)
  );
  const failures = d.trials.filter((t) => t.status === "failed");
  return [
    `# Sweep ${d.name} (${d.sweep_id})`,
    "",
    `Trials: ${d.counts.total} planned, ${d.counts.done} done, ${d.counts.failed} failed, ${d.counts.pending} pending.`,
    `Objectives: sparsity (fraction of masked weights removed by the binary ticket) and binary-ticket test accuracy, both maximised.`,
    `Masked layers: ${d.masked_layers.join(", ") || "n/a"}. Engines: ${d.backends.join(", ") || "n/a"}.`,
    "",
    "## Pareto fronts",
    "",
    frontTables(d),
    "",
    "## All trials",
    "",
    table(
      [
        "trial",
        "method",
        "parameters",
        "status",
        "sparsity %",
        "accuracy %",
        "soft-gate accuracy %",
        "front",
        "steps/s",
        "engine",
      ],
      rows.map(trialRow),
    ),
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
    "## Spec",
    "",
    "```yaml",
    d.spec_text.trimEnd(),
    "```",
    "",
  ].join("\n");
}
