import { atomicWrite } from "../util/atomic_write.ts";
import { buildReportData, type ReportData, writeReportFiles } from "../report/mod.ts";
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

/** The report data of a run directory's plan and recorded results. */
export function reportDataOf(m: SweepManifest, results: RecordedResult[]): ReportData {
  return buildReportData(m.sweep_id, m.name, m.trials, results, m.spec_text);
}

/**
 * Writes the reports of a run directory (`report.html`, `report.md`, `pareto.json`, `fronts.json`,
 * `trials.csv`); returns the report data.
 */
export async function writeReports(dir: string, m: SweepManifest, results: RecordedResult[]): Promise<ReportData> {
  const data = reportDataOf(m, results);
  await writeReportFiles(dir, data);
  return data;
}
