import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Analysis } from "./analysis.ts";
import { fmtCut, type ReportData, ticketId, type TrialRow } from "./data.ts";

const pct = (v: number) => Number((100 * v).toFixed(2));
const WIDTH = 560, HEIGHT = 340;

/**
 * Renders a Vega-Lite spec to a standalone SVG string (no browser, no CDN). Marks with a `description`
 * get an SVG `<title>`, so browsers show it on hover.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg.replace(
    /<path aria-label="([^"]*)"([^>]*)\/>/g,
    (_m, label: string, rest: string) => `<path aria-label="${label}"${rest}><title>${label}</title></path>`,
  );
}

/** A ticket's accuracies as a hover label says them: the selection accuracy first, test beside it. */
export function accuracyText(d: { selection: ReportData["selection"] }, t: TrialRow): string {
  return d.selection === "validation"
    ? `validation accuracy ${pct(t.val_accuracy!)}%, test ${pct(t.accuracy!)}%`
    : `test accuracy ${pct(t.accuracy!)}% (no validation split)`;
}

/**
 * Sparsity (x) vs binary-ticket selection accuracy (y: validation, or test for runs without a validation split):
 * every ticket of the done trials (their own and each cut of their ladders; dominated ones faded), each group's
 * front as a line, its knee as a large diamond, and the dense reference as a dashed rule.
 */
export function frontChartSpec(d: ReportData, a: Analysis): TopLevelSpec {
  const done = d.tickets.filter((t) => t.sparsity !== undefined && a.fronts.some((f) => f.group === t.group));
  const knees = new Set(a.fronts.map((f) => f.knee && ticketId(f.knee)));
  const trials = done.map((t) => ({
    group: t.group,
    sparsity: pct(t.sparsity!),
    accuracy: pct(t.score!),
    front: t.dominated ? "dominated" : "front",
    knee: knees.has(ticketId(t)),
    label: `${t.group} ${t.label}: sparsity ${pct(t.sparsity!)}%, ${accuracyText(d, t)} (${t.trial_id}${
      t.cut === undefined ? "" : `, cut ${fmtCut(t.cut)}`
    })`,
  }));
  const lines = d.fronts.flatMap((f) =>
    f.points.map((p, i) => ({ group: f.group, order: i, sparsity: pct(p.sparsity!), accuracy: pct(p.score!) }))
  );
  const x = {
    field: "sparsity",
    type: "quantitative",
    title: "sparsity (% of masked weights removed)",
    scale: { domain: [0, 100] },
  };
  const y = {
    field: "accuracy",
    type: "quantitative",
    title: `binary-ticket ${d.selection} accuracy (%)`,
    scale: { zero: false },
  };
  const color = { field: "group", type: "nominal", title: "method / sweep" };
  const layer: unknown[] = [
    {
      data: { values: trials },
      mark: { type: "point", filled: true, size: 45 },
      encoding: {
        x,
        y,
        color,
        opacity: {
          field: "front",
          type: "ordinal",
          scale: { domain: ["front", "dominated"], range: [0.95, 0.22] },
          title: "trial",
        },
        description: { field: "label" },
      },
    },
    {
      data: { values: lines },
      mark: { type: "line", strokeWidth: 2 },
      encoding: { x, y, color, order: { field: "order" } },
    },
    {
      data: { values: trials.filter((t) => t.knee) },
      mark: { type: "point", shape: "diamond", size: 260, filled: false, strokeWidth: 2.5 },
      encoding: { x, y, color, description: { field: "label" } },
    },
  ];
  // trials stopped early: their partial point as a cross, on no front, with its own legend entry
  const stopped = stoppedPoints(d);
  if (stopped.length) {
    layer.push({
      data: { values: stopped },
      mark: { type: "point", size: 110, strokeWidth: 2 },
      encoding: {
        x,
        y,
        color,
        shape: {
          field: "kind",
          type: "nominal",
          scale: { domain: [STOPPED], range: ["cross"] },
          title: "partial point",
        },
        description: { field: "label" },
      },
    });
  }
  // each sweep's own dense reference (in a comparison labelled with its sweep), never one line for all
  const several = d.settings.length > 1;
  const refs = d.references.map((r) => ({
    accuracy: pct(r.accuracy),
    sparsity: 100,
    text: several ? `${r.sweep} dense ${pct(r.accuracy)}%` : `dense ${pct(r.accuracy)}%`,
    label: `dense reference${several ? ` of ${r.sweep} (its fronts only)` : ""}: ${pct(r.accuracy)}% ${d.selection}`,
  }));
  if (refs.length) {
    layer.push({
      data: { values: refs },
      mark: { type: "rule", strokeDash: [6, 4], color: "#444" },
      encoding: { y: { field: "accuracy", type: "quantitative" }, description: { field: "label" } },
    }, {
      data: { values: refs },
      mark: { type: "text", align: "right", baseline: "bottom", dy: -2, color: "#444", fontSize: 10 },
      encoding: { x, y: { field: "accuracy", type: "quantitative" }, text: { field: "text" } },
    });
  }
  return {
    width: WIDTH,
    height: HEIGHT,
    title:
      (refs.length
        ? `Pareto fronts (◇ knee, dashed: dense reference${several ? " of each sweep, for its own fronts" : ""}`
        : "Pareto fronts (◇ knee; no dense reference in this sweep") +
      (stopped.length ? "; + stopped early, on no front)" : ")"),
    layer,
  } as TopLevelSpec;
}

