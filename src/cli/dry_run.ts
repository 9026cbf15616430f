import { readRetryRounds, type RecordedResult, REJECTED_FILE, ResultLog } from "../coordinator/record.ts";
import { inspectBrokerFile } from "../coordinator/broker_file.ts";
import { readManifest } from "../coordinator/run_dir.ts";
import { ProposalLog } from "../coordinator/search.ts";
import { inspectRunLock, LOCK_FILE, lockHeldMessage } from "../coordinator/run_lock.ts";
import { TicketsweepError } from "../util/errors.ts";
import { describeParams, sweepIdOf, trialCount } from "../spec/expand.ts";
import { Plan } from "../spec/plan.ts";
import type { SweepSpec } from "../spec/schema.ts";
import { checkTrialLimits, formatBytes, freeMemory, resolveLimits, trialCost } from "../worker/limits.ts";

/** How many trials `--dry-run` lists one per line before it summarises the rest. */
const LISTED = 20;

/** 1.2e15 → "1.2 PFLOP". */
function flops(n: number): string {
  const units: [number, string][] = [[1e18, "EFLOP"], [1e15, "PFLOP"], [1e12, "TFLOP"], [1e9, "GFLOP"], [1e6, "MFLOP"]];
  for (const [v, u] of units) if (n >= v) return `${(n / v).toPrecision(3)} ${u}`;
  return `${Math.round(n)} FLOP`;
}

const count = (n: number) => n.toLocaleString("en-US");
const bytes = (b: number) => (b < 1e6 ? `${Math.ceil(b / 1e3)} kB` : formatBytes(b));

/**
 * `deno task sweep SPEC --dry-run`: what the spec expands to (its trials), what they cost (training steps,
 * trial-epochs, weights, an estimate of the multiply-adds and each trial's peak memory), and the problems found
 * (trials this machine's workers would refuse; what a run would find wrong in the run directory: lines of
 * results.jsonl it sets aside, files it cannot read), without starting or changing anything.
 * @returns the exit code: 0, or 1 when a problem was found.
 */
export async function dryRun(
  spec: SweepSpec,
  runDir: string,
  out: (line: string) => void,
  resumed = false,
): Promise<number> {
  const sweepId = sweepIdOf(spec);
  const { trials: drawn, detail } = trialCount(spec);
  const plan = Plan.of(spec); // read by index: no trial object kept
  // a point drawn twice (random search from value lists) or rounded to an earlier one is one trial
  const n = spec.search.strategy === "adaptive" ? drawn : plan.size;
  const dropped = drawn > n ? `; ${count(drawn - n)} repeated point${drawn - n === 1 ? "" : "s"} dropped` : "";
  out(
    `${sweepId} (${spec.name}): ${count(n)} trial${n === 1 ? "" : "s"} (${detail}${dropped}); run directory ${runDir}`,
  );
  if (spec.search.strategy === "adaptive") {
    out(`adaptive search proposes its trials while it runs: up to ${count(n)}, nothing is planned ahead`);
  }
  for (let i = 0; i < Math.min(LISTED, plan.size); i++) {
    const t = plan.at(i);
    out(`  ${t.id}  ${t.config.method.name}  ${describeParams(t.params, t.seed)}`);
  }
  if (plan.size > LISTED) out(`  ... and ${count(plan.size - LISTED)} more`);
  // compute: every planned trial's cost from its config alone (nothing is built)
  let steps = 0, epochs = 0, madds = 0, peak = 0, maxWeights = 0;
  const free = freeMemory(), limits = resolveLimits();
  const refused = new Map<string, string[]>();
  for (const t of plan) {
    const c = trialCost(t.config);
    steps += c.steps;
    epochs += t.config.training.epochs;
    // forward, weight gradient and input gradient: three products of batch × weights per step
    madds += 3 * c.weights * Math.min(t.config.training.batch_size, c.train) * c.steps;
    peak = Math.max(peak, c.bytes);
    maxWeights = Math.max(maxWeights, c.weights);
    const why = checkTrialLimits(t.config, limits, free);
    if (why) refused.set(why, [...(refused.get(why) ?? []), t.id]);
  }
  if (plan.size) {
    out(
      `compute: ${count(steps)} training steps, ${count(epochs)} trial-epochs, about ${flops(2 * madds)} ` +
        `(dense products; up to ${count(maxWeights)} weights a trial); peak memory of a trial about ` +
        `${bytes(peak)} (this machine has ${formatBytes(free)} free)`,
    );
  }
  const problems: string[] = [];
  for (const [why, ids] of refused) {
    problems.push(
      `${ids.length} trial${ids.length === 1 ? "" : "s"} (${ids.slice(0, 3).join(", ")}${
        ids.length > 3 ? ", ..." : ""
      }) would be ${why} (a worker with more memory or higher --max-* limits may take them)`,
    );
  }
  const notDir = await notADirectory(runDir);
  if (notDir) problems.push(notDir);
  else problems.push(...await runDirProblems(runDir, resumed));
  let recorded: RecordedResult[] = [];
  if (!notDir) {
    try {
      // adaptive search plans nothing ahead: its trials are its proposals, as the coordinator reads them
      const planned = spec.search.strategy === "adaptive"
        ? (await ProposalLog.open(runDir, spec, sweepId, { readOnly: true })).trials().map((t) => t.id)
        : plan;
      const log = await ResultLog.open(runDir, { planned, readOnly: true });
      recorded = log.all();
      for (const s of log.setAside) {
        problems.push(
          `${runDir}/results.jsonl line ${s.line}: ${s.reason}; a run sets it aside in ${REJECTED_FILE}` +
            (s.runsAgain ? " and runs its trial again" : ""),
        );
      }
    } catch (e) {
      if (!(e instanceof TicketsweepError)) throw e;
      problems.push(e.message);
    }
  }
  if (recorded.length) {
    const failed = recorded.filter((r) => r.status === "failed").length;
    out(
      `${runDir} already records ${count(recorded.length)} of them (${count(failed)} failed): a run ` +
        (spec.search.strategy === "adaptive"
          ? "proposes more while its budget lasts"
          : `publishes the other ${count(Math.max(0, plan.size - recorded.length))}`) +
        (failed ? `; --retry-failed would run the failed ones again` : ""),
    );
  }
  out(problems.length ? `problems:\n${problems.map((p) => `  ${p}`).join("\n")}` : "problems: none found");
  out("dry run: nothing was started or written");
  return problems.length ? 1 : 0;
}

