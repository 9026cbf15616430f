import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Analysis, ConfigRow } from "./analysis.ts";
import { fmtCut, type ReportData, type TrialRow } from "./data.ts";
import { nonDominatedOf } from "../pareto/front.ts";

const pct = (v: number) => Number((100 * v).toFixed(2));
const WIDTH = 560, HEIGHT = 340;

/**
 * Renders a Vega-Lite spec to a standalone SVG string (no browser, no CDN). Marks with a `description`
 * get an SVG `<title>`, so browsers show it on hover.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const late = thinChartData(spec, CHART_POINTS);
  const early = (spec as { usermeta?: { thinned?: { drawn: number; total: number } } }).usermeta?.thinned;
  const thinned = late || early
    ? { drawn: (late?.drawn ?? 0) + (early?.drawn ?? 0), total: (late?.total ?? 0) + (early?.total ?? 0) }
    : null;
  if (thinned) {
    const note = `${fmtInt(thinned.drawn)} of ${fmtInt(thinned.total)} points drawn, evenly spaced (every trial is ` +
      "in trials.csv)";
    const title = (spec as { title?: unknown }).title;
    (spec as { title?: unknown }).title = typeof title === "string"
      ? `${title}; ${note}`
      : title && typeof title === "object" && "text" in title
      ? { ...title, subtitle: "subtitle" in title && title.subtitle ? `${title.subtitle} ${note}.` : note }
      : note;
  }
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg.replace(
    /<(path|line) aria-label="([^"]*)"([^>]*)\/>/g,
    (_m, tag: string, label: string, rest: string) =>
      `<${tag} aria-label="${label}"${rest}><title>${label}</title></${tag}>`,
  );
}

/**
 * `rows` sorted by `key` ascending, then by `then` ascending, ties in their order: the same order as a stable sort
 * whose comparison reads each row's numbers (`key[i]` is row `i`'s), with the numbers read once per row, not twice
 * per comparison (a getter per read, for 100,000 rows millions of numbers or spreads made).
 */
function sortedBy<T>(rows: readonly T[], key: Float64Array, then?: Float64Array): T[] {
  const order = Array.from({ length: rows.length }, (_, i) => i);
  order.sort((a, b) => key[a]! - key[b]! || (then ? then[a]! - then[b]! : 0) || a - b);
  return order.map((i) => rows[i]!);
}

/**
 * The most points one layer of a chart draws: a sweep of 100,000 trials is drawn from evenly spaced samples (an
 * SVG of every point would be hundreds of megabytes); fronts, knees and tables are computed from every trial.
 */
export const CHART_POINTS = 1000;

const fmtInt = (n: number) => n.toLocaleString("en-US");

/**
 * Thins every `data.values` of a chart spec (its layers, concatenated views) longer than `max` to about `max`
 * rows: each line (`line`, else `group`, else `sweep`) keeps its share, evenly spaced along its order, with its
 * first and last rows and every knee. Null when nothing was thinned; else how many rows are drawn of how many.
 */
export function thinChartData(spec: unknown, max: number): { drawn: number; total: number } | null {
  let drawn = 0, total = 0, thinned = false;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object") return;
    const o = node as Record<string, unknown>;
    const data = o["data"] as { values?: unknown } | undefined;
    if (data && Array.isArray(data.values) && data.values.length > max) {
      const values = data.values as Record<string, unknown>[];
      const kept = thinRows(values, max);
      o["data"] = { ...data, values: kept };
      drawn += kept.length;
      total += values.length;
      thinned = true;
    }
    for (const k of ["layer", "hconcat", "vconcat", "concat", "spec"]) if (k in o) visit(o[k]);
  };
  visit(spec);
  return thinned ? { drawn, total } : null;
}

