import assert from "node:assert/strict";
import { method as csMethod } from "../src/train/masks/continuous_sparsification.ts";
import { method as edgePopupMethod } from "../src/train/masks/edge_popup.ts";
import { method as gatesMethod } from "../src/train/masks/gates.ts";
import { method as hardConcreteMethod } from "../src/train/masks/hard_concrete.ts";
import { settingsOf } from "../src/train/masks/method.ts";
import { loadKernels } from "../src/engine/native.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { ModelSchema, TrialTrainingSchema } from "../src/spec/schema.ts";
import { BernoulliGates } from "../src/train/masks/gates.ts";
import { ContinuousSparsification } from "../src/train/masks/continuous_sparsification.ts";
import { expF32, logF32 } from "../src/train/float32.ts";
import { HardConcreteGates } from "../src/train/masks/hard_concrete.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { Rng } from "../src/util/rng.ts";
import { ROOT } from "./_fixtures.ts";
import { sameBits } from "./_nets.ts";

Deno.test("kernels - the native fused gate kernels give the same numbers as the TypeScript loops", async () => {
  const { kernels, reason } = await loadKernels();
  assert.ok(
    kernels,
    `the native kernels must build here (deno task test installs gcc: tools/test_setup.ts): ${reason}`,
  );
  const net = buildNet(ModelSchema.parse({}), [28, 28, 1], 10, createJsEngine()); // LeNet-300-100: 266,200 gates
  const training = TrialTrainingSchema.parse({
    optimizer: "adam",
    lr: 0.05,
    momentum: 0.9,
    weight_decay: 0,
    schedule: "constant",
  });
  const method = settingsOf(gatesMethod, { lambda: 3e-6 });
  const ts = new BernoulliGates(net, method, training, new Rng(5, 2));
  const cc = new BernoulliGates(net, method, training, new Rng(5, 2), { kernels });
  const weffA = net.maskedParams.map((l) => new Float32Array(l.w.length)), weffB = weffA.map((w) => w.slice());
  const grads = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const g = new Rng(9);
  for (let step = 0; step < 4; step++) {
    ts.effectiveWeights(weffA);
    cc.effectiveWeights(weffB);
    weffA.forEach((a, l) => sameBits(a, weffB[l]!, `effective weights, step ${step}, layer ${l}`));
    grads.forEach((x) => {
      g.fillNormal(x);
      for (let i = 0; i < x.length; i++) x[i]! *= 1e-3;
    });
    ts.applyGradients(grads);
    cc.applyGradients(grads);
    ts.mu.forEach((m, l) => sameBits(m, cc.mu[l]!, `mu after step ${step}, layer ${l}`));
  }
});

Deno.test("kernels - auto falls back cleanly when OpenBLAS and the native kernels are hidden", async () => {
  const code = `import { selectEngine } from "${ROOT}src/engine/select.ts";
const c = await selectEngine("auto");
console.log(JSON.stringify({ name: c.engine.name, kernels: c.engine.kernels ?? null, reason: c.reason }));`;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], env, stdout: "piped" }).output();
    assert.equal(out.code, 0);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  const hidden = await run({ TICKETSWEEP_OPENBLAS: "", TICKETSWEEP_KERNELS: "" });
  assert.notEqual(hidden.name, "blas");
  assert.equal(hidden.kernels, null);
  assert.match(hidden.reason, /skipped blas: OpenBLAS not found \(hidden by TICKETSWEEP_OPENBLAS\)/);
  assert.match(hidden.reason, /native kernels off/);
  const missing = await run({ TICKETSWEEP_KERNELS: "/nonexistent/libk.so" });
  assert.equal(missing.kernels, null);
  assert.match(missing.reason, /native kernels unavailable/);
});

Deno.test("kernels - native im2col/col2im give the same convolution outputs and gradients as the TypeScript loops", async () => {
  const { kernels } = await loadKernels();
  assert.ok(kernels);
  const run = (withKernels: boolean) => {
    const engine = createJsEngine();
    if (withKernels) engine.kernels = kernels;
    const net = buildNet(ModelSchema.parse({ architecture: "conv2", init: "kaiming_normal" }), [9, 9, 3], 4, engine);
    const weff = net.maskedParams.map((l) => Float32Array.from(l.w)),
      grads = net.maskedParams.map((l) => new Float32Array(l.w.length));
    net.useEffectiveWeights(weff);
    net.useGradients(grads);
    const x = new Float32Array(5 * 243);
    new Rng(3).fillNormal(x);
    const logits = Float32Array.from(net.forward(x, 5, true));
    net.crossEntropy(Uint8Array.from([0, 1, 2, 3, 0]), 5, true);
    net.backward(5);
    return { logits, grads };
  };
  const a = run(false), b = run(true);
  sameBits(a.logits, b.logits, "logits");
  a.grads.forEach((g, l) => sameBits(g, b.grads[l]!, `gradients, layer ${l}`));
});

