import { z } from "zod";
import { TicketsweepError } from "../util/errors.ts";
import { buildReportData, type ReportData, writeReportFiles } from "../report/mod.ts";
import { fmtCount } from "../spec/schema.ts";
import { plannedTrials, sweepIdOf, type Trial, trialCount, trialIdOf } from "../spec/expand.ts";
import { Plan, planOf, type TrialList } from "../spec/plan.ts";
import { type SweepSpec, SweepSpecSchema, TrialConfigSchema } from "../spec/schema.ts";
import type { RecordedResult } from "./record.ts";
import { ProposalLog } from "./search.ts";

/**
 * What `runs/<sweep>/sweep.json` holds: enough to resume or report without the original file. Version 3 (written
 * since the plan is read by index) holds no trial list: the plan is the stored spec's ({@link Plan.of}), and the
 * file records its size and fingerprint (a hash over every id in order), so a ticketsweep that expands the spec
 * differently is found at once. An adaptive sweep's plan is its proposals (`proposals.jsonl`; size 0 here).
 * Version 2 (each trial's id, parameters and seed, one line a trial) and version 1 (every trial with its
 * configuration) are still read.
 */
export interface SweepManifest {
  format: "ticketsweep-sweep";
  version: 1 | 2 | 3;
  sweep_id: string;
  name: string;
  spec_file: string;
  spec_text: string;
  spec: SweepSpec;
  /** The plan's trials: a {@link Plan} (as {@link readManifest} returns it), or a list. */
  trials: TrialList;
  created_at: string;
}

/** A manifest as {@link readManifest} returns it: its trials a {@link Plan} (read by index, found by id). */
export type LoadedManifest = Omit<SweepManifest, "trials"> & { trials: Plan };

/** What version 3 records of the plan: its size and fingerprint ({@link Plan.fingerprint}). */
interface PlanRecord {
  trials: number;
  fingerprint: string;
}

/**
 * Writes `sweep.json` (version 3: the spec and the plan's size and fingerprint, no trial list) and `spec.yaml`,
 * each through a temporary file renamed into place.
 */
export async function writeManifest(dir: string, m: SweepManifest): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/spec.yaml`, m.spec_text);
  const { trials, ...head } = m;
  const plan = planOf(m.spec, m.sweep_id, trials);
  const record: PlanRecord = { trials: plan.size, fingerprint: plan.fingerprint };
  const path = `${dir}/sweep.json`, tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify({ ...head, version: 3, plan: record }, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/** `sweep.json` version 3: the plan's size and fingerprint instead of its trials. */
const SweepManifestV3Schema = z.object({
  format: z.literal("ticketsweep-sweep"),
  version: z.literal(3),
  sweep_id: z.string().min(1),
  name: z.string().min(1),
  spec_file: z.string(),
  spec_text: z.string(),
  spec: SweepSpecSchema,
  plan: z.object({
    trials: z.number().int().min(0),
    fingerprint: z.string().regex(/^[0-9a-f]{16}$/, "expected 16 hex digits"),
  }).strict(),
  created_at: z.string(),
}).strict();

/** `sweep.json`: version 1 (every trial with its configuration) or 2 (without; a configuration given is kept). */
export const SweepManifestSchema = z.object({
  format: z.literal("ticketsweep-sweep"),
  version: z.union([z.literal(1), z.literal(2)]),
  sweep_id: z.string().min(1),
  name: z.string().min(1),
  spec_file: z.string(),
  spec_text: z.string(),
  spec: SweepSpecSchema,
  trials: z.array(
    z.object({
      id: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/),
      sweepId: z.string(),
      params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
      seed: z.number().int(),
      config: TrialConfigSchema.optional(),
    }).strict(),
  ),
  created_at: z.string(),
}).strict().superRefine((m, ctx) => {
  const seen = new Set<string>();
  m.trials.forEach((t, i) => {
    if (t.sweepId !== m.sweep_id) {
      ctx.addIssue({ code: "custom", path: ["trials", i, "sweepId"], message: `not this sweep's id ${m.sweep_id}` });
    }
    if (seen.has(t.id)) ctx.addIssue({ code: "custom", path: ["trials", i, "id"], message: `trial ${t.id} twice` });
    seen.add(t.id);
  });
});

/**
 * Reads and validates `sweep.json`; the plan is returned as written (validation only).
 * @throws {TicketsweepError} one line naming the file, the field and the fix.
 */
