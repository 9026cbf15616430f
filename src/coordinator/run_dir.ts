import { z } from "zod";
import { TicketsweepError } from "../util/errors.ts";
import { buildReportData, type ReportData, writeReportFiles } from "../report/mod.ts";
import { plannedTrials, sweepIdOf, type Trial, trialCount, trialIdOf } from "../spec/expand.ts";
import { type SweepSpec, SweepSpecSchema, TrialConfigSchema } from "../spec/schema.ts";
import type { RecordedResult } from "./record.ts";
import { ProposalLog } from "./search.ts";

/**
 * What `runs/<sweep>/sweep.json` holds: enough to resume or report without the original file. An adaptive
 * sweep's file holds no trials; {@link readManifest} returns them from `proposals.jsonl`. Version 2 (written
 * since 100,000-trial sweeps) keeps each trial's id, parameters and seed only, one line a trial: its
 * configuration is the stored spec's, resolved when the trial is published; version 1 (every trial with its
 * configuration) is still read.
 */
export interface SweepManifest {
  format: "ticketsweep-sweep";
  version: 1 | 2;
  sweep_id: string;
  name: string;
  spec_file: string;
  spec_text: string;
  spec: SweepSpec;
  trials: Trial[];
  created_at: string;
}

/**
 * Writes `sweep.json` (version 2: the trials without their configurations, one line each) through a temporary
 * file renamed into place, a thousand trials a write, so a large plan is never one string in memory.
 */
export async function writeManifest(dir: string, m: SweepManifest): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/spec.yaml`, m.spec_text);
  const { trials, ...head } = m;
  const text = JSON.stringify({ ...head, version: 2, trials: [] }, null, 2);
  const cut = text.lastIndexOf('"trials": []');
  const path = `${dir}/sweep.json`, tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const enc = new TextEncoder();
    const write = async (s: string) => {
      const data = enc.encode(s);
      for (let off = 0; off < data.length;) off += await f.write(data.subarray(off));
    };
    await write(text.slice(0, cut) + '"trials": [');
    for (let i = 0; i < trials.length; i += 1000) {
      const lines = trials.slice(i, i + 1000).map((t) =>
        JSON.stringify({ id: t.id, sweepId: t.sweepId, params: t.params, seed: t.seed })
      );
      await write((i ? ",\n    " : "\n    ") + lines.join(",\n    "));
    }
    await write((trials.length ? "\n  " : "") + text.slice(cut + '"trials": ['.length) + "\n");
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

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
export async function readManifest(dir: string): Promise<SweepManifest> {
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
  if (head.version !== 1 && head.version !== 2) {
    throw new TicketsweepError(
      `${file}: version: this ticketsweep reads versions 1 and 2, found ${JSON.stringify(head.version)}; ` +
        "use the ticketsweep that wrote it",
    );
  }
  const parsed = SweepManifestSchema.safeParse(raw);
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
  const wrong = planMismatch(raw as SweepManifest, parsed.data.spec);
  if (wrong) throw new TicketsweepError(`${file}: ${wrong}; ${fix}`);
  const m = raw as SweepManifest;
  if (parsed.data.spec.search.strategy === "adaptive") {
    // an adaptive sweep's trials are its proposals (read only here: the coordinator sets bad lines aside)
    m.trials = (await ProposalLog.open(dir, parsed.data.spec, m.sweep_id, { readOnly: true })).trials();
  } else {
    // a trial written without its configuration (version 2) resolves it from the stored spec when asked
    const planned = plannedTrials(parsed.data.spec, m.sweep_id, m.trials);
    m.trials = m.trials.map((t, i) => (t.config ? t : planned[i]!));
  }
  return m;
}

/**
 * What makes a valid `sweep.json` not its spec's plan (an edit: trials removed, added or altered), or undefined.
 * The ids are hashes of the stored spec, the parameters and the seed; the trials are counted from the spec,
 * not expanded (a large sweep expands slowly).
 */
function planMismatch(m: SweepManifest, spec: SweepSpec): string | undefined {
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
