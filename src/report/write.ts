import { atomicWrite } from "../util/atomic_write.ts";
import { analyse } from "./analysis.ts";
import type { ReportData } from "./data.ts";
import { paretoJson } from "./data.ts";
import { frontsJson, trialsCsv } from "./export.ts";
import { renderHtml } from "./html.ts";
import { renderMarkdown } from "./markdown.ts";

/** The report files written into a folder. */
export const REPORT_FILES = ["report.html", "report.md", "pareto.json", "fronts.json", "trials.csv"];

/** Analyses report data and writes every report file into `dir` (each atomically). */
export async function writeReportFiles(
  dir: string,
  d: ReportData,
  opts: { atAccuracy?: number[] } = {},
): Promise<void> {
  const a = analyse(d, { atAccuracy: opts.atAccuracy });
  await Deno.mkdir(dir, { recursive: true });
  await atomicWrite(`${dir}/report.html`, await renderHtml(d, a));
  await atomicWrite(`${dir}/report.md`, renderMarkdown(d, a));
  await atomicWrite(`${dir}/pareto.json`, JSON.stringify(paretoJson(d), null, 2) + "\n");
  await atomicWrite(`${dir}/fronts.json`, JSON.stringify(frontsJson(d, a), null, 2) + "\n");
  await atomicWrite(`${dir}/trials.csv`, trialsCsv(d));
}