const STOPPED = "stopped early";

/**
 * The partial point of each trial stopped early (the ticket it had at its rung, on the fronts' selection accuracy),
 * with a hover label: trial, epochs trained of those planned, partial point.
 */
export function stoppedPoints(d: ReportData) {
  return d.trials.flatMap((t) => {
    const score = d.selection === "validation" ? t.val_accuracy : t.accuracy;
    if (t.status !== "stopped" || t.sparsity === undefined || typeof score !== "number") return [];
    const acc = d.selection === "validation" && typeof t.accuracy === "number"
      ? `validation accuracy ${pct(score)}%, test ${pct(t.accuracy)}%`
      : `${d.selection} accuracy ${pct(score)}%`;
    const epochs = t.stopped ? ` after ${t.stopped.epochs.toFixed(2)} of ${t.stopped.planned_epochs} epochs` : "";
    return [{
      group: t.group,
      kind: STOPPED,
      trial_id: t.trial_id,
      sparsity: pct(t.sparsity),
      accuracy: pct(score),
      label: `${t.group} ${t.label}: stopped early${epochs}; partial point sparsity ${
        pct(t.sparsity)
      }%, ${acc} (${t.trial_id}, on no front)`,
    }];
  });
}

/**
 * Hypervolume against compute: one line per sweep (side by side in a comparison), x the trial-epochs spent so far,
 * y the hypervolume after each recorded outcome (a step each); null when no sweep has spent any compute yet.
 */
export function computeChartSpec(d: Pick<ReportData, "compute">): TopLevelSpec | null {
  const curves = (d.compute ?? []).filter((c) => c.steps.some((s) => s.trial_epochs > 0));
  if (!curves.length) return null;
  const values = curves.flatMap((c) =>
    c.steps.map((s, i) => ({
      sweep: c.sweep,
      order: i,
      trial_epochs: Number(s.trial_epochs.toFixed(4)),
      hypervolume: Number(s.hypervolume.toFixed(6)),
      label: `${c.sweep}: ${s.trials} trial${s.trials === 1 ? "" : "s"} recorded, ${
        Number(s.trial_epochs.toFixed(2))
      } trial-epochs, ${c.selection} hypervolume ${s.hypervolume.toFixed(4)}`,
    }))
  );
  const selections = [...new Set(curves.map((c) => c.selection))];
  const x = { field: "trial_epochs", type: "quantitative", title: "trial-epochs spent", scale: { zero: true } };
  const y = {
    field: "hypervolume",
    type: "quantitative",
    title: `${selections.join(" / ")} hypervolume`,
    scale: { zero: false },
  };
  const color = { field: "sweep", type: "nominal", title: "sweep" };
  return {
    width: WIDTH,
    height: 260,
    title: `Hypervolume against compute (${
      selections.length > 1 ? "validation, or test for sweeps without a validation split" : selections[0]
    }; after each recorded outcome)`,
    data: { values },
    layer: [
      {
        mark: { type: "line", interpolate: "step-after", strokeWidth: 2 },
        encoding: { x, y, color, order: { field: "order" } },
      },
      {
        mark: { type: "point", filled: true, size: 40 },
        encoding: { x, y, color, description: { field: "label" } },
      },
    ],
  } as TopLevelSpec;
}

