import { type Analysis, KNEE_DEFINITION } from "./analysis.ts";
import {
  computeChartSpec,
  configChartSpec,
  frontChartSpec,
  hypervolumeChartSpec,
  knobChartSpec,
  layerChartSpec,
  lossChartSpec,
  renderSvg,
} from "./charts.ts";
import { referenceOf, type ReportData } from "./data.ts";
import { comparisonSentence, referenceLine, seedsNote, TRIAL_COLUMNS, trialRow } from "./markdown.ts";
import { comparabilityWarning, COMPARABLE, NO_DIFFERENCE, settingsDiff, sweepHeading } from "./settings.ts";
import {
  atAccuracyTable,
  atSparsityTable,
  computeTable,
  configFrontTable,
  hypervolumeTable,
  leftOutNote,
  shownRows,
  type TableCells,
} from "./tables.ts";

const esc = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** An HTML table of at most {@link TABLE_ROWS} rows; `total`: how many rows `rows` was chosen from. */
function table(
  head: string[],
  rows: (string | number)[][],
  opts: { id?: string; sortable?: boolean; total?: number } = {},
): string {
  const shown = shownRows(rows), total = opts.total ?? rows.length;
  const th = head.map((h, i) => `<th${opts.sortable ? ` data-col="${i}"` : ""}>${esc(h)}</th>`).join("");
  const tr = shown.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`).join("\n");
  return `<table${opts.id ? ` id="${opts.id}"` : ""}${
    opts.sortable ? ' class="sortable"' : ""
  }><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>` +
    (total > shown.length ? `\n<p class="muted">${esc(leftOutNote(shown.length, total))}</p>` : "");
}

const cells = (t: TableCells) => table(t.head, t.rows, { total: t.total });

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}
table.sortable th{cursor:pointer}table.sortable th:after{content:" ⇅";color:#aaa}
.warn{background:#fff4e5;border-left:4px solid #e8890c;padding:.5em 1em}.plot{margin:1em 0}.plot svg{max-width:100%;height:auto}.muted{color:#666}.win{font-weight:600}
pre{background:#f7f7f7;padding:1em;overflow:auto}`;

/** Click a header to sort; numbers numerically, empty cells last. */
const SORT_SCRIPT = `document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th) {
    th.addEventListener("click", function () {
      var col = +th.dataset.col, asc = th.dataset.dir !== "asc", body = t.tBodies[0];
      th.dataset.dir = asc ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        if (x === "") return 1; if (y === "") return -1;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});`;

/** The settings that differ between compared sweeps and the comparability warning; nothing for one sweep. */
function settingsHtml(d: ReportData): string[] {
  if (d.settings.length < 2) return [];
  const diff = settingsDiff(d.settings), warning = comparabilityWarning(d.settings);
  return [
    `<h2>Settings that differ</h2>`,
    diff.length
      ? `<div id="settings-diff">${
        table(
          ["setting", ...d.settings.map(sweepHeading)],
          diff.map((r) => [r.setting, ...r.values]),
        )
      }</div>`
      : `<p id="settings-diff">${esc(NO_DIFFERENCE)}</p>`,
    warning
      ? `<p class="warn" id="comparability-warning"><strong>${esc(warning)}</strong></p>`
      : `<p id="comparability">${esc(COMPARABLE)}</p>`,
  ];
}

/**
 * The self-contained HTML report: plots rendered to inline SVG by Vega-Lite (hover a point for its trial),
 * the analysis tables, a sortable table of all trials, failures, worker environments and the spec. Opens
 * offline: no script or style is fetched.
 */
export async function renderHtml(d: ReportData, a: Analysis): Promise<string> {
  return (await renderHtmlPieces(d, a)).join("");
}

/**
 * {@link renderHtml} as the pieces that joined make it: a writer takes them one at a time, and the page of a large
 * sweep (megabytes of charts and tables) is never one more string, nor its copy encoded at once.
 */
export async function renderHtmlPieces(d: ReportData, a: Analysis): Promise<string[]> {
  const compute = computeChartSpec(d), knob = knobChartSpec(d, a);
  const plots = [
    ["fronts", await renderSvg(configChartSpec(d, a))],
    ["fronts-remaining", await renderSvg(configChartSpec(d, a, "remaining"))],
    ["seeds", await renderSvg(frontChartSpec(d, a))],
    ...(knob ? [["knob", await renderSvg(knob)]] : []),
    ["hypervolume", await renderSvg(hypervolumeChartSpec(a))],
    ...(compute ? [["compute", await renderSvg(compute)]] : []),
    ["layers", await renderSvg(layerChartSpec(a))],
    ["loss", await renderSvg(lossChartSpec(a))],
  ];
  const plot = (id: string) => `<div class="plot" id="plot-${id}">${plots.find((p) => p[0] === id)![1]}</div>`;
  const failures = d.trials.filter((t) => t.status === "failed");
  const sections = [
    `<h1>Sweep ${esc(d.name)} <span class="muted">(${esc(d.sweep_id)})</span></h1>`,
    `<p>Trials: ${d.counts.total} planned, ${d.counts.done} done, ${
      d.counts.stopped ? `${d.counts.stopped} stopped early, ` : ""
    }${d.counts.failed} failed, ${d.counts.pending} pending. ` +
    `Objectives: sparsity (fraction of masked weights removed by the binary ticket) and binary-ticket ` +
    `${d.selection} accuracy, both maximised. Masked layers: ${esc(d.masked_layers.join(", ") || "n/a")}.` +
    d.references.map((r) => ` ${esc(referenceLine(r, d))}`).join("") +
    `</p>`,
    ...settingsHtml(d),
    `<p id="selection"><strong>${esc(d.selection_note)}</strong></p>`,
    `<h2>Pareto fronts</h2>`,
    plot("fronts"),
    `<p class="muted" id="knee-definition">${esc(KNEE_DEFINITION)}</p>`,
    `<p class="muted" id="seeds-note">${esc(seedsNote(a))}</p>`,
    `<h3>On a log axis of the weights remaining</h3>`,
    plot("fronts-remaining"),
    `<h3>Configuration fronts</h3>`,
    ...a.fronts.map((f) =>
      `<h4>${esc(f.group)}</h4>` +
      cells(configFrontTable(f, d.selection, referenceOf(d, f.group), d.settings.length > 1))
    ),
    `<h3>Per-seed fronts</h3><p class="muted">Every ticket of every seed (own tickets and cuts), one thin line per ` +
    `seed's own front: what the configuration points above average over.</p>`,
    plot("seeds"),
    ...(knob
      ? [
        `<h2>Knob curves</h2><p class="muted">Each method's sparsity parameter against the sparsity and the ` +
        `${esc(a.selection)} accuracy of its trials' own tickets (before any cut), mean over seeds.</p>`,
        plot("knob"),
      ]
      : []),
    `<h2>Hypervolume</h2>`,
    `<p class="muted">Reference point (sparsity ${a.reference.x}, accuracy ${a.reference.y}). Pooled: the front of all ` +
    `seeds. Per seed: the mean over single seeds' fronts, with a ${100 * a.bootstrap.level}% bootstrap interval ` +
    `(${a.bootstrap.resamples} resamples of the seeds, generator seed ${a.bootstrap.seed}; none below 3 seeds: the ` +
    `spread cannot be judged). Configuration front: the front of the configuration points' means. The knee is that ` +
    `of the configuration front; its ticket is the one of its seeds closest to the point's means.</p>`,
    plot("hypervolume"),
    cells(hypervolumeTable(a)),
    ...computeHtml(d, compute ? plot("compute") : ""),
    `<h2>${
      a.selection === "validation" ? "Validation" : "Test"
    } accuracy at sparsity</h2><p class="muted">Interpolated linearly along each configuration front (means over ` +
    `seeds); empty: the front does not reach that sparsity. Levels chosen from what the fronts reach: the sparsest ` +
    `of 50, 80, 90, 95, 98, 99, 99.5 and 99.9% that some front reaches, and the sparsity every front reaches.</p>`,
    cells(atSparsityTable(a)),
    `<h2>Sparsity at ${a.selection} accuracy</h2><p class="muted">Highest mean sparsity along each configuration ` +
    `front with ${a.selection} accuracy at least X; empty: never reached. ` +
    (a.atAccuracyLevels.some((l) => l.basis !== "given")
      ? `Levels chosen from what the fronts reach: 1, 2 and 5 points below the most accurate configuration point, ` +
        `and below the dense reference where a front reaches that.`
      : `Levels given with --at-accuracy.`) +
    `</p>`,
    cells(atAccuracyTable(a)),
    `<h2>Front comparison</h2>`,
    a.comparisons.length
      ? `<ul>${a.comparisons.map((c) => `<li>${esc(comparisonSentence(c))}</li>`).join("")}</ul>`
      : "<p>Only one front.</p>",
    `<h2>Per-layer sparsity of the knee tickets</h2>`,
    plot("layers"),
    `<h2>Loss curves of the knee tickets</h2>`,
    plot("loss"),
    `<h2>All trials</h2><p class="muted">Click a column header to sort.</p>`,
    table(
      TRIAL_COLUMNS,
      shownRows(d.trials).map(trialRow),
      { id: "trials", sortable: true, total: d.trials.length },
    ),
    `<h2>Failures</h2>`,
    failures.length
      ? table(
        ["trial", "parameters", "attempt", "reason"],
        failures.map((f) => [f.trial_id, f.label, f.attempt ?? "", f.error ?? ""]),
      )
      : "<p>None.</p>",
    `<h2>Workers</h2>`,
    table(
      ["host", "worker", "engine", "device", "Deno", "results"],
      d.workers.map((w) => [w.host, w.worker, w.backend, w.device, w.deno, w.trials]),
    ),
    `<h2>Spec</h2><pre>${esc(d.spec_text)}</pre>`,
  ];
  return [
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ticketsweep: ${esc(d.name)}</title><style>${STYLE}</style></head>
<body>
`,
    ...sections.flatMap((s, i) => (i ? ["\n", s] : [s])),
    `
<script>${SORT_SCRIPT}</script>
</body></html>
`,
  ];
}

/** Hypervolume against compute (trial-epochs), side by side in a comparison; nothing before any outcome. */
function computeHtml(d: ReportData, chart: string): string[] {
  const t = computeTable(d.compute ?? []);
  if (!t) return [];
  return [
    `<h2>Hypervolume against compute</h2><p class="muted">The hypervolume of every ticket of the done trials after ` +
    `the outcomes recorded within each budget of trial-epochs, in recording order: a done trial counts its epochs, ` +
    `a trial stopped early the epochs it trained, a failed one nothing.</p>`,
    chart,
    cells(t),
  ];
}
