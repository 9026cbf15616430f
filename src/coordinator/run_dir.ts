import { buildReportData, paretoJson, renderMarkdown, type ReportData } from "../report/mod.ts";
import type { Trial } from "../spec/expand.ts";
import type { SweepSpec } from "../spec/schema.ts";
import type { RecordedResult } from "./record.ts";

/** What `runs/<sweep>/sweep.json` holds: enough to resume or report without the original file. */
export interface SweepManifest {
  format: "ticketsweep-sweep";
  version: 1;
  sweep_id: string;
  name: string;
  spec_file: string;
  spec_text: string;
  spec: SweepSpec;
  trials: Trial[];
  created_at: string;
}

export async function writeManifest(dir: string, m: SweepManifest): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/spec.yaml`, m.spec_text);
  await atomicWrite(`${dir}/sweep.json`, JSON.stringify(m, null, 2) + "\n");
}

export async function readManifest(dir: string): Promise<SweepManifest> {
  return JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`)) as SweepManifest;
}

/** Writes `pareto.json` and `report.md` for a run directory; returns the report data. */
export async function writeReports(dir: string, m: SweepManifest, results: RecordedResult[]): Promise<ReportData> {
  const data = buildReportData(m.sweep_id, m.name, m.trials, results, m.spec_text);
  await atomicWrite(`${dir}/pareto.json`, JSON.stringify(paretoJson(data), null, 2) + "\n");
  await atomicWrite(`${dir}/report.md`, renderMarkdown(data));
  return data;
}

/** Write-then-rename, so a crash never leaves a half-written file. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
