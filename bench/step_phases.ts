// `deno run -A bench/step_phases.ts [methods]`: where one training step's time goes, per method, on the fastest CPU
// engine with the native kernels (LeNet-300-100, batch 128, one random non-negative batch): the mask's effective
// weights, the forward pass, the loss, the backward pass and the mask's gradient and optimiser step, in ms (the best
// of 5 rounds of 0.6 s each) and steps/s. Run it at two commits to compare kernels; quote it only from a quiet machine.
import { cpuUsage } from "node:process";
import { createBlasEngine } from "../src/engine/blas.ts";
import type { Engine } from "../src/engine/engine.ts";
import { loadKernels } from "../src/engine/native.ts";
import { resolveTrialConfig } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { createMethod } from "../src/train/masks/registry.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { Rng } from "../src/util/rng.ts";

const BATCH = 128, ROUNDS = 5, ROUND_MS = 600;
const PHASES = ["weights", "forward", "loss", "backward", "mask step"] as const;

const { kernels, reason } = await loadKernels();
const engine: Engine = { ...createBlasEngine(1), kernels };
const methods = (Deno.args[0] ?? "dense,gates,hard-concrete,cs,supermask,edge-popup").split(",");
console.log(`${engine.device}; ${reason}\n`);
console.log(`| method | steps/s | steps per CPU s | ${PHASES.map((p) => `${p} ms`).join(" | ")} |`);
console.log(`| --- | --- | --- | ${PHASES.map(() => "---").join(" | ")} |`);
for (const method of methods) {
  const cfg = resolveTrialConfig(
    parseSpec(
      `name: phases\nmodel: {architecture: mlp, init: signed_constant}\nmethod: {name: ${method}, lambda: 1.0e-6}`,
    ),
    {},
    0,
  );
  const net = buildNet(cfg.model, [28, 28, 1], 10, engine);
  const m = createMethod(cfg, net, new Rng(0), kernels);
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const rng = new Rng(1), x = new Float32Array(BATCH * net.inputSize);
  rng.fillNormal(x);
  x.forEach((v, i) => (x[i] = Math.max(0, v)));
  const y = Uint8Array.from({ length: BATCH }, () => Math.floor(rng.uniform() * 10));
  m.beginEpoch(0, 1);
  const ms = PHASES.map(() => 0);
  const step = () => {
    const run = [
      () => m.effectiveWeights(weff),
      () => net.forward(x, BATCH, true),
      () => net.crossEntropy(y, BATCH, true),
      () => net.backward(BATCH),
      () => m.applyGradients(dweff),
    ];
    run.forEach((phase, i) => {
      const t = performance.now();
      phase();
      ms[i]! += performance.now() - t;
    });
  };
  for (let i = 0; i < 20; i++) step();
  const best = PHASES.map(() => Infinity);
  let sps = 0, cpuSps = 0;
  for (let round = 0; round < ROUNDS; round++) {
    ms.fill(0);
    let n = 0;
    const t0 = performance.now(), c0 = cpuUsage();
    while (performance.now() - t0 < ROUND_MS) {
      step();
      n++;
    }
    const c = cpuUsage(c0);
    ms.forEach((v, i) => (best[i] = Math.min(best[i]!, v / n)));
    sps = Math.max(sps, n / ((performance.now() - t0) / 1000));
    cpuSps = Math.max(cpuSps, n / ((c.user + c.system) / 1e6));
  }
  console.log(
    `| ${method} | ${sps.toFixed(0)} | ${cpuSps.toFixed(0)} | ${best.map((v) => v.toFixed(3)).join(" | ")} |`,
  );
}
engine.close();