/** Hypervolume of each front with its bootstrap interval over seeds. */
export function hypervolumeChartSpec(a: Analysis): TopLevelSpec {
  const values = a.fronts.map((f) => ({
    group: f.group,
    hv: f.hypervolume.mean,
    pooled: f.hypervolume.value,
    lo: f.hypervolume.lo,
    hi: f.hypervolume.hi,
    label: `${f.group}: per seed ${f.hypervolume.mean.toFixed(4)} [${f.hypervolume.lo.toFixed(4)}, ${
      f.hypervolume.hi.toFixed(4)
    }], pooled front ${f.hypervolume.value.toFixed(4)}`,
  }));
  const yEnc = { field: "group", type: "nominal", title: null };
  return {
    width: WIDTH,
    height: Math.max(60, 28 * values.length),
    title: "Hypervolume per seed (●, 95% bootstrap interval) and of the pooled front (×); reference (0, 0)",
    data: { values },
    layer: [
      {
        mark: { type: "rule", strokeWidth: 2 },
        encoding: {
          y: yEnc,
          x: { field: "lo", type: "quantitative", title: "hypervolume" },
          x2: { field: "hi" },
          color: { field: "group", legend: null },
        },
      },
      {
        mark: { type: "point", filled: true, size: 90 },
        encoding: {
          y: yEnc,
          x: { field: "hv", type: "quantitative" },
          color: { field: "group", legend: null },
          description: { field: "label" },
        },
      },
      {
        mark: { type: "point", shape: "cross", size: 90 },
        encoding: {
          y: yEnc,
          x: { field: "pooled", type: "quantitative" },
          color: { field: "group", legend: null },
          description: { field: "label" },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Per-layer sparsity of each front's knee ticket. */
export function layerChartSpec(a: Analysis): TopLevelSpec {
  const values = a.fronts.flatMap((f) =>
    (f.knee?.layers ?? []).map((l) => ({
      group: f.group,
      layer: l.layer,
      sparsity: pct(l.sparsity),
      label: `${f.group} knee ${f.knee!.trial_id}, ${l.layer}: ${
        pct(l.sparsity)
      }% removed (${l.kept} of ${l.total} kept)`,
    }))
  );
  return {
    width: WIDTH,
    height: 240,
    title: "Per-layer sparsity of each front's knee ticket",
    data: { values },
    mark: "bar",
    encoding: {
      x: { field: "layer", type: "nominal", sort: null, title: "masked layer" },
      xOffset: { field: "group" },
      y: { field: "sparsity", type: "quantitative", title: "sparsity (%)", scale: { domain: [0, 100] } },
      color: { field: "group", type: "nominal", title: "method / sweep" },
      description: { field: "label" },
    },
  } as TopLevelSpec;
}

/** Task loss per epoch of each front's knee ticket. */
export function lossChartSpec(a: Analysis): TopLevelSpec {
  const values = a.fronts.flatMap((f) =>
    (f.knee?.loss_curve ?? []).map((p) => ({
      group: f.group,
      epoch: p.epoch,
      loss: p.task_loss,
      label: `${f.group} knee, epoch ${p.epoch}: task loss ${p.task_loss.toFixed(4)}, train accuracy ${
        pct(p.train_accuracy)
      }%`,
    }))
  );
  return {
    width: WIDTH,
    height: 240,
    title: "Training loss (task term) of each front's knee ticket",
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "epoch", type: "quantitative" },
      y: { field: "loss", type: "quantitative", title: "cross-entropy", scale: { zero: false } },
      color: { field: "group", type: "nominal", title: "method / sweep" },
      description: { field: "label" },
    },
  } as TopLevelSpec;
}