Deno.test("kernels - native edge-popup top-k and SGD give the same masks and scores as the TypeScript loops", async () => {
  const { kernels } = await loadKernels();
  assert.ok(kernels);
  const { EdgePopup } = await import("../src/train/masks/edge_popup.ts");
  const net = buildNet(ModelSchema.parse({ init: "signed_constant" }), [28, 28, 1], 10, createJsEngine());
  const training = TrialTrainingSchema.parse({
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 1e-4,
    schedule: "cosine",
  });
  const method = settingsOf(edgePopupMethod, { k: 0.3 });
  const ts = new EdgePopup(net, method, training, new Rng(5, 2));
  const cc = new EdgePopup(net, method, training, new Rng(5, 2), kernels);
  // ties at the threshold: copy some scores so that several share the k-th magnitude
  for (const e of [ts, cc]) e.scores[2]!.fill(0.05, 0, 40);
  const weffA = net.maskedParams.map((l) => new Float32Array(l.w.length)), weffB = weffA.map((w) => w.slice());
  const grads = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const g = new Rng(9);
  for (let step = 0; step < 4; step++) {
    ts.beginEpoch(step, 4);
    cc.beginEpoch(step, 4);
    ts.effectiveWeights(weffA);
    cc.effectiveWeights(weffB);
    weffA.forEach((a, l) => sameBits(a, weffB[l]!, `effective weights, step ${step}, layer ${l}`));
    grads.forEach((x) => g.fillNormal(x));
    ts.applyGradients(grads);
    cc.applyGradients(grads);
    ts.scores.forEach((s, l) => sameBits(s, cc.scores[l]!, `scores after step ${step}, layer ${l}`));
  }
  net.maskedParams.forEach((_, l) => sameBits(ts.binaryMask(l), cc.binaryMask(l), `ticket, layer ${l}`));
});

Deno.test("kernels - expF32 is e^x to float32 precision, and the native cs forward matches the TypeScript loop bit for bit", async () => {
  const rng = new Rng(11);
  for (let i = 0; i < 100_000; i++) {
    const x = Math.fround((rng.uniform() - 0.5) * 170);
    assert.ok(Math.abs(expF32(x) / Math.exp(x) - 1) < 2.4e-7, `e^${x}`); // 2 ulp of float32
  }
  assert.equal(expF32(0), 1);
  assert.ok(expF32(-1e6) <= 1.5e-45, "clamped at e^-103, the smallest float32"); // and e^88 at the top
  assert.equal(expF32(1e6), expF32(88));
  const { kernels } = await loadKernels();
  assert.ok(kernels);
  const net = buildNet(ModelSchema.parse({ init: "signed_constant" }), [28, 28, 1], 10, createJsEngine());
  const method = settingsOf(csMethod, { lambda: 1e-8 });
  const training = TrialTrainingSchema.parse({
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 0,
    schedule: "constant",
  });
  const ts = new ContinuousSparsification(net, method, training);
  const cc = new ContinuousSparsification(net, method, training, kernels);
  // scores spread over the whole range the temperature reaches: sigmoid saturates, weights go subnormal and to 0
  [ts, cc].forEach((m) => m.s.forEach((s) => new Rng(4).fillNormal(s)));
  for (const epoch of [0, 4, 9]) {
    ts.beginEpoch(epoch, 10);
    cc.beginEpoch(epoch, 10);
    const a = net.maskedParams.map((l) => new Float32Array(l.w.length)), b = a.map((x) => x.slice());
    ts.effectiveWeights(a);
    cc.effectiveWeights(b);
    a.forEach((x, l) => sameBits(x, b[l]!, `cs weff at beta ${ts.beta}, layer ${l}`));
    assert.equal(ts.penalty(), cc.penalty());
    const grads = net.maskedParams.map((layer) => new Float32Array(layer.w.length));
    grads.forEach((x) => new Rng(epoch).fillNormal(x));
    ts.applyGradients(grads);
    cc.applyGradients(grads);
    ts.s.forEach((x, l) => sameBits(x, cc.s[l]!, `cs scores after a step at beta ${ts.beta}`));
  }
  assert.ok(ts.beta > 100, "the last epoch trains at the final temperature");
});

Deno.test("kernels - native hard-concrete, Adam and SGD steps give the same numbers as the TypeScript loops", async () => {
  const { kernels } = await loadKernels();
  assert.ok(kernels);
  const net = buildNet(ModelSchema.parse({ init: "signed_constant" }), [28, 28, 1], 10, createJsEngine());
  for (const optimizer of ["adam", "sgd"] as const) {
    const training = TrialTrainingSchema.parse({
      optimizer,
      lr: 0.05,
      momentum: 0.9,
      weight_decay: 1e-4,
      schedule: "constant",
    });
    const method = settingsOf(hardConcreteMethod, { lambda: 1e-5 });
    const ts: HardConcreteGates = new HardConcreteGates(net, method, training, new Rng(5, 2));
    const cc: HardConcreteGates = new HardConcreteGates(net, method, training, new Rng(5, 2), { kernels });
    const a = net.maskedParams.map((l) => new Float32Array(l.w.length)), b = a.map((x) => x.slice());
    const grads = net.maskedParams.map((l) => new Float32Array(l.w.length));
    const g = new Rng(9);
    for (let step = 0; step < 3; step++) {
      ts.effectiveWeights(a);
      cc.effectiveWeights(b);
      a.forEach((x, l) => sameBits(x, b[l]!, `${optimizer}: weff, step ${step}, layer ${l}`));
      grads.forEach((x) => {
        g.fillNormal(x);
        for (let i = 0; i < x.length; i++) x[i]! *= 1e-2;
      });
      ts.applyGradients(grads);
      cc.applyGradients(grads);
      ts.logAlpha.forEach((x, l) => sameBits(x, cc.logAlpha[l]!, `${optimizer}: step ${step}`));
    }
    assert.equal(ts.penalty(), cc.penalty());
  }
});

Deno.test("kernels - logF32 is ln x to float32 precision over 60 octaves", () => {
  const rng = new Rng(3);
  for (let i = 0; i < 100_000; i++) {
    const x = Math.fround(Math.exp((rng.uniform() - 0.5) * 60));
    const want = Math.log(x);
    assert.ok(Math.abs(logF32(x) - want) <= 2.4e-7 * Math.max(1, Math.abs(want)), `ln ${x}`);
  }
  assert.equal(logF32(1), 0);
});