function thinRows<T>(
  rows: readonly T[],
  max: number,
  keyOf: (r: T) => string = (r) => {
    const o = r as Record<string, unknown>;
    return String(o["line"] ?? o["group"] ?? o["sweep"] ?? "");
  },
  kept: (r: T) => boolean = (r) => (r as Record<string, unknown>)["knee"] === true,
): T[] {
  const lines = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const k = keyOf(r);
    const l = lines.get(k);
    if (l) l.push(i);
    else lines.set(k, [i]);
  });
  const keep = new Uint8Array(rows.length);
  for (const idx of lines.values()) {
    const share = Math.max(2, Math.floor((max * idx.length) / rows.length));
    if (idx.length <= share) {
      for (const i of idx) keep[i] = 1;
      continue;
    }
    for (let j = 0; j < share; j++) keep[idx[Math.round((j * (idx.length - 1)) / (share - 1))]!] = 1;
    for (const i of idx) if (kept(rows[i]!)) keep[i] = 1;
  }
  return rows.filter((_, i) => keep[i] === 1);
}

/**
 * Thins a chart's source rows before they are labelled (100,000 labels are ~50 MB), as {@link thinChartData} would
 * thin the labelled ones, and counts what was left out for the chart's note (`usermeta.thinned`).
 */
class SourceThinner {
  drawn = 0;
  total = 0;
  thin<T>(rows: readonly T[], keyOf: (r: T) => string, kept: (r: T) => boolean = () => false): T[] {
    if (rows.length <= CHART_POINTS) return [...rows];
    const out = thinRows(rows, CHART_POINTS - 16, keyOf, kept); // room for the kept rows: not thinned twice
    this.drawn += out.length;
    this.total += rows.length;
    return out;
  }
  /**
   * {@link thin} over rows that come in lines (each line's rows in its order, one key per line), keyed by line: the
   * same rows kept, each with its line and its index in that line, without first making an object for every row of
   * every line (a per-seed front of 100,000 tickets).
   */
  thinLines<T>(lines: readonly (readonly T[])[]): { line: number; order: number; row: T }[] {
    const total = lines.reduce((n, l) => n + l.length, 0), out: { line: number; order: number; row: T }[] = [];
    const max = CHART_POINTS - 16; // as thin() gives to thinRows
    lines.forEach((rows, line) => {
      const share = Math.max(2, Math.floor((max * rows.length) / total));
      if (total <= CHART_POINTS || rows.length <= share) {
        rows.forEach((row, order) => out.push({ line, order, row }));
        return;
      }
      for (let j = 0; j < share; j++) {
        const order = Math.round((j * (rows.length - 1)) / (share - 1));
        out.push({ line, order, row: rows[order]! });
      }
    });
    if (total > CHART_POINTS) {
      this.drawn += out.length;
      this.total += total;
    }
    return out;
  }
  /** The `usermeta` of a chart whose sources were thinned; nothing otherwise. */
  meta(): { usermeta?: { thinned: { drawn: number; total: number } } } {
    return this.total ? { usermeta: { thinned: { drawn: this.drawn, total: this.total } } } : {};
  }
}

/** A ticket's accuracies as a hover label says them: the selection accuracy first, test beside it. */
export function accuracyText(d: { selection: ReportData["selection"] }, t: TrialRow): string {
  return d.selection === "validation"
    ? `validation accuracy ${pct(t.val_accuracy!)}%, test ${pct(t.accuracy!)}%`
    : `test accuracy ${pct(t.accuracy!)}% (no validation split)`;
}

/** Sparsity on the linear axis (percent removed). */
const SPARSITY_X = {
  field: "sparsity",
  type: "quantitative",
  title: "sparsity (% of masked weights removed)",
  scale: { domain: [0, 100] },
};

/**
 * Each sweep's own dense reference as a dashed rule labelled with its value (in a comparison, with its sweep), never
 * one line for all; `x` places the label at the right end. Nothing without a dense trial.
 */
function denseLayers(d: ReportData, x: Record<string, unknown>, right: number): unknown[] {
  const several = d.settings.length > 1;
  const refs = d.references.map((r) => ({
    accuracy: pct(r.accuracy),
    at: right,
    text: several ? `${r.sweep} dense ${pct(r.accuracy)}%` : `dense ${pct(r.accuracy)}%`,
    label: `dense reference${several ? ` of ${r.sweep} (its fronts only)` : ""}: ${pct(r.accuracy)}% ${d.selection}`,
  }));
  if (!refs.length) return [];
  return [{
    data: { values: refs },
    mark: { type: "rule", strokeDash: [6, 4], color: "#444" },
    encoding: { y: { field: "accuracy", type: "quantitative" }, description: { field: "label" } },
  }, {
    data: { values: refs },
    mark: { type: "text", align: "right", baseline: "bottom", dy: -2, color: "#444", fontSize: 10 },
    encoding: { x: { ...x, field: "at" }, y: { field: "accuracy", type: "quantitative" }, text: { field: "text" } },
  }];
}

