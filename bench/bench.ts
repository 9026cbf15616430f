// `deno task bench [--quick]`: speed as ratios measured in one run (never as timed test asserts).
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { createBlasEngine } from "../src/engine/blas.ts";
import type { Engine } from "../src/engine/engine.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { createTfjsEngine } from "../src/engine/tfjs.ts";
import { createWebgpuEngine } from "../src/engine/webgpu/engine.ts";
import { runTrial, runTrials } from "../src/train/trial.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { loadSpec, parseSpec } from "../src/spec/load.ts";
import { expandTrials, resolveTrialConfig } from "../src/spec/expand.ts";
import { type MethodName, METHODS } from "../src/spec/schema.ts";
import { createMethod } from "../src/train/masks/registry.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { Rng } from "../src/util/rng.ts";
import { runWorker } from "../src/worker/worker.ts";
import { selectEngine } from "../src/engine/select.ts";
import { loadKernels } from "../src/engine/native.ts";
import type { DispatchResult } from "./dispatch.ts";
import { type AdaptiveOptions, searchBench, strategiesOf } from "./search.ts";
import { loadMnist } from "../src/train/data/mnist.ts";
import { findTorchPython, runTorch, type TorchPython, writeMnistNpy } from "./torch_reference.ts";
import { ticketsweepTrials, torchTrials } from "./trial_throughput.ts";

/**
 * The V8 flags `deno task sweep` runs the coordinator with (deno.json): old space grows 30% over what the last full
 * collection kept, not up to 4x (V8's default on a machine with gigabytes), so garbage is collected before the
 * resident memory of a long sweep doubles, and V8 sizes its heap for memory over speed (--optimize-for-size); read
 * from deno.json so the bench measures the coordinator as it runs.
 */
const COORDINATOR_V8_FLAGS = (JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
).tasks.sweep as string).split(" ").filter((a) => a.startsWith("--v8-flags="));

