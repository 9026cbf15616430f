export { resumeSweep, runSweep, type SweepOptions, type SweepOutcome, trialMessage } from "./sweep.ts";
export { ResultLog } from "./record.ts";
export { readManifest, type SweepManifest, writeReports } from "./run_dir.ts";