/** The title's words on the dense line: only when there is one. */
function denseWords(d: ReportData): string {
  return d.references.length
    ? `dashed: dense reference${d.settings.length > 1 ? " of each sweep, for its own fronts" : ""}`
    : "no dense reference in this sweep";
}

/** A spread as hover text: mean ± sd [interval], or that the spread cannot be judged. */
function spreadText(s: ConfigRow["sparsity"], n: number): string {
  const sd = s.sd === null ? "" : ` ± ${pct(s.sd)}`;
  return `${pct(s.mean)}%${sd}` +
    (s.lo === null || s.hi === null ? "" : ` (95% interval ${pct(s.lo)}-${pct(s.hi)}%)`) +
    (n < 3 ? ` (cannot judge the spread with ${n} seed${n === 1 ? "" : "s"})` : "");
}

/** The smallest remaining-weights percentage a log axis shows: a decade below the sparsest point. */
function remainingFloor(values: number[]): number {
  const min = values.reduce((m, v) => (v > 0 ? Math.min(m, v) : m), 100); // not Math.min(...): 100,000 values
  return 10 ** Math.floor(Math.log10(min) - 1e-9);
}

/**
 * The configuration fronts: each point the mean over a configuration's seeds at one ladder position (dominated
 * ones faded), each front as a line, its points with error bars (95% bootstrap interval over seeds, in both sparsity
 * and accuracy; none below 3 seeds), the knee as a large diamond, each sweep's dense reference as a labelled dashed
 * rule. `remaining`: x is the fraction of weights remaining (1 − sparsity) on a log axis, reversed so sparser is to
 * the right and 90, 99 and 99.9% sparsity are evenly spaced.
 */
