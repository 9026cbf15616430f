import { ResultLog, setAsideNotice } from "../coordinator/record.ts";
import { readManifest, reportDataOf, reportedOutcomes } from "../coordinator/run_dir.ts";
import { acquireRunLock, type RunLock } from "../coordinator/run_lock.ts";
import { analyse, analysisTables, combineReports, frontTables, REPORT_FILES, writeReportFiles } from "../report/mod.ts";
import type { ReportData } from "../report/mod.ts";
import { configFrontTables, settingsSection } from "../report/markdown.ts";
import { sweepLabels } from "../report/data.ts";
import { comparabilityWarning } from "../report/settings.ts";
import { TicketsweepError } from "../util/errors.ts";
import { printable } from "../util/clip.ts";
import { logLine, parseCli, shown, shownPath } from "./common.ts";

export const REPORT_USAGE = `Usage: deno task report runs/A [runs/B ...] [--out DIR] [--at-accuracy X,Y,...]

Writes the reports of each run directory from its results.jsonl: report.html (self-contained, opens
offline), report.md, trials.csv, fronts.json and pareto.json, and prints the fronts and their analysis:
fronts over configurations (every parameter but the seed: mean and spread over seeds), then each seed's.
With several run directories, also writes the same files for all of them together (one front per
sweep and method, compared pairwise) into DIR (default runs/comparison), and first prints the
settings that differ between the sweeps and a warning when those make their fronts not comparable
(dataset, data sizes, split, network, initialiser, weight seed, epochs). Each sweep keeps its own
dense reference; comparisons judge only the sparsity range both fronts cover, and say they cannot
judge the seed-to-seed spread with fewer than 3 seeds.

Options:
  --out DIR            where the combined report goes (with one run directory: a copy of its report)
  --at-accuracy LIST   accuracy levels of the "sparsity at accuracy >= X" table: a value below 1 is a
                       fraction (0.95), one above 1 a percentage (95, up to 100); 1 is refused (1% or
                       100%?); default: 1, 2 and 5 points below the most accurate configuration point,
                       and below the dense reference where a front reaches that
  -h, --help           this text`;

/**
 * Parses `--at-accuracy 0.9,95,...` into fractions: a value below 1 is a fraction, one above 1 (to 100) a
 * percentage; 1 itself (1.0, 1.00) is refused: it could be either (it was taken as 100%).
 */
export function parseAccuracyLevels(text: string): number[] {
  return text.split(",").map((part) => {
    // decimal only: Number() would also take 0x5f, 1e1 and Infinity
    const v = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(part.trim()) ? Number(part.trim()) : NaN;
    if (v === 1) {
      throw new TicketsweepError(
        `--at-accuracy: '${printable(part, 40)}' could be a fraction (100%) or a percentage (1%): give 100 or 0.01`,
      );
    }
    if (!(v > 0 && v <= 100)) {
      throw new TicketsweepError(`--at-accuracy: '${printable(part, 40)}' is not an accuracy (expected 0.95 or 95)`);
    }
    return v > 1 ? v / 100 : v;
  });
}

/**
 * The report data of a run directory. Lines of its results.jsonl that are not outcomes of its plan are set
 * aside (under the run directory's lock) and named on stderr; while its coordinator runs, they are only named.
 */
async function loadRun(dir: string): Promise<ReportData> {
  const manifest = await readManifest(dir); // a TicketsweepError of one line when sweep.json is missing or bad
  let lock: RunLock | null = null;
  try {
    lock = await acquireRunLock(dir, logLine);
  } catch (e) {
    if (!(e instanceof TicketsweepError)) throw e; // held by its running coordinator: only read
  }
  try {
    const log = await ResultLog.open(dir, { planned: manifest.trials, readOnly: !lock });
    for (const s of log.setAside) console.error(shown(`${dir}/${setAsideNotice(s, !lock)}`));
    return reportDataOf(manifest, log.each()); // one result at a time: a large sweep's are never all parsed at once
  } finally {
    await lock?.release();
  }
}

function summary(d: ReportData, atAccuracy: number[] | undefined): string {
  const a = analyse(d, { atAccuracy });
  return `## ${d.name} (${d.sweep_id})\n\n${d.counts.done} done, ${d.counts.failed} failed, ${d.counts.pending} pending.\n\n` +
    `${configFrontTables(d, a)}\n\n${frontTables(d)}\n\n${analysisTables(a)}\n`;
}

/** `deno task report`. */
export async function reportMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    out: { type: "string" },
    "at-accuracy": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, REPORT_USAGE);
  if (positionals.length === 0) throw new TicketsweepError(`give at least one run directory\n\n${REPORT_USAGE}`);
  const atAccuracy = typeof values["at-accuracy"] === "string" ? parseAccuracyLevels(values["at-accuracy"]) : undefined;
  const dirs = positionals.map((p) => p.replace(/\/+$/, ""));
  const runs: ReportData[] = [];
  for (const dir of dirs) runs.push(await loadRun(dir));
  // a comparison starts with what differs between the sweeps, and whether their fronts are comparable
  const labels = sweepLabels(runs);
  const settings = runs.flatMap((d, i) => d.settings.map((s) => ({ ...s, sweep: labels[i]! })));
  if (runs.length > 1) console.log(settingsSection({ settings }));
  for (const [i, dir] of dirs.entries()) {
    const d = runs[i]!;
    if (positionals.length === 1) console.log(summary(d, atAccuracy));
    const before = await reportedOutcomes(dir), outcomes = d.counts.done + d.counts.failed;
    if (before !== null && before > outcomes) {
      // a report never overwrites a more complete one
      console.log(`kept the report in ${shownPath(dir)}: it records ${before} outcomes, results.jsonl ${outcomes}\n`);
      continue;
    }
    await writeReportFiles(dir, d, { atAccuracy });
    console.log(`wrote ${REPORT_FILES.map((f) => shownPath(`${dir}/${f}`)).join(", ")}\n`);
  }
  const out = typeof values.out === "string" ? values.out : positionals.length > 1 ? "runs/comparison" : undefined;
  if (out) {
    const combined = combineReports(runs);
    await writeReportFiles(out, combined, { atAccuracy });
    if (positionals.length > 1) console.log(summary(combined, atAccuracy));
    console.log(`wrote ${REPORT_FILES.map((f) => shownPath(`${out}/${f}`)).join(", ")}`);
  }
  const warning = runs.length > 1 ? comparabilityWarning(settings) : null;
  if (warning) console.log(`\n${warning} (The settings that differ are listed at the top.)`);
  return 0;
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => reportMain(Deno.args));
}
