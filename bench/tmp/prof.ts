import { parseSpec } from "../../src/spec/load.ts";
import { resolveTrialConfig } from "../../src/spec/expand.ts";
import { buildNet } from "../../src/train/nets/build.ts";
import { createMethod } from "../../src/train/masks/create.ts";
import { Rng } from "../../src/util/rng.ts";
import { selectEngine } from "../../src/engine/select.ts";
const method = Deno.args[0] ?? "gates";
const { engine } = await selectEngine("blas");
const cfg = resolveTrialConfig(parseSpec(`name: bench\nmodel: {architecture: mlp, init: signed_constant}\nmethod: {name: ${method}, lambda: 1.0e-6}`), {}, 0);
const net = buildNet(cfg.model, [28, 28, 1], 10, engine);
const m = createMethod(cfg, net, new Rng(0), engine.kernels);
const weff = net.layers.map((l) => new Float32Array(l.w.length));
const dweff = net.layers.map((l) => new Float32Array(l.w.length));
net.useEffectiveWeights(weff); net.useGradients(dweff);
const B = 128, x = new Float32Array(B * 784), y = new Uint8Array(B);
new Rng(1).fillNormal(x); m.beginEpoch(0, 1);
const t = [0, 0, 0, 0, 0];
for (let i = 0; i < 400; i++) {
  const a = performance.now(); m.effectiveWeights(weff);
  const b = performance.now(); net.forward(x, B, true);
  const c = performance.now(); net.crossEntropy(y, B, true);
  const d = performance.now(); net.backward(B);
  const e = performance.now(); m.applyGradients(dweff);
  const f = performance.now();
  if (i >= 50) { t[0] += b - a; t[1] += c - b; t[2] += d - c; t[3] += e - d; t[4] += f - e; }
}
const n = 350;
console.log(method, ["effW", "fwd", "ce", "bwd", "apply"].map((k, i) => `${k} ${(t[i]! / n).toFixed(3)}`).join("  "), "total", (t.reduce((p, q) => p + q) / n).toFixed(3), "ms");
let den = 0, zero = 0, tot = 0;
for (const w of weff) for (const v of w) { tot++; if (v === 0) zero++; else if (Math.abs(v) < 1.1754943508222875e-38) den++; }
console.log("weff denormals", den, "zeros", zero, "of", tot);