export function configChartSpec(d: ReportData, a: Analysis, axis: "sparsity" | "remaining" = "sparsity"): TopLevelSpec {
  const knees = new Set(a.fronts.map((f) => f.knee_point));
  const front = new Set(a.fronts.flatMap((f) => f.front));
  const log = axis === "remaining";
  const thinner = new SourceThinner();
  const all = a.fronts.flatMap((f) => f.configs), mean = Float64Array.from(all, (p) => p.sparsity.mean);
  let source = log ? all.filter((_, i) => mean[i]! < 1) : all;
  if (source.length > CHART_POINTS) { // ends kept
    source = sortedBy(source, log ? mean.filter((m) => m < 1) : mean);
  }
  const rows = thinner.thin(source, (p) => p.group, (p) => knees.has(p))
    .map((p) => {
      const n = p.seeds.length, s = p.sparsity, acc = p.accuracy;
      return {
        group: p.group,
        sparsity: pct(s.mean),
        remaining: pct(1 - s.mean),
        accuracy: pct(acc.mean),
        s_lo: s.lo === null ? null : pct(s.lo),
        s_hi: s.hi === null ? null : pct(s.hi),
        r_lo: s.hi === null ? null : pct(1 - s.hi),
        r_hi: s.lo === null ? null : pct(1 - s.lo),
        a_lo: acc.lo === null ? null : pct(acc.lo),
        a_hi: acc.hi === null ? null : pct(acc.hi),
        front: front.has(p) ? "front" : "dominated",
        knee: knees.has(p),
        label: `${p.group} ${p.label}, ${n} seed${n === 1 ? "" : "s"}: sparsity ${spreadText(s, n)}, ${d.selection} ` +
          `accuracy ${spreadText(acc, n)}${d.selection === "validation" ? `, test ${pct(p.test.mean)}%` : ""}`,
      };
    });
  const floor = remainingFloor(rows.flatMap((r) => [r.remaining, r.r_lo ?? 100]));
  // an interval reaching 100% sparsity ends at the axis' floor (nothing remaining has no place on a log axis)
  if (log) { for (const r of rows) if (r.r_lo !== null && r.r_lo < floor) r.r_lo = floor; }
  const x = log
    ? {
      field: "remaining",
      type: "quantitative",
      title: "weights remaining (% of masked weights kept, log scale; 10, 1, 0.1 = 90, 99, 99.9% sparse)",
      scale: { type: "log", domain: [floor, 100], reverse: true },
      axis: { values: [100, 10, 1, 0.1, 0.01, 0.001].filter((v) => v >= floor), format: "~g" },
    }
    : SPARSITY_X;
  const [xlo, xhi] = log ? ["r_lo", "r_hi"] : ["s_lo", "s_hi"];
  const y = {
    field: "accuracy",
    type: "quantitative",
    title: `${d.selection} accuracy (%, mean over seeds)`,
    scale: { zero: false },
  };
  const color = { field: "group", type: "nominal", title: "method / sweep" };
  const onFront = rows.filter((r) => r.front === "front");
  const bars = onFront.filter((r) => r.a_lo !== null);
  const barLabel = (r: typeof rows[number]) => `${r.label}; error bars: 95% interval over seeds`;
  const layer: unknown[] = [
    frontPointLayer(rows, 45, { x, y, color }, "configuration"),
    {
      data: { values: onFront },
      mark: { type: "line", strokeWidth: 2 },
      encoding: { x, y, color, order: { field: "sparsity" } },
    },
    {
      data: { values: bars.map((r) => ({ ...r, label: `accuracy ${barLabel(r)}` })) },
      mark: { type: "rule", strokeWidth: 1.5 },
      encoding: { x, y: { ...y, field: "a_lo" }, y2: { field: "a_hi" }, color, description: { field: "label" } },
    },
    {
      data: { values: bars.map((r) => ({ ...r, label: `sparsity ${barLabel(r)}` })) },
      mark: { type: "rule", strokeWidth: 1.5 },
      encoding: { x: { ...x, field: xlo }, x2: { field: xhi }, y, color, description: { field: "label" } },
    },
    {
      data: { values: rows.filter((r) => r.knee) },
      mark: { type: "point", shape: "diamond", size: 260, filled: false, strokeWidth: 2.5 },
      encoding: { x, y, color, description: { field: "label" } },
    },
    ...denseLayers(d, x, log ? floor : 100),
  ];
  const few = a.fronts.some((f) => f.front.some((p) => p.seeds.length < 3));
  return {
    ...thinner.meta(),
    width: WIDTH,
    height: HEIGHT,
    title: {
      text: `Pareto fronts of configurations${log ? ", weights remaining on a log axis" : ""} (◇ knee; ${
        denseWords(d)
      })`,
      subtitle: `Each point: a configuration's mean over its seeds at one ladder position; error bars: 95% bootstrap ` +
        `interval over seeds${few ? " (none below 3 seeds: the spread cannot be judged)" : ""}.`,
    },
    layer,
  } as TopLevelSpec;
}

/**
 * The points of a front chart: filled, coloured by group, faded where dominated (`front: "dominated"`), the opacity
 * legend titled `legend`; each point's `label` is its description.
 */
function frontPointLayer(
  values: unknown[],
  size: number,
  at: { x: unknown; y: unknown; color: unknown },
  legend: string,
) {
  return {
    data: { values },
    mark: { type: "point", filled: true, size },
    encoding: {
      ...at,
      opacity: {
        field: "front",
        type: "ordinal",
        scale: { domain: ["front", "dominated"], range: [0.95, 0.22] },
        title: legend,
      },
      description: { field: "label" },
    },
  };
}

/**
 * Per-seed fronts: every ticket of the done trials (their own and each cut of their ladders; faded: dominated by
 * another ticket of its group, any seed) with each seed's own front as a thin line, on selection accuracy (y:
 * validation, or test for runs without a validation split); trials stopped early as crosses at their partial point;
 * the dense reference as a labelled dashed rule.
 */