/** The dispatch benchmark's table (issue 15: 64 connections, 10,000 and 100,000 trials, no-op trainer). */
async function printDispatch(trials: number, connections: number): Promise<void> {
  console.log(
    `\n## Dispatch: ${trials} trials, ${connections} worker connections, no-op trainer, nats-server on loopback\n`,
  );
  const load0 = loadavg()[0]!;
  // in a process of its own: its peak RSS is the coordinator's (and the bench's bookkeeping), not this one's
  const out = await new Deno.Command(Deno.execPath(), {
    // the coordinator's V8 flags, as `deno task sweep` gives them (deno.json)
    args: [
      "run",
      "-A",
      ...COORDINATOR_V8_FLAGS,
      new URL("dispatch.ts", import.meta.url).pathname,
      String(trials),
      String(connections),
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench/dispatch.ts ${trials} ${connections} failed`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as DispatchResult;
  console.log(
    "| recorded | lost | duplicated | publish s | last record s | trials/s recorded | queue latency p50/p90/p99 ms | service latency p50/p90/p99 ms | coordinator peak RSS MB: at the last record / with the reports | start s | reports s | CPU ms per trial: coordinator / workers / nats-server | load average (1 min) before / after |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const perTrial = (s: number | null) => (s === null ? "?" : (1000 * s / r.recorded).toFixed(2));
  const l = (x: DispatchResult["queueLatencyMs"]) => `${x.p50}/${x.p90}/${x.p99}`;
  console.log(
    `| ${r.recorded} | ${r.lost} | ${r.duplicates} | ${r.publishS.toFixed(2)} | ${r.dispatchS.toFixed(2)} | ${
      r.perS.toFixed(0)
    } | ` +
      `${l(r.queueLatencyMs)} | ${l(r.serviceLatencyMs)} | ${r.dispatchPeakRssMb.toFixed(0)} / ${
        r.peakRssMb.toFixed(0)
      } | ${r.startS.toFixed(2)} | ${r.reportS.toFixed(1)} | ${perTrial(r.cpuS.coordinator)} / ${
        perTrial(r.cpuS.workers)
      } / ${perTrial(r.cpuS.broker)} | ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} |`,
  );
  console.log(
    "\nqueue latency: from the first publish to the record (the coordinator keeps at most 4,096 trials published " +
      "and not yet recorded, and publishes the rest as results come in; publish s: until the last is published); " +
      "service latency: from a worker pulling the trial to the coordinator recording its result. start s: from " +
      "the sweep's start to its first trial published (the plan, sweep.json, the logs opened). CPU ms per " +
      "trial: user + system time of each process from the first publish to the last record, over the trials; " +
      "their sum over the cores free bounds the trials/s.",
  );
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    dispatch: { type: "boolean" },
    search: { type: "boolean" },
    // --search --replicates N (default 3; --quick: 1) --strategies grid,random,adaptive (default: all)
    replicates: { type: "string" },
    strategies: { type: "string" },
    // --search --parallel N --initial N: the adaptive strategies' search.parallel and search.initial (default: theirs)
    parallel: { type: "string" },
    initial: { type: "string" },
    // --search --dataset mnist|fashion-mnist --lr MIN,MAX: the problem, for every strategy (default: mnist, 0.01,0.1)
    dataset: { type: "string" },
    lr: { type: "string" },
    // --dispatch --trials N: one dispatch run of N trials (default: 10,000, then 100,000)
    trials: { type: "string" },
    // only the sections measured against PyTorch (the engines, every method, whole trials, Conv-4)
    torch: { type: "boolean" },
  },
});
const seconds = values.quick ? 1 : 3;
const BATCH = 128;

/** The seeded 8000-digit MNIST training split (as the quickstart's and the PyTorch reference's), normalised. */
const mnistTrain = (await loadMnist(8000, 2000, 0)).train;

/** Steps/s of {@link trainStepsTimed}. */
function trainSteps(engine: Engine, method: MethodName, budgetS: number, arch = "mlp", shape = [28, 28, 1]): number {
  return trainStepsTimed(engine, method, budgetS, arch, shape).sps;
}

/**
 * Steps per second of wall time and of the process's CPU time (less sensitive to other processes' load) of one
 * method's training step at batch 128 on one engine: LeNet-300-100 on batches drawn from the MNIST training split,
 * reshuffled every epoch, as the PyTorch reference draws them; other architectures on one random batch. `gemmShare`:
 * the fraction of the step's wall time spent in the engine's matrix products.
 */
function trainStepsTimed(
  base: Engine,
  method: MethodName,
  budgetS: number,
  arch = "mlp",
  shape = [28, 28, 1],
): { sps: number; cpuSps: number; gemmShare: number } {
  let gemmMs = 0;
  const engine: Engine = {
    ...base,
    gemm(...args) {
      const t = performance.now();
      base.gemm(...args);
      gemmMs += performance.now() - t;
    },
  };
  const cfg = resolveTrialConfig(
    parseSpec(
      `name: bench\nmodel: {architecture: ${arch}, init: signed_constant}\nmethod: {name: ${method}, lambda: 1.0e-6}`,
    ),
    {},
    0,
  );
  const net = buildNet(cfg.model, shape, 10, engine);
  const m = createMethod(cfg, net, new Rng(0), engine.kernels);
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const x = new Float32Array(BATCH * net.inputSize), rng = new Rng(1);
  const y = Uint8Array.from({ length: BATCH }, () => Math.floor(rng.uniform() * 10)); // random labels, as PyTorch's
  rng.fillNormal(x);
  const d = mnistTrain.dim, order = Uint32Array.from({ length: mnistTrain.n }, (_, i) => i);
  let next = order.length;
  const fill = () => { // the next batch of the shuffled split, as the trainer's fillBatch gathers it
    if (next + BATCH > order.length) {
      rng.shuffle(order);
      next = 0;
    }
    for (let i = 0; i < BATCH; i++) {
      const r = order[next++]!;
      x.set(mnistTrain.x.subarray(r * d, (r + 1) * d), i * d);
      y[i] = mnistTrain.y[r]!;
    }
  };
  m.beginEpoch(0, 1);
  const step = () => {
    if (arch === "mlp") fill();
    m.effectiveWeights(weff);
    net.forward(x, BATCH, true);
    net.crossEntropy(y, BATCH, true);
    net.backward(BATCH);
    m.applyGradients(dweff);
  };
  for (let i = 0; i < (arch === "mlp" ? 3 : 1); i++) step();
  let n = 0;
  gemmMs = 0;
  const t0 = performance.now(), cpu0 = cpuUsage();
  while (performance.now() - t0 < budgetS * 1000 || n < 2) {
    step();
    n++;
  }
  const cpu = cpuUsage(cpu0), ms = performance.now() - t0;
  return { sps: n / (ms / 1000), cpuSps: n / ((cpu.user + cpu.system) / 1e6), gemmShare: gemmMs / ms };
}

/** GFLOP/s of a 512×784×300 product (the first layer's shape) through an engine. */
function gemmGflops(engine: Engine, budgetS: number): number {
  const m = 512, k = 784, n = 300;
  const a = new Float32Array(m * k), b = new Float32Array(n * k), c = new Float32Array(m * n);
  new Rng(2).fillNormal(a);
  new Rng(3).fillNormal(b);
  engine.gemm(false, true, m, n, k, a, b, c, 0);
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetS * 1000) {
    engine.gemm(false, true, m, n, k, a, b, c, 0);
    reps++;
  }
  return (2 * m * n * k * reps) / ((performance.now() - t0) / 1000) / 1e9;
}

/** The load average over 1, 5 and 15 minutes, for the tables' headers (the machine may be shared). */
const load = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(", ")}`;

/** PyTorch for the reference (bench/torch_methods.py), and the MNIST digits written once for it to load. */
const py: TorchPython | null = await findTorchPython();
const dataDir = await Deno.makeTempDir({ prefix: "ticketsweep-bench-" });
if (py) await writeMnistNpy(dataDir);
addEventListener("unload", () => Deno.removeSync(dataDir, { recursive: true }));

/** The reference's steps/s and minor page faults per step (thousands: the cold allocator regime), or null. */
interface TorchSteps {
  sps: number;
  /** Steps per second of the process's CPU time. */
  cpuSps: number;
  faults: number;
}

/** The PyTorch reference of one method's step (bench/torch_methods.py steps), or null without PyTorch. */
async function torchSteps(
  method: MethodName,
  threads: number,
  budgetS: number,
  opts: { warm?: boolean; arch?: string } = {},
): Promise<TorchSteps | null> {
  if (!py) return null;
  const args = ["steps", method, "--data", dataDir, "--threads", String(threads), "--seconds", String(budgetS)];
  if (opts.warm) args.push("--warm");
  if (opts.arch) args.push("--arch", opts.arch);
  const [r] = await runTorch(py, args);
  return { sps: Number(r!.steps_per_s), cpuSps: Number(r!.steps_per_cpu_s), faults: Number(r!.page_faults_per_step) };
}

const engines: { name: string; make: () => Promise<Engine> }[] = [
  {
    name: "blas + native kernels",
    make: async () => {
      const { kernels, reason } = await loadKernels();
      if (!kernels) throw new Error(reason);
      const e = createBlasEngine(1);
      e.kernels = kernels;
      return e;
    },
  },
  { name: "blas (TypeScript loops)", make: () => Promise.resolve(createBlasEngine(1)) },
  { name: "tensorflow (tfjs-node)", make: () => createTfjsEngine("tensorflow") },
  { name: "webgpu", make: () => createWebgpuEngine() },
  { name: "wasm", make: () => createTfjsEngine("wasm") },
  { name: "js", make: () => Promise.resolve(createJsEngine()) },
  { name: "cpu (tfjs)", make: () => createTfjsEngine("cpu") },
];

console.log(
  `ticketsweep bench on ${Deno.build.os}/${Deno.build.arch}, ${cpus()[0]?.model ?? "unknown CPU"}, ` +
    `${navigator.hardwareConcurrency} cores, ` +
    `Deno ${Deno.version.deno}, ${new Date().toISOString().slice(0, 16)}Z, ${load()}; every number below is from ` +
    "this run.",
);
console.log(
  py
    ? `PyTorch reference: bench/torch_methods.py run by ${py.note}, 1 thread unless said, flush-to-zero, the MNIST ` +
      `digits from ${dataDir}/mnist_{x,y}.npy.\n`
    : "PyTorch reference skipped: no python3 imports torch (Debian: `apt-get install python3-torch`).\n",
);
if (values.dispatch) {
  for (const n of values.trials ? [Number(values.trials)] : [10_000, 100_000]) await printDispatch(n, 64);
  Deno.exit(0);
}
if (values.search) {
  // --quick: one replicate instead of 3
  const reps = values.replicates === undefined ? (values.quick ? 1 : 3) : Number(values.replicates);
  if (!Number.isInteger(reps) || reps < 1 || reps > 100) {
    console.error(`--replicates: expected a whole number of replicates from 1 to 100, found '${values.replicates}'`);
    Deno.exit(2);
  }
  let only;
  try {
    only = strategiesOf(values.strategies);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const adaptive: AdaptiveOptions = {};
  for (const key of ["parallel", "initial"] as const) {
    if (values[key] === undefined) continue;
    const n = Number(values[key]);
    if (!/^\d+$/.test(values[key]!) || n < 1 || n > 24) {
      console.error(`--${key}: expected a whole number from 1 to 24, found '${values[key]}'`);
      Deno.exit(2);
    }
    adaptive[key] = n;
  }
  if (values.dataset !== undefined) {
    if (values.dataset !== "mnist" && values.dataset !== "fashion-mnist") {
      console.error(`--dataset: expected mnist or fashion-mnist, found '${values.dataset}'`);
      Deno.exit(2);
    }
    adaptive.dataset = values.dataset;
  }
  if (values.lr !== undefined) {
    const lr = values.lr.split(",").map(Number);
    if (lr.length !== 2 || !lr.every((x) => Number.isFinite(x) && x > 0) || lr[0]! >= lr[1]!) {
      console.error(`--lr: expected MIN,MAX with 0 < MIN < MAX (e.g. --lr 0.003,0.3), found '${values.lr}'`);
      Deno.exit(2);
    }
    adaptive.lr = [lr[0]!, lr[1]!];
  }
  await searchBench(3, reps, only, adaptive);
  Deno.exit(0);
}

const torch1 = (await torchSteps("gates", 1, seconds))?.sps ?? null;
const torch2 = (await torchSteps("gates", 2, seconds))?.sps ?? null;

let sgemm = NaN;
try {
  sgemm = gemmGflops(createBlasEngine(1), seconds);
} catch (e) {
  console.log(`OpenBLAS missing (${(e as Error).message}); no sgemm reference.\n`);
}

console.log("## Gate training step, LeNet-300-100, batch 128, Adam (1 thread)\n");
console.log("| engine | steps/s | × PyTorch 1 thread | × PyTorch 2 threads | matmul GFLOP/s | % of sgemm |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const { name, make } of engines) {
  let engine: Engine;
  try {
    engine = await make();
  } catch (e) {
    console.log(`| ${name} | unavailable: ${(e as Error).message.split("\n")[0]} | | | | |`);
    continue;
  }
  const slow = name === "js" || name.startsWith("cpu") || ("software" in engine && engine.software);
  const budget = slow ? Math.min(seconds, 2) : seconds;
  const sps = trainSteps(engine, "gates", budget);
  const gf = gemmGflops(engine, Math.min(seconds, 1));
  const r = (t: number | null) => (t ? `${(sps / t).toFixed(2)}×` : "n/a");
  console.log(
    `| ${name === "webgpu" ? engine.device : name} | ${sps.toFixed(1)} | ${r(torch1)} | ${r(torch2)} | ${
      gf.toFixed(1)
    } | ${Number.isNaN(sgemm) ? "n/a" : (100 * gf / sgemm).toFixed(0) + "%"} |`,
  );
  engine.close();
}
if (torch1 !== null) {
  console.log(`| PyTorch (reference) | ${torch1.toFixed(1)} (1 thread), ${torch2?.toFixed(1)} (2 threads) | | | | |`);
}
console.log(`\nOpenBLAS sgemm 512×784×300, 1 thread: ${sgemm.toFixed(1)} GFLOP/s`);

{
  console.log("\n## Every method's training step, LeNet-300-100, MNIST batches of 128, fastest engine (1 thread)\n");
  const { engine, reason } = await selectEngine("auto");
  console.log(`engine: ${engine.name} (${reason}); ${load()}\n`);
  console.log(
    "| method | steps/s | PyTorch steps/s | ratio | ratio in CPU time | matrix products, % of our step | " +
      "ratio if all else took no time | PyTorch after a warm allocation | warm gap | PyTorch page faults/step |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const budget = Math.min(seconds, 2), flagged: string[] = [];
  for (const method of METHODS) {
    // two rounds of ours, PyTorch's plain script and PyTorch's with the warm allocation, interleaved so that all
    // three see the same minute's load; each the better of its two (the one less disturbed by other processes)
    const ours: { sps: number; cpuSps: number; gemmShare: number }[] = [], torch: (TorchSteps | null)[] = [];
    const warmed: (TorchSteps | null)[] = [];
    for (let round = 0; round < 2; round++) {
      ours.push(trainStepsTimed(engine, method, budget / 2));
      torch.push(await torchSteps(method, 1, budget));
      warmed.push(await torchSteps(method, 1, budget, { warm: true }));
    }
    const fastest = ours.reduce((x, y) => (y.sps > x.sps ? y : x));
    const sps = fastest.sps, cpuSps = Math.max(...ours.map((o) => o.cpuSps)), share = fastest.gemmShare;
    const best = (runs: (TorchSteps | null)[]) =>
      runs.includes(null) ? null : (runs as TorchSteps[]).reduce((x, y) => (y.sps > x.sps ? y : x));
    const plain = best(torch), warm = best(warmed);
    if (!plain || !warm) {
      console.log(
        `| ${method} | ${sps.toFixed(1)} | n/a | n/a | n/a | ${(100 * share).toFixed(0)}% | n/a | n/a | n/a | n/a |`,
      );
      continue;
    }
    const gap = warm.sps / plain.sps - 1;
    if (Math.abs(gap) > 0.2) flagged.push(`${method} (${(100 * gap).toFixed(0)}%)`);
    console.log(
      `| ${method} | ${sps.toFixed(1)} | ${plain.sps.toFixed(1)} | ${(sps / plain.sps).toFixed(2)}× | ` +
        `${(cpuSps / Math.max(...torch.map((t) => t!.cpuSps))).toFixed(2)}× | ${(100 * share).toFixed(0)}% | ` +
        `${(sps / share / plain.sps).toFixed(2)}× | ${warm.sps.toFixed(1)} | ${gap >= 0 ? "+" : ""}${
          (100 * gap).toFixed(0)
        }% | ${plain.faults.toFixed(0)} |`,
    );
  }
  engine.close();
  console.log(
    `\n${load()}. Each number is the better of two runs, interleaved. The ratio is to the plain script, in wall ` +
      "time and in each process's CPU time (steps per CPU " +
      "second: what another process's load changes less; ours counts every thread of the Deno process); " +
      "matrix products: the share of our step's wall time inside OpenBLAS's sgemm calls (the same calls PyTorch " +
      "makes, at the library's speed); the ratio if all else took no time is our bound with these products; " +
      '"after a warm allocation" is the same script with a 25 MB ' +
      "buffer allocated and freed before training (`--warm`): a process that never freed a large buffer gets " +
      "fresh pages from the kernel for every tensor of every step (hundreds of page faults a step, several times " +
      "slower), so the two agree only when the reference trains in a user's regime.",
  );
  if (flagged.length) {
    console.log(
      `\n**FLAG: the reference with and without the warm allocation differ by more than 20% for ` +
        `${flagged.join(", ")}**: either it is not in a user's regime (see its page faults per step) or the ` +
        "machine's load moved between the runs; its ratios are not to be quoted from this run.",
    );
  }
}

if (py) {
  // --quick: the same 8 trials at 2 epochs, one round
  const workers = navigator.hardwareConcurrency, epochs = values.quick ? 2 : 10, rounds = values.quick ? 1 : 2;
  let specPath = new URL("../sweeps/quickstart.yaml", import.meta.url).pathname;
  const quickstart = await Deno.readTextFile(specPath);
  if (values.quick) {
    specPath = join(dataDir, "quickstart.yaml");
    await Deno.writeTextFile(
      specPath,
      quickstart.replace(/epochs: 10\n/, `epochs: ${epochs}\n`).replace(/^name: quickstart$/m, "name: qs-bench-quick"),
    );
  }
  // the same trials evaluating their own ticket only, as the PyTorch script does (no ladder of cuts)
  const ownOnly = join(dataDir, "quickstart-own-ticket.yaml");
  await Deno.writeTextFile(
    ownOnly,
    (await Deno.readTextFile(specPath)).replace(/^name: .*$/m, "name: qs-bench-own-ticket") + "tickets: {cuts: 0}\n",
  );
  const trials = expandTrials(await loadSpec(specPath));
  const lambdas = trials.map((t) => Number(t.config.method.lambda));
  const lr = trials[0]!.config.training.lr;
  console.log(
    `\n## Whole trials: the quickstart's ${trials.length} (MNIST 8000/2000, LeNet-300-100, gates, ${epochs} epochs, ` +
      `data load, training, evaluation, ticket), one process per core (${workers})\n`,
  );
  console.log(
    "| round | ticketsweep wall s | trials/hour | ticketsweep, own ticket only: wall s | trials/hour | " +
      "PyTorch wall s | trials/hour | ratio | ratio, own ticket only | load average (1 min) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const sum = { ts: 0, own: 0, torch: 0 };
  let accuracy = "", where = "";
  for (let round = 1; round <= rounds; round++) {
    const a = await ticketsweepTrials(specPath, workers);
    const o = await ticketsweepTrials(ownOnly, workers);
    const b = await torchTrials(py, dataDir, lambdas, epochs, lr, workers);
    sum.ts += a.wallS;
    sum.own += o.wallS;
    sum.torch += b.wallS;
    accuracy = `mean test accuracy ${(100 * a.accuracy).toFixed(1)}% and sparsity ${(100 * a.sparsity).toFixed(1)}% ` +
      `(ticketsweep), ${(100 * b.accuracy).toFixed(1)}% and ${(100 * b.sparsity).toFixed(1)}% (PyTorch)`;
    const split = (t: typeof a) =>
      `${t.trainS.toFixed(1)} s (${(100 * t.trainS / (workers * t.wallS)).toFixed(0)}%) in training steps`;
    where = `Of ${workers} × the wall seconds, ticketsweep spent ${split(a)} (own ticket only: ${split(o)}), ` +
      `PyTorch ${split(b)}; the rest went to starting processes, loading data, evaluating tickets, coordination ` +
      "and the report";
    console.log(
      `| ${round} | ${a.wallS.toFixed(1)} | ${a.perHour.toFixed(0)} | ${o.wallS.toFixed(1)} | ${
        o.perHour.toFixed(0)
      } | ` +
        `${b.wallS.toFixed(1)} | ${b.perHour.toFixed(0)} | ${(b.wallS / a.wallS).toFixed(2)}× | ` +
        `${(b.wallS / o.wallS).toFixed(2)}× | ${loadavg()[0]!.toFixed(2)} |`,
    );
  }
  const perHour = (s: number) => (trials.length * rounds * 3600 / s).toFixed(0);
  console.log(
    `| all | ${sum.ts.toFixed(1)} | ${perHour(sum.ts)} | ${sum.own.toFixed(1)} | ${perHour(sum.own)} | ` +
      `${sum.torch.toFixed(1)} | ${perHour(sum.torch)} | ${(sum.torch / sum.ts).toFixed(2)}× | ` +
      `${(sum.torch / sum.own).toFixed(2)}× | |`,
  );
  console.log(
    `\n${accuracy}. ${where} (last round). ticketsweep: \`deno task sweep ${
      values.quick ? specPath : "sweeps/quickstart.yaml"
    } --workers ${workers} --runs $(mktemp -d)\` (a private nats-server broker, ${workers} worker processes; ` +
      "the wall time includes starting them and the report; each trial also evaluates its ladder of cuts " +
      "(`tickets.cuts: auto`), which `tickets: {cuts: 0}` leaves out). PyTorch: " +
      `${workers} processes at once, each running its share of the lambdas in turn: \`` +
      Array.from(
        { length: workers },
        (_, p) =>
          `${py.bin} bench/torch_methods.py trial gates --data DIR --epochs ${epochs} --lr ${lr} --lambdas ` +
          lambdas.filter((_, i) => i % workers === p).join(",") + " &",
      ).join(" ") +
      " wait` (DIR from `deno run -A bench/torch_reference.ts DIR`).",
  );
}

if (!values.torch) {
  console.log("\n## Packing: 4 quickstart trials (LeNet-300-100, MNIST 8k) one at a time vs packed (K = 4)\n");
  const spec = await loadSpec(new URL("../sweeps/quickstart.yaml", import.meta.url).pathname);
  const epochs = values.quick ? 1 : 2;
  const cfgs = expandTrials(spec).slice(0, 4).map((t) => ({ ...t.config, training: { ...t.config.training, epochs } }));
  const { engine } = await selectEngine("auto");
  await runTrial({ ...cfgs[0]!, training: { ...cfgs[0]!.training, epochs: 1 } }, engine); // data decoded once
  let t = performance.now();
  for (const cfg of cfgs) await runTrial(cfg, engine);
  const single = (performance.now() - t) / 1000;
  t = performance.now();
  await Promise.all(runTrials(cfgs.map((cfg) => ({ cfg })), engine));
  const packed = (performance.now() - t) / 1000;
  engine.close();
  const perHour = (s: number) => (4 * 3600 / s).toFixed(0);
  console.log(`engine: ${engine.name}${engine.kernels ? " + native kernels" : ""}, ${epochs} epochs a trial\n`);
  console.log("| K | wall s | trials/hour | ratio |");
  console.log("| --- | --- | --- | --- |");
  console.log(`| 1 | ${single.toFixed(2)} | ${perHour(single)} | 1.00× |`);
  console.log(`| 4 | ${packed.toFixed(2)} | ${perHour(packed)} | ${(single / packed).toFixed(2)}× |`);
}

if (!values.quick && !values.torch) {
  console.log("\n## Orchestration overhead: quickstart sweep, in-process worker, memory transport\n");
  const spec = await loadSpec(new URL("../sweeps/quickstart.yaml", import.meta.url).pathname);
  const dir = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  const ac = new AbortController();
  const worker = runWorker({ transport, signal: ac.signal });
  const t0 = performance.now();
  const outcome = await runSweep({
    spec,
    specText: "",
    specFile: "quickstart.yaml",
    runsDir: dir,
    transport,
    log: () => {},
  });
  const wall = (performance.now() - t0) / 1000;
  ac.abort();
  await worker;
  const lines = (await Deno.readTextFile(`${outcome.runDir}/results.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const compute = lines.reduce((s, r) => s + r.metrics.train_s, 0);
  const trialWall = lines.reduce((s, r) => s + r.metrics.wall_s, 0);
  console.log(
    `| sweep wall s | Σ trial training s | Σ trial wall s (with evaluation) | overhead vs training | overhead vs trial wall |`,
  );
  console.log(`| --- | --- | --- | --- | --- |`);
  console.log(
    `| ${wall.toFixed(2)} | ${compute.toFixed(2)} | ${trialWall.toFixed(2)} | ${
      (100 * (wall / compute - 1)).toFixed(1)
    }% | ${(100 * (wall / trialWall - 1)).toFixed(1)}% |`,
  );
  await transport.close();
  await Deno.remove(dir, { recursive: true });
}

if (!values.quick) {
  console.log("\n## Conv-4 (edge-popup's), 32×32×3 inputs, batch 128, gates, fastest engine (1 thread)\n");
  const { engine } = await selectEngine("auto");
  const sps = trainSteps(engine, "gates", seconds, "conv4", [32, 32, 3]);
  engine.close();
  const torch = (await torchSteps("gates", 1, seconds, { arch: "conv4" }))?.sps;
  console.log("| engine | steps/s | PyTorch steps/s (1 thread) | ratio |");
  console.log("| --- | --- | --- | --- |");
  console.log(
    `| ${engine.name}${engine.kernels ? " + native kernels" : ""} | ${sps.toFixed(2)} | ${
      torch?.toFixed(2) ?? "n/a"
    } | ${torch ? (sps / torch).toFixed(2) + "×" : "n/a"} |`,
  );
}
if (!values.torch) await printDispatch(values.quick ? 1_000 : 10_000, values.quick ? 16 : 64);
