// `deno task bench --search`: grid vs random vs adaptive search on LeNet-300-100 MNIST gates (issue 12, "How it is
// measured"). Each strategy gets a 24-trial budget (3 epochs a trial; adaptive-epochs: 72 trial-epochs) and runs
// over replicates r = 0, 1, 2 (`--replicates N`: 0..N-1; `--strategies a,b`: only those): the
// frozen network's weight_seed is r for every strategy (the grid cannot vary otherwise), and random and adaptive
// also take search.seed r. Everything runs in this process (in-memory transport, one worker), one trial at a time.
import { MemoryTransport } from "../src/broker/memory.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { hypervolume } from "../src/pareto/hypervolume.ts";
import { nonDominated } from "../src/pareto/front.ts";
import { parseSpec } from "../src/spec/load.ts";
import { runWorker } from "../src/worker/worker.ts";
import { resolveTrialConfig } from "../src/spec/expand.ts";
import { runTrial } from "../src/train/trial.ts";
import { selectEngine } from "../src/engine/select.ts";
import type { Engine } from "../src/engine/engine.ts";

/**
 * `adaptive` runs with its default early stopping; `adaptive-full` with `early_stop: false` (every trial runs all);
 * `adaptive-epochs` with early stopping and a budget of 72 trial-epochs (`budget_epochs`) instead of 24 trials.
 */
const STRATEGIES = [
  "grid",
  "random",
  "adaptive",
  "adaptive-full",
  "adaptive-epochs",
  "optuna-tpe",
  "optuna-nsga2",
] as const;
type Strategy = typeof STRATEGIES[number];

/** A Python with Optuna (`python3`, else Debian's `/usr/bin/python3`), or null when there is none. */
async function optunaPython(): Promise<string | null> {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(py, { args: ["-c", "import optuna"], stdout: "null", stderr: "null" })
        .output();
      if (out.success) return py;
    } catch {
      // not installed
    }
  }
  return null;
}

let engine: Promise<Engine> | undefined;

/** The lines of a text stream, as they come. */
async function* linesOf(text: ReadableStream<string>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of text) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts.filter((l) => l.trim());
  }
  if (rest.trim()) yield rest;
}

/**
 * Optuna's sampler (bench/optuna_ask_tell.py) proposes each point from the objectives of the trials so far (its
 * own ticket's sparsity and validation accuracy, both maximised), one trial at a time; each trial is trained here
 * as a worker would (same configuration, same engine choice) and its tickets (own and cuts) scored like the others.
 */