export async function readManifest(dir: string): Promise<LoadedManifest> {
  const file = `${dir}/sweep.json`;
  const parent = dir.includes("/") ? dir.replace(/\/[^/]*$/, "") : ".";
  const specCopy = await Deno.stat(`${dir}/spec.yaml`).then(() => `${dir}/spec.yaml`, () => "SPEC.yaml");
  const fix = `rewrite it by running its spec again (deno task sweep ${specCopy} --runs ${parent}; recorded ` +
    "results are kept)";
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new TicketsweepError(`${file} not found: ${dir} is not a sweep run directory (deno task sweep makes them)`);
    }
    throw new TicketsweepError(`${file}: cannot read it (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TicketsweepError(`${file}: not JSON (${(e as Error).message}); ${fix}`);
  }
  const head = (raw ?? {}) as { format?: unknown; version?: unknown };
  if (typeof raw !== "object" || raw === null || head.format !== "ticketsweep-sweep") {
    throw new TicketsweepError(
      `${file}: format: expected "ticketsweep-sweep", found ${JSON.stringify(head.format)}; ` +
        `not a sweep plan of ticketsweep`,
    );
  }
  if (head.version !== 1 && head.version !== 2 && head.version !== 3) {
    throw new TicketsweepError(
      `${file}: version: this ticketsweep reads versions 1 to 3, found ${JSON.stringify(head.version)}; ` +
        "use the ticketsweep that wrote it",
    );
  }
  const parsed = head.version === 3 ? SweepManifestV3Schema.safeParse(raw) : SweepManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const missing: string[] = [], wrong: string[] = [];
    for (const i of parsed.error.issues) {
      const field = i.path.join(".") || "(root)";
      if (i.code === "invalid_type" && i.received === "undefined") missing.push(field);
      else wrong.push(`${field}: ${i.message}`);
    }
    const problems = [...wrong.slice(0, 1), ...(missing.length ? [`missing ${missing.join(", ")}`] : [])];
    const more = wrong.length > 1 ? ` (and ${wrong.length - 1} more problems)` : "";
    throw new TicketsweepError(`${file}: ${problems.join("; ")}${more}; ${fix}`);
  }
  const spec = parsed.data.spec;
  const adaptive = spec.search.strategy === "adaptive";
  if ("plan" in parsed.data) {
    // version 3: the plan is the stored spec's, made again here and checked against its size and fingerprint
    const { plan: recorded, ...head } = parsed.data;
    const stored = (raw as { spec: SweepSpec }).spec;
    const sweepId = sweepIdOf(stored); // the spec as stored: a newer default must not change an old run's ids
    if (head.sweep_id !== sweepId) {
      throw new TicketsweepError(`${file}: sweep_id: ${head.sweep_id} is not the id of its spec (${sweepId}); ${fix}`);
    }
    const plan = adaptive ? undefined : Plan.of(spec, sweepId);
    if (
      adaptive ? recorded.trials !== 0 : recorded.trials !== plan!.size || recorded.fingerprint !== plan!.fingerprint
    ) {
      throw new TicketsweepError(
        `${file}: plan: it records ${fmtCount(recorded.trials)} trials (fingerprint ${recorded.fingerprint}), but ` +
          `its spec expands to ${
            adaptive ? "none up front (adaptive search)" : `${fmtCount(plan!.size)} (fingerprint ${plan!.fingerprint})`
          } ` +
          `with this ticketsweep: use the ticketsweep that wrote it, or ${fix}`,
      );
    }
    const trials = plan ?? await proposedPlan(dir, spec, head.sweep_id);
    return { ...head, spec: stored, trials };
  }
  const wrong = planMismatch(raw as SweepManifest & { trials: Trial[] }, spec);
  if (wrong) throw new TicketsweepError(`${file}: ${wrong}; ${fix}`);
  const m = raw as SweepManifest & { trials: Trial[] };
  if (adaptive) return { ...m, trials: await proposedPlan(dir, spec, m.sweep_id) };
  if (m.version === 2) {
    // the trials without their configurations: the stored spec's plan, when it lists the same ids in the same order
    const plan = Plan.of(spec, m.sweep_id), listed = Plan.fromList(spec, m.sweep_id, m.trials);
    if (plan.size === listed.size && plan.fingerprint === listed.fingerprint) return { ...m, trials: plan };
  }
  // a trial written without its configuration (version 2) resolves it from the stored spec when asked
  const planned = plannedTrials(spec, m.sweep_id, m.trials);
  return { ...m, trials: Plan.fromList(spec, m.sweep_id, m.trials.map((t, i) => (t.config ? t : planned[i]!))) };
}

/** An adaptive sweep's plan: its proposals (read only here: the coordinator sets bad lines aside). */
async function proposedPlan(dir: string, spec: SweepSpec, sweepId: string): Promise<Plan> {
  return Plan.fromList(spec, sweepId, (await ProposalLog.open(dir, spec, sweepId, { readOnly: true })).trials());
}

/**
 * What makes a valid `sweep.json` not its spec's plan (an edit: trials removed, added or altered), or undefined.
 * The ids are hashes of the stored spec, the parameters and the seed; the trials are counted from the spec,
 * not expanded (a large sweep expands slowly).
 */
function planMismatch(m: SweepManifest & { trials: Trial[] }, spec: SweepSpec): string | undefined {
  const sweepId = sweepIdOf(m.spec); // the spec as stored: a newer default must not change an old run's id
  if (m.sweep_id !== sweepId) return `sweep_id: ${m.sweep_id} is not the id of its spec (${sweepId})`;
  // each trial's sweepId and the ids' uniqueness are checked by the schema
  for (const [i, t] of m.trials.entries()) {
    const id = trialIdOf(sweepId, t.params, t.seed);
    if (t.id !== id) return `trials.${i}.id: ${t.id} is not the id of its parameters and seed (${id})`;
  }
  const { trials: planned, detail } = trialCount(spec);
  const n = m.trials.length;
  if (spec.search.strategy === "adaptive") {
    // its trials are proposed while it runs and kept in proposals.jsonl (checked there against the budget)
    return n === 0 ? undefined : `trials: ${n} trials, but an adaptive sweep plans none up front (${detail})`;
  }
  // random search drops a draw that repeats an earlier one (with every seed): the count is an upper bound
  const fits = spec.search.strategy === "grid"
    ? n === planned
    : n <= planned && n >= spec.seeds.length && n % spec.seeds.length === 0;
  if (!fits) {
    return `trials: ${n} trials, but its spec plans ${spec.search.strategy === "grid" ? "" : "at most "}` +
      `${planned} (${detail})`;
  }
  return undefined;
}

/** The report data of a run directory's plan and recorded results (read once, in recording order). */
export function reportDataOf(m: SweepManifest, results: Iterable<RecordedResult>): ReportData {
  return buildReportData(m.sweep_id, m.name, m.trials, results, m.spec_text);
}

/**
 * How many outcomes (done + failed) the report already in `dir` records (its `pareto.json`), or null when there
 * is none. A `pareto.json` written before it carried `counts` yields its done trials.
 */
export async function reportedOutcomes(dir: string): Promise<number | null> {
  let doc: { counts?: { done?: unknown; failed?: unknown; stopped?: unknown }; trials?: unknown };
  try {
    doc = JSON.parse(await Deno.readTextFile(`${dir}/pareto.json`));
  } catch {
    return null; // none, or unreadable: nothing to protect
  }
  const { done, failed, stopped } = doc?.counts ?? {};
  if (typeof done === "number" && typeof failed === "number") {
    return done + failed + (typeof stopped === "number" ? stopped : 0);
  }
  return Array.isArray(doc?.trials) ? doc.trials.length : null;
}

/**
 * Writes the reports of a run directory (`report.html`, `report.md`, `pareto.json`, `fronts.json`,
 * `trials.csv`) unless the report already there records more outcomes (a report never overwrites a more
 * complete one; `log` says so); returns the report data and whether the files were written.
 */
export async function writeReports(
  dir: string,
  m: SweepManifest,
  results: Iterable<RecordedResult>,
  log?: (line: string) => void,
): Promise<ReportData & { written: boolean }> {
  const data = reportDataOf(m, results);
  const outcomes = data.counts.done + data.counts.failed + (data.counts.stopped ?? 0);
  const before = await reportedOutcomes(dir);
  if (before !== null && before > outcomes) {
    log?.(
      `kept the report in ${dir}: it records ${before} outcomes, these results ${outcomes} (a report never ` +
        "overwrites a more complete one)",
    );
    return Object.assign(data, { written: false });
  }
  await writeReportFiles(dir, data);
  return Object.assign(data, { written: true });
}
