// `deno task bench [--quick]`: speed as ratios measured in one run (never as timed test asserts).
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
import { dispatchBench, type DispatchResult } from "./dispatch.ts";
import { searchBench } from "./search.ts";

/** The dispatch benchmark's table (issue: 64 connections, 10,000 trials, no-op trainer). */
async function printDispatch(trials: number, connections: number): Promise<void> {
  console.log(
    `\n## Dispatch: ${trials} trials, ${connections} worker connections, no-op trainer, nats-server on loopback\n`,
  );
  const r = await dispatchBench(trials, connections);
  console.log(
    "| recorded | lost | duplicated | publish s | last record s | trials/s recorded | queue latency p50/p90/p99 ms | service latency p50/p90/p99 ms | coordinator peak RSS MB |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const l = (x: DispatchResult["queueLatencyMs"]) => `${x.p50}/${x.p90}/${x.p99}`;
  console.log(
    `| ${r.recorded} | ${r.lost} | ${r.duplicates} | ${r.publishS.toFixed(2)} | ${r.dispatchS.toFixed(2)} | ${
      r.perS.toFixed(0)
    } | ` +
      `${l(r.queueLatencyMs)} | ${l(r.serviceLatencyMs)} | ${r.peakRssMb.toFixed(0)} |`,
  );
  console.log(
    "\nqueue latency: from the first publish to the record (all trials are queued at once); service latency: " +
      "from a worker pulling the trial to the coordinator recording its result.",
  );
}

const { values } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, dispatch: { type: "boolean" }, search: { type: "boolean" } },
});
const seconds = values.quick ? 1 : 3;
const BATCH = 128;

/** Steps/s of one method's training step at batch 128 on one engine (LeNet-300-100 on MNIST by default). */
function trainSteps(engine: Engine, method: MethodName, budgetS: number, arch = "mlp", shape = [28, 28, 1]): number {
  const cfg = resolveTrialConfig(
    parseSpec(
      `name: bench\nmodel: {architecture: ${arch}, init: signed_constant}\nmethod: {name: ${method}, lambda: 1.0e-6}`,
    ),
    {},
    0,
  );
  const net = buildNet(cfg.model, shape, 10, engine);
  const m = createMethod(cfg, net, new Rng(0), engine.kernels);
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  const dweff = net.layers.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const x = new Float32Array(BATCH * net.inputSize), rng = new Rng(1);
  const y = Uint8Array.from({ length: BATCH }, () => Math.floor(rng.uniform() * 10)); // random labels, as PyTorch's
  rng.fillNormal(x);
  m.beginEpoch(0, 1);
  const step = () => {
    m.effectiveWeights(weff);
    net.forward(x, BATCH, true);
    net.crossEntropy(y, BATCH, true);
    net.backward(BATCH);
    m.applyGradients(dweff);
  };
  for (let i = 0; i < (arch === "mlp" ? 3 : 1); i++) step();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetS * 1000 || n < 2) {
    step();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
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

/** Steps/s of a PyTorch reference script (`args` after the script), or null without PyTorch. */
async function torchRun(script: string, args: string[]): Promise<number | null> {
  for (const bin of ["/usr/bin/python3", "python3"]) {
    try {
      const out = await new Deno.Command(bin, {
        args: [new URL(script, import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (out.success) return JSON.parse(new TextDecoder().decode(out.stdout)).steps_per_s;
    } catch { /* try the next */ }
  }
  return null;
}

/** The PyTorch reference of one method's LeNet-300-100 step (bench/torch_methods.py). */
const torchMethod = (method: MethodName, threads: number) =>
  torchRun("torch_methods.py", [method, String(threads), String(seconds)]);

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
  `ticketsweep bench on ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, ` +
    `Deno ${Deno.version.deno}; every number below is from this run.\n`,
);
if (values.dispatch) {
  await printDispatch(10_000, 64);
  Deno.exit(0);
}
if (values.search) {
  // --quick: one replicate instead of 3
  await searchBench(3, values.quick ? 1 : 3);
  Deno.exit(0);
}

const torch1 = await torchMethod("gates", 1);
const torch2 = await torchMethod("gates", 2);
if (torch1 === null) {
  console.log("PyTorch reference skipped: install it with `apt-get install python3-torch libopenblas0-pthread`.\n");
}

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
  console.log("\n## Every method's training step, LeNet-300-100, batch 128, fastest engine (1 thread)\n");
  const { engine, reason } = await selectEngine("auto");
  console.log(`engine: ${engine.name} (${reason})\n`);
  console.log("| method | steps/s | PyTorch, same method, 1 thread | ratio |");
  console.log("| --- | --- | --- | --- |");
  for (const method of METHODS) {
    const sps = trainSteps(engine, method, Math.min(seconds, 2));
    const torch = torch1 === null ? null : await torchMethod(method, 1);
    const ratio = torch ? `${(sps / torch).toFixed(2)}×` : "n/a";
    console.log(`| ${method} | ${sps.toFixed(1)} | ${torch?.toFixed(1) ?? "n/a"} | ${ratio} |`);
  }
  engine.close();
}

{
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

if (!values.quick) {
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
  const torch = await torchRun("torch_methods.py", ["gates", "1", String(seconds), "conv4"]);
  console.log("| engine | steps/s | PyTorch steps/s (1 thread) | ratio |");
  console.log("| --- | --- | --- | --- |");
  console.log(
    `| ${engine.name}${engine.kernels ? " + native kernels" : ""} | ${sps.toFixed(2)} | ${
      torch?.toFixed(2) ?? "n/a"
    } | ${torch ? (sps / torch).toFixed(2) + "×" : "n/a"} |`,
  );
}
if (!values.quick) await printDispatch(10_000, 64);
else await printDispatch(1_000, 16);