async function optunaResults(
  py: string,
  sampler: string,
  r: number,
  text: string,
  lr: [number, number],
): Promise<RecordedResult[]> {
  const spec = parseSpec(text);
  engine ??= selectEngine("auto", { threads: 1 }).then((c) => c.engine);
  const e = await engine;
  const child = new Deno.Command(py, {
    args: [new URL("./optuna_ask_tell.py", import.meta.url).pathname, sampler, String(r), "24", ...lr.map(String)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = linesOf(child.stdout.pipeThrough(new TextDecoderStream()));
  const writer = child.stdin.getWriter();
  const out: RecordedResult[] = [];
  for await (const line of lines) {
    const asked = JSON.parse(line) as { lambda: number; lr: number };
    const metrics = await runTrial(resolveTrialConfig(spec, asked, 0), e);
    out.push({ trial_id: `optuna-${out.length}`, status: "done", metrics } as unknown as RecordedResult);
    const answer = { sparsity: metrics.sparsity, val_accuracy: metrics.val_accuracy ?? metrics.accuracy };
    await writer.write(new TextEncoder().encode(JSON.stringify(answer) + "\n"));
  }
  await writer.close();
  const st = await child.status;
  if (!st.success) throw new Error(`bench/optuna_ask_tell.py ${sampler} ${r} exited with ${st.code}`);
  return out;
}

/**
 * The adaptive search's `search.parallel` and `search.initial` when set (`--parallel N`, `--initial N`), and the
 * problem when not the default (`--dataset NAME`: mnist or fashion-mnist; `--lr MIN,MAX`: lr's log range), for
 * every strategy.
 */
export interface AdaptiveOptions {
  parallel?: number;
  initial?: number;
  dataset?: "mnist" | "fashion-mnist";
  lr?: [number, number];
}

function specText(strategy: Strategy, r: number, epochs: number, opts: AdaptiveOptions = {}): string {
  const extra = (opts.parallel ? `, parallel: ${opts.parallel}` : "") +
    (opts.initial ? `, initial: ${opts.initial}` : "");
  const lambda = strategy === "grid"
    ? "{ min: 1.0e-7, max: 1.0e-4, scale: log, count: 6 }"
    : "{ min: 1.0e-7, max: 1.0e-4, scale: log }";
  const [lrMin, lrMax] = opts.lr ?? [0.01, 0.1];
  const lr = `{ min: ${lrMin}, max: ${lrMax}, scale: log${strategy === "grid" ? ", count: 4" : ""} }`;
  const search = strategy === "grid"
    ? "{ strategy: grid }"
    : strategy === "random"
    ? `{ strategy: random, samples: 24, seed: ${r} }`
    : strategy === "adaptive-epochs"
    ? `{ strategy: adaptive, budget_epochs: ${24 * epochs}, seed: ${r}${extra} }`
    : `{ strategy: adaptive, budget: 24, seed: ${r}${extra} }${
      strategy === "adaptive-full" ? "\nearly_stop: false" : ""
    }`;
  return `version: 1
name: bench-search-${strategy}-${r}
dataset: { name: ${opts.dataset ?? "mnist"}, train: 8000, test: 2000, validation: auto }
model: { architecture: mlp, widths: [300, 100], init: signed_constant, weight_seed: ${r} }
method: { name: gates, sigma: 0.5, mu_init: 0.5, penalty: sum }
parameters:
  lambda: ${lambda}
  lr: ${lr}
search: ${search}
seeds: [0]
training: { epochs: ${epochs}, batch_size: 128, optimizer: adam }
`;
}

/** A ticket: sparsity, validation and test accuracy, and whether it is its trial's own. */
interface Ticket {
  x: number;
  val: number;
  test: number;
  own: boolean;
}

function ticketsOf(r: RecordedResult): Ticket[] {
  const m = r.metrics;
  if (r.status !== "done" || !m) return [];
  const out = [{ x: m.sparsity, val: m.val_accuracy ?? m.accuracy, test: m.accuracy, own: true }];
  for (const c of m.cuts?.points ?? []) {
    out.push({ x: c.sparsity, val: c.val_accuracy ?? c.accuracy, test: c.accuracy, own: false });
  }
  return out;
}

const valHv = (t: Ticket[]) => hypervolume(t.map((p) => ({ x: p.x, y: p.val })));

/** The test hypervolume of the tickets the validation front chooses. */
function testHvOfChosen(t: Ticket[]): number {
  const nd = nonDominated(t.map((p) => ({ x: p.x, y: p.val })));
  return hypervolume(t.filter((_, i) => nd[i]).map((p) => ({ x: p.x, y: p.test })));
}

interface Run {
  strategy: Strategy;
  r: number;
  trials: number;
  trialEpochs: number;
  /** Validation hypervolume after each 4 trials' worth of trial-epochs (in recording order). */
  curve: number[];
  /** (cumulative trial-epochs, validation hypervolume) after each recorded trial. */
  steps: [number, number][];
  finalVal: number;
  finalTest: number;
  ownOnlyVal: number;
  ownOnlyTest: number;
  wallS: number;
}

export async function runOne(
  strategy: Strategy,
  r: number,
  epochs: number,
  runsDir: string,
  py: string | null = null,
  opts: AdaptiveOptions = {},
): Promise<Run> {
  if (strategy.startsWith("optuna-")) {
    const t0 = performance.now();
    const sampler = strategy.slice("optuna-".length);
    const results = await optunaResults(py!, sampler, r, specText("random", r, epochs, opts), opts.lr ?? [0.01, 0.1]);
    return score(strategy, r, epochs, results, (performance.now() - t0) / 1000);
  }
  const text = specText(strategy, r, epochs, opts);
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, signal: ac.signal, log: () => {} });
  const outcome = await runSweep({
    spec: parseSpec(text),
    specText: text,
    specFile: `${strategy}.yaml`,
    runsDir,
    transport,
    log: () => {},
  });
  ac.abort();
  await worker;
  await transport.close();
  const lines = (await Deno.readTextFile(`${outcome.runDir}/results.jsonl`)).split("\n").filter((l) => l.trim());
  return score(strategy, r, epochs, lines.map((l) => JSON.parse(l) as RecordedResult), outcome.wallS);
}

/** A strategy's run scored from its results in recording order. */
function score(strategy: Strategy, r: number, epochs: number, results: RecordedResult[], wallS: number): Run {
  const acc: Ticket[] = [];
  const steps: [number, number][] = [];
  let spent = 0;
  for (const res of results) {
    // a trial stopped early (adaptive search stops dominated trials by default) counts the epochs it trained
    spent += res.metrics?.stopped?.epochs ?? epochs;
    acc.push(...ticketsOf(res));
    steps.push([spent, valHv(acc)]);
  }
  const curve: number[] = [];
  for (let k = 4 * epochs; k <= 24 * epochs; k += 4 * epochs) {
    curve.push(steps.filter(([e]) => e <= k).at(-1)?.[1] ?? 0);
  }
  const own = acc.filter((t) => t.own);
  return {
    strategy,
    r,
    trials: results.length,
    trialEpochs: spent,
    curve,
    steps,
    finalVal: valHv(acc),
    finalTest: testHvOfChosen(acc),
    ownOnlyVal: valHv(own),
    ownOnlyTest: testHvOfChosen(own),
    wallS,
  };
}

const f4 = (x: number) => x.toFixed(4);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** The strategies a `--strategies a,b` list names, or one line saying which name is not one. */
export function strategiesOf(list: string | undefined): Strategy[] {
  if (list === undefined) return [...STRATEGIES];
  const names = list.split(",").map((x) => x.trim()).filter(Boolean);
  const bad = names.find((x) => !(STRATEGIES as readonly string[]).includes(x));
  if (bad !== undefined || names.length === 0) {
    throw new Error(`--strategies: expected a comma-separated list of ${STRATEGIES.join(", ")}, found '${list}'`);
  }
  return STRATEGIES.filter((x) => names.includes(x));
}

/**
 * Runs the strategies (all, or `only`) over replicates 0..replicates-1 and prints the tables. B needs grid and
 * random: without them the trial-epochs to 99% of B are not printed.
 */
export async function searchBench(
  epochs = 3,
  replicates = 3,
  only: readonly Strategy[] = STRATEGIES,
  opts: AdaptiveOptions = {},
): Promise<void> {
  const runsDir = await Deno.makeTempDir({ prefix: "ticketsweep-bench-search-" });
  const runs: Run[] = [];
  const py = await optunaPython();
  if (!py) console.log("  optuna-*: skipped (no python3 with Optuna; Debian: apt install python3-optuna)");
  try {
    for (let r = 0; r < replicates; r++) {
      for (const s of only) {
        if (s.startsWith("optuna-") && !py) continue;
        const run = await runOne(s, r, epochs, runsDir, py, opts);
        runs.push(run);
        console.log(
          `  ${s} r=${r}: ${run.trials} trials, ${run.trialEpochs} trial-epochs, validation HV ${f4(run.finalVal)}, ${
            run.wallS.toFixed(0)
          } s`,
        );
      }
    }
  } finally {
    await Deno.remove(runsDir, { recursive: true }).catch(() => {});
  }
  const B = new Map<number, number>();
  for (let r = 0; r < replicates; r++) {
    const base = runs.filter((x) => x.r === r && (x.strategy === "grid" || x.strategy === "random"));
    B.set(r, base.length === 2 ? Math.max(...base.map((x) => x.finalVal)) : NaN);
  }
  const reach = (run: Run) =>
    Number.isNaN(B.get(run.r)!)
      ? "no B (grid and random not run)"
      : run.steps.find(([, hv]) => hv >= 0.99 * B.get(run.r)!)?.[0];
  const cols = Array.from({ length: 6 }, (_, i) => `HV@${4 * (i + 1)}`);
  console.log(
    `\n## Search: grid 6×4 vs random vs adaptive, 24 trials × ${epochs} epochs, LeNet-300-100 ` +
      `${opts.dataset === "fashion-mnist" ? "Fashion-MNIST" : "MNIST"} gates, lambda 1e-7..1e-4, ` +
      `lr ${(opts.lr ?? [0.01, 0.1]).join("..")}\n`,
  );
  console.log(
    `| strategy | r | trial-epochs | ${cols.join(" | ")} | test HV (chosen) | trial-epochs to 99% of B | B |`,
  );
  console.log(`| --- | --- | --- | ${cols.map(() => "---").join(" | ")} | --- | --- | --- |`);
  for (const run of runs) {
    console.log(
      `| ${run.strategy} | ${run.r} | ${run.trialEpochs} | ${run.curve.map(f4).join(" | ")} | ${f4(run.finalTest)} | ` +
        `${reach(run) ?? "not reached"} | ${Number.isNaN(B.get(run.r)!) ? "?" : f4(B.get(run.r)!)} |`,
    );
  }
  console.log("\nMean over replicates:\n");
  console.log(`| strategy | ${cols.join(" | ")} | test HV (chosen) | trial-epochs to 99% of B (each replicate) |`);
  console.log(`| --- | ${cols.map(() => "---").join(" | ")} | --- | --- |`);
  for (const s of STRATEGIES) {
    const mine = runs.filter((x) => x.strategy === s);
    if (!mine.length) continue;
    const curve = cols.map((_, i) => mean(mine.map((x) => x.curve[i]!)));
    console.log(
      `| ${s} | ${curve.map(f4).join(" | ")} | ${f4(mean(mine.map((x) => x.finalTest)))} | ` +
        `${mine.map((x) => reach(x) ?? "not reached").join(", ")} |`,
    );
  }
  console.log("\nRe-thresholding alone (the grid's own trials): own tickets only vs all cuts\n");
  console.log("| r | validation HV own | validation HV all cuts | test HV own (chosen) | test HV all cuts (chosen) |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const run of runs.filter((x) => x.strategy === "grid")) {
    console.log(
      `| ${run.r} | ${f4(run.ownOnlyVal)} | ${f4(run.finalVal)} | ${f4(run.ownOnlyTest)} | ${f4(run.finalTest)} |`,
    );
  }
  console.log(
    "\nB: the best final validation hypervolume of grid and random in the replicate; HV@k: validation hypervolume " +
      `after k trials' worth of trial-epochs (k × ${epochs}), in the order the trials were recorded.`,
  );
}
