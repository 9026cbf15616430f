import type { RecordedResult } from "../coordinator/record.ts";
import type { LayerSparsity, LossPoint } from "../train/result.ts";
import { nonDominated } from "../pareto/front.ts";
import { describeParams, type ParamSet, type Trial } from "../spec/expand.ts";

/** One row of the all-trials table. */
export interface TrialRow {
  trial_id: string;
  group: string;
  params: ParamSet;
  seed: number;
  label: string;
  status: "done" | "failed" | "pending";
  accuracy?: number;
  soft_accuracy?: number | null;
  sparsity?: number;
  steps_per_s?: number;
  train_s?: number;
  backend?: string;
  worker?: string;
  error?: string;
  attempt?: number;
  layers?: LayerSparsity[];
  loss_curve?: LossPoint[];
  /** Undefined unless done; true when another trial of its group is at least as good in both objectives. */
  dominated?: boolean;
}

/** One worker that produced results, with its environment. */
export interface WorkerEnv {
  worker: string;
  host: string;
  backend: string;
  device: string;
  deno: string;
  trials: number;
}

/** The Pareto front of one group (a method, or a whole sweep). */
export interface Front {
  group: string;
  points: TrialRow[];
}

/** Everything a report shows, computed once; renderers only format it. */
export interface ReportData {
  sweep_id: string;
  name: string;
  objectives: ["sparsity", "accuracy"];
  trials: TrialRow[];
  fronts: Front[];
  counts: { total: number; done: number; failed: number; pending: number };
  spec_text: string;
  masked_layers: string[];
  backends: string[];
  /** The dense-trained reference (method `dense`): its mean test accuracy over its done trials, if any. */
  dense: { accuracy: number; trials: number } | null;
  workers: WorkerEnv[];
}

/** Builds the report's data from the planned trials and the recorded results. */
export function buildReportData(
  sweepId: string,
  name: string,
  trials: Trial[],
  results: RecordedResult[],
  specText: string,
): ReportData {
  const byId = new Map(results.map((r) => [r.trial_id, r]));
  const rows: TrialRow[] = trials.map((t) => {
    const r = byId.get(t.id);
    const base = {
      trial_id: t.id,
      group: t.config.method.name,
      params: t.params,
      seed: t.seed,
      label: describeParams(t.params, t.seed),
    };
    if (!r) return { ...base, status: "pending" as const };
    const m = r.metrics;
    return {
      ...base,
      status: r.status,
      attempt: r.attempt,
      worker: `${r.worker.host}/${r.worker.id}`,
      ...(m
        ? {
          accuracy: m.accuracy,
          soft_accuracy: m.soft_accuracy,
          sparsity: m.sparsity,
          steps_per_s: m.steps_per_s,
          train_s: m.train_s,
          backend: m.backend,
          layers: m.layers,
          loss_curve: m.loss_curve,
        }
        : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
    };
  });
  const fronts = computeFronts(rows);
  const masked = results.find((r) => r.metrics)?.metrics?.masked_layers ?? [];
  return {
    sweep_id: sweepId,
    name,
    objectives: ["sparsity", "accuracy"],
    trials: rows,
    fronts,
    counts: countsOf(rows),
    spec_text: specText,
    masked_layers: masked,
    backends: [...new Set(results.flatMap((r) => (r.metrics ? [`${r.metrics.backend} (${r.metrics.device})`] : [])))],
    dense: denseReference(rows),
    workers: workerEnvs(results),
  };
}

/**
 * The front of each group, marking every done row dominated or not. The dense reference removes nothing:
 * it is a reference line, not a front.
 */
export function computeFronts(rows: TrialRow[]): Front[] {
  const groups = [...new Set(rows.map((r) => r.group))].filter((g) => !isDenseGroup(g));
  return groups.map((group) => {
    const done = rows.filter((r) => r.group === group && r.status === "done");
    const nd = nonDominated(done.map((r) => ({ x: r.sparsity!, y: r.accuracy! })));
    done.forEach((r, i) => (r.dominated = !nd[i]));
    const points = done.filter((_, i) => nd[i]).sort((a, b) => a.sparsity! - b.sparsity! || b.accuracy! - a.accuracy!);
    return { group, points };
  });
}

function countsOf(rows: TrialRow[]): ReportData["counts"] {
  const n = (status: TrialRow["status"]) => rows.filter((r) => r.status === status).length;
  return { total: rows.length, done: n("done"), failed: n("failed"), pending: n("pending") };
}

/** A group of dense reference trials (`dense`, or `<sweep>: dense` in a comparison). */
export function isDenseGroup(group: string): boolean {
  return group === "dense" || group.endsWith(": dense");
}

function denseReference(rows: TrialRow[]): ReportData["dense"] {
  const done = rows.filter((r) => isDenseGroup(r.group) && r.status === "done");
  return done.length
    ? { accuracy: done.reduce((s, r) => s + r.accuracy!, 0) / done.length, trials: done.length }
    : null;
}

function workerEnvs(results: RecordedResult[]): WorkerEnv[] {
  const by = new Map<string, WorkerEnv>();
  for (const r of results) {
    const key = `${r.worker.host}/${r.worker.id}`;
    const e = by.get(key) ??
      {
        worker: r.worker.id,
        host: r.worker.host,
        backend: r.worker.backend,
        device: r.worker.device,
        deno: r.worker.deno,
        trials: 0,
      };
    e.trials++;
    by.set(key, e);
  }
  return [...by.values()].sort((a, b) => a.host.localeCompare(b.host) || a.worker.localeCompare(b.worker));
}

/**
 * Several sweeps' report data as one: groups become `<sweep name>: <method>`, so each method of each sweep
 * has its own front and the comparison covers them all.
 */
export function combineReports(list: ReportData[]): ReportData {
  if (list.length === 1) return list[0]!;
  const rows = list.flatMap((d) => d.trials.map((r) => ({ ...r, group: `${d.name}: ${r.group}` })));
  return {
    sweep_id: list.map((d) => d.sweep_id).join("+"),
    name: list.map((d) => d.name).join(" vs "),
    objectives: ["sparsity", "accuracy"],
    trials: rows,
    fronts: computeFronts(rows),
    counts: countsOf(rows),
    spec_text: list.map((d) => `# ${d.name} (${d.sweep_id})\n${d.spec_text.trimEnd()}`).join("\n\n"),
    masked_layers: [...new Set(list.flatMap((d) => d.masked_layers))],
    backends: [...new Set(list.flatMap((d) => d.backends))],
    // one reference line only when exactly one sweep has a dense reference (others may be other data)
    dense: list.filter((d) => d.dense).length === 1 ? list.find((d) => d.dense)!.dense : null,
    workers: list.flatMap((d) => d.workers),
  };
}

/** The `pareto.json` document: fronts per group and every done trial marked dominated or not. */
export function paretoJson(d: ReportData): unknown {
  const point = (r: TrialRow) => ({
    trial_id: r.trial_id,
    sparsity: r.sparsity,
    accuracy: r.accuracy,
    params: r.params,
    seed: r.seed,
  });
  return {
    sweep_id: d.sweep_id,
    objectives: [{ name: "sparsity", goal: "maximize" }, { name: "accuracy", goal: "maximize" }],
    counts: d.counts,
    fronts: d.fronts.map((f) => ({ group: f.group, points: f.points.map(point) })),
    dense_reference: d.dense,
    trials: d.trials.filter((r) => r.status === "done").map((r) => ({
      ...point(r),
      group: r.group,
      dominated: r.dominated,
    })),
  };
}