/**
 * One line when the run directory, or the directory it is in (`--runs`), is a file: a run could not create
 * it. Undefined otherwise.
 */
export async function notADirectory(runDir: string): Promise<string | undefined> {
  const parent = runDir.includes("/") ? runDir.slice(0, runDir.lastIndexOf("/")) || "/" : ".";
  const fix = "move it away, or give another --runs DIR";
  for (const p of [parent, runDir]) {
    try {
      if (!(await Deno.stat(p)).isDirectory) return `${p} is a file, not a directory: ${fix}`;
    } catch (e) {
      if (e instanceof Deno.errors.NotADirectory) return `${p}: a directory on this path is a file: ${fix}`;
    }
  }
  return undefined;
}

/**
 * One line when `results.jsonl` is a link to a file that does not exist: a run would append through it, fail at
 * every result ('No such file') and record none. Undefined otherwise.
 */
export async function brokenResultsLink(runDir: string): Promise<string | undefined> {
  const results = `${runDir}/results.jsonl`;
  if (!(await Deno.lstat(results).catch(() => undefined))?.isSymlink || (await Deno.stat(results).catch(() => 0))) {
    return undefined;
  }
  const to = await Deno.readLink(results).catch(() => "?");
  return `${results} is a link to ${to}, which does not exist: a run could record no result; fix or remove it`;
}

/**
 * What a run would find wrong in an existing run directory, read only: a plan (sweep.json) it cannot read, a retry
 * record it would refuse, a broker file it cannot use, a coordinator that holds the directory now.
 */
async function runDirProblems(runDir: string, resumed: boolean): Promise<string[]> {
  const problems: string[] = [];
  const found = async (f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      if (!(e instanceof TicketsweepError)) throw e;
      problems.push(e.message);
    }
  };
  // a run of the spec writes a new plan over an unreadable one; with --resume it is read before this
  const plan = await Deno.stat(`${runDir}/sweep.json`).then(() => true, () => false);
  if (plan && !resumed) await found(() => readManifest(runDir));
  await found(() => readRetryRounds(runDir));
  const link = await brokenResultsLink(runDir);
  if (link) problems.push(link);
  const broker = await inspectBrokerFile(runDir);
  if ("problem" in broker && broker.problem) problems.push(broker.problem);
  await found(async () => {
    const lock = await inspectRunLock(runDir);
    if (lock.kind === "live") problems.push(lockHeldMessage(runDir, lock.info, lock.futureMs));
    if (lock.kind === "corrupt") problems.push(`${runDir}/${LOCK_FILE}: unreadable (${lock.why}); a run takes it over`);
  });
  return problems;
}