export function frontChartSpec(d: ReportData, a: Analysis): TopLevelSpec {
  const done = d.tickets.filter((t) => t.sparsity !== undefined && a.fronts.some((f) => f.group === t.group));
  const thinner = new SourceThinner();
  const drawn = done.length > CHART_POINTS ? sortedBy(done, Float64Array.from(done, (t) => t.sparsity!)) : done;
  const trials = thinner.thin(drawn, (t) => t.group).map((t) => ({
    group: t.group,
    seed: t.seed,
    sparsity: pct(t.sparsity!),
    accuracy: pct(t.score!),
    front: t.dominated ? "dominated" : "front",
    label: `${t.group} ${t.label}: sparsity ${pct(t.sparsity!)}%, ${accuracyText(d, t)} (${t.trial_id}${
      t.cut === undefined ? "" : `, cut ${fmtCut(t.cut)}`
    })`,
  }));
  // each seed's own front of each group, thinned before a point of it is made (a front of 100,000)
  const seedFronts = a.fronts.flatMap((f) => {
    // no copy where one group and one seed are all of them (a sweep of 100,000 trials on one seed)
    const mine = a.fronts.length === 1 ? done : done.filter((t) => t.group === f.group);
    const seeds = new Set<number>();
    for (const t of mine) seeds.add(t.seed);
    return [...seeds].map((seed) => {
      const own = seeds.size === 1 ? mine : mine.filter((t) => t.seed === seed);
      const xs = Float64Array.from(own, (t) => t.sparsity!), ys = Float64Array.from(own, (t) => t.score!);
      const nd = nonDominatedOf(xs, ys), on = own.filter((_, i) => nd[i]);
      const negY = Float64Array.from(ys.filter((_, i) => nd[i]), (y) => -y); // score descending among equal sparsity
      return {
        group: f.group,
        line: `${f.group} seed ${seed}`,
        points: sortedBy(on, xs.filter((_, i) => nd[i]), negY),
      };
    });
  });
  const lines = thinner.thinLines(seedFronts.map((l) => l.points)).map(({ line, order, row: t }) => ({
    group: seedFronts[line]!.group,
    line: seedFronts[line]!.line,
    order,
    sparsity: pct(t.sparsity!),
    accuracy: pct(t.score!),
  }));
  const x = SPARSITY_X;
  const y = {
    field: "accuracy",
    type: "quantitative",
    title: `binary-ticket ${d.selection} accuracy (%)`,
    scale: { zero: false },
  };
  const color = { field: "group", type: "nominal", title: "method / sweep" };
  const layer: unknown[] = [
    frontPointLayer(trials, 40, { x, y, color }, "ticket"),
    {
      data: { values: lines },
      mark: { type: "line", strokeWidth: 1, opacity: 0.7 },
      encoding: { x, y, color, detail: { field: "line" }, order: { field: "order" } },
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
  layer.push(...denseLayers(d, x, 100));
  return {
    ...thinner.meta(),
    width: WIDTH,
    height: HEIGHT,
    title: `Per-seed fronts: every seed's tickets, one thin line per seed's own front (${denseWords(d)}` +
      (stopped.length ? "; + stopped early, on no front)" : ")"),
    layer,
  } as TopLevelSpec;
}

/** The parameter that moves a configuration's sparsity: `lambda`, or edge-popup's `k`. */
export function knobOf(params: Record<string, unknown>): "lambda" | "k" | null {
  return typeof params["lambda"] === "number" ? "lambda" : typeof params["k"] === "number" ? "k" : null;
}

/**
 * The knob curves: each method's sparsity parameter (lambda, or k) against the sparsity of its trials' own tickets
 * and against their accuracy, means over seeds with 95% bootstrap error bars (none below 3 seeds); one column per
 * parameter, a line per setting of the other parameters. Null when no group sweeps its knob over two values or more.
 */
export function knobChartSpec(d: Pick<ReportData, "selection">, a: Analysis): TopLevelSpec | null {
  const thinner = new SourceThinner();
  const rows = a.fronts.flatMap((f) => {
    const own = f.configs.filter((p) => p.position === 0);
    const knob = own.length ? knobOf(own[0]!.params) : null;
    if (!knob || new Set(own.map((p) => p.params[knob])).size < 2) return [];
    if (own.length > CHART_POINTS) own.sort((p, q) => (p.params[knob] as number) - (q.params[knob] as number));
    return thinner.thin(own, () => "").map((p) => {
      const others = Object.keys(p.params).filter((k) => k !== knob && k !== "method").sort()
        .map((k) => `${k}=${p.params[k]}`).join(" ");
      const n = p.seeds.length;
      return {
        group: p.group,
        knob,
        value: p.params[knob] as number,
        line: `${p.group} ${others}`,
        sparsity: pct(p.sparsity.mean),
        s_lo: p.sparsity.lo === null ? null : pct(p.sparsity.lo),
        s_hi: p.sparsity.hi === null ? null : pct(p.sparsity.hi),
        accuracy: pct(p.accuracy.mean),
        a_lo: p.accuracy.lo === null ? null : pct(p.accuracy.lo),
        a_hi: p.accuracy.hi === null ? null : pct(p.accuracy.hi),
        label: `${p.group} ${knob}=${p.params[knob]}${others ? ` ${others}` : ""} (own tickets, ${n} seed${
          n === 1 ? "" : "s"
        }): sparsity ${spreadText(p.sparsity, n)}, ${d.selection} accuracy ${spreadText(p.accuracy, n)}`,
      };
    });
  });
  if (!rows.length) return null;
  const color = { field: "group", type: "nominal", title: "method / sweep" };
  const panel = (knob: string, field: "sparsity" | "accuracy") => {
    const values = rows.filter((r) => r.knob === knob);
    const vs = values.map((r) => r.value);
    const least = vs.reduce((m, v) => Math.min(m, v), Infinity), most = vs.reduce((m, v) => Math.max(m, v), -Infinity);
    const logX = least > 0 && most / least >= 10;
    const x = { field: "value", type: "quantitative", title: knob, scale: logX ? { type: "log" } : { zero: false } };
    const title = field === "sparsity" ? "sparsity (%)" : `${d.selection} accuracy (%)`;
    const y = {
      field,
      type: "quantitative",
      title,
      scale: field === "sparsity" ? { domain: [0, 100] } : { zero: false },
    };
    const [lo, hi] = field === "sparsity" ? ["s_lo", "s_hi"] : ["a_lo", "a_hi"];
    return {
      width: 260,
      height: 170,
      title: `${field} against ${knob}`,
      data: { values },
      layer: [
        { mark: { type: "line", strokeWidth: 1.5 }, encoding: { x, y, color, detail: { field: "line" } } },
        { mark: { type: "point", filled: true, size: 45 }, encoding: { x, y, color, description: { field: "label" } } },
        {
          transform: [{ filter: `datum.${lo} !== null` }],
          mark: { type: "rule" },
          encoding: { x, y: { ...y, field: lo }, y2: { field: hi }, color },
        },
      ],
    };
  };
  const knobs = [...new Set(rows.map((r) => r.knob))];
  return {
    ...thinner.meta(),
    title: {
      text: "Knob curves: the sparsity parameter against sparsity and accuracy",
      subtitle: "Trials' own tickets, mean over seeds; error bars: 95% bootstrap interval over seeds (none below 3).",
    },
    hconcat: knobs.map((k) => ({ vconcat: [panel(k, "sparsity"), panel(k, "accuracy")] })),
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
  const thinner = new SourceThinner();
  const values = curves.flatMap((c) =>
    thinner.thin(c.steps.map((s, i) => ({ s, i })), () => "").map(({ s, i }) => ({
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
    ...thinner.meta(),
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
  const values = a.fronts.map((f) => {
    const h = f.hypervolume, judged = h.seeds >= 3;
    return {
      group: f.group,
      hv: h.mean,
      pooled: h.value,
      // below 3 seeds no interval is drawn: the spread cannot be judged
      lo: judged ? h.lo : h.mean,
      hi: judged ? h.hi : h.mean,
      label: `${f.group}: per seed ${h.mean.toFixed(4)} ${
        judged
          ? `[${h.lo.toFixed(4)}, ${h.hi.toFixed(4)}]`
          : `(cannot judge the spread with ${h.seeds} seed${h.seeds === 1 ? "" : "s"})`
      }, pooled front ${h.value.toFixed(4)}`,
    };
  });
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
