import assert from "node:assert/strict";
import { method as csMethod } from "../src/train/masks/continuous_sparsification.ts";
import { method as edgePopupMethod } from "../src/train/masks/edge_popup.ts";
import { method as gatesMethod } from "../src/train/masks/gates.ts";
import { method as hardConcreteMethod } from "../src/train/masks/hard_concrete.ts";
import { settingsOf } from "../src/train/masks/method.ts";
import { assertClose, finiteDiff, lossOf, smallNet, UNIT_SGD } from "./_nets.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { loadKernels } from "../src/engine/native.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { ContinuousSparsification, csSchedule } from "../src/train/masks/continuous_sparsification.ts";
import { EdgePopup } from "../src/train/masks/edge_popup.ts";
import { BernoulliGates } from "../src/train/masks/gates.ts";
import { HardConcreteGates } from "../src/train/masks/hard_concrete.ts";
import { normCdf, normPdf } from "../src/train/masks/math.ts";
import { sigmoidF32 } from "../src/train/float32.ts";
import { createMethod } from "../src/train/masks/registry.ts";
import type { MaskMethod } from "../src/train/masks/method.ts";
import { keptCount, topKMask } from "../src/train/masks/top_k.ts";
import { buildNet } from "../src/train/nets/build.ts";
import type { Net } from "../src/train/nets/net.ts";
import { loadDataset } from "../src/train/data/load.ts";
import { runTrial } from "../src/train/trial.ts";
import { Rng } from "../src/util/rng.ts";

const MLP = { architecture: "mlp", widths: [5], init: "kaiming_normal", weight_seed: 3 };

/**
 * Checks d(task loss + penalty)/d(theta) of one method against central finite differences: one update with
 * SGD at learning rate 1 exposes the analytic gradient as theta_old − theta_new.
 */
function checkMethodGradient(what: string, make: (net: Net) => { method: MaskMethod; theta: Float32Array[] }): void {
  const { net, x, y, b } = smallNet(MLP, [6, 1, 1]);
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const { method, theta } = make(net);
  method.beginEpoch(0, 1);
  const lossAt = () => {
    method.effectiveWeights(weff);
    return lossOf(net, x, y, b) + method.penalty();
  };
  const numeric = theta.flatMap((t) => finiteDiff(t, Array.from(t, (_, i) => i), lossAt, 1e-3));
  const before = theta.map((t) => Float32Array.from(t));
  method.effectiveWeights(weff);
  net.forward(x, b, true);
  net.crossEntropy(y, b, true);
  net.backward(b);
  method.applyGradients(dweff);
  const analytic = theta.flatMap((t, l) => Array.from(t, (v, i) => before[l]![i]! - v));
  assert.ok(analytic.length >= 8);
  assertClose(analytic, numeric, what, 0.9999, 0.02);
}

/** Fixed standard normal noise with every `mu + sigma·eps` kept away from the clamp's kinks at 0 and 1. */
function gateNoise(mu: Float32Array[], sigma: number): Float32Array[] {
  const rng = new Rng(9);
  return mu.map((m) => {
    const eps = new Float32Array(m.length);
    rng.fillNormal(eps);
    for (let i = 0; i < m.length; i++) {
      const u = m[i]! + sigma * eps[i]!;
      if (Math.abs(u) < 0.02 || Math.abs(u - 1) < 0.02) eps[i] = eps[i]! + 0.1;
    }
    return eps;
  });
}

for (const granularity of ["weight", "neuron"] as const) {
  Deno.test(`gates (${granularity}) - gradient of loss + penalty matches finite differences (noise fixed)`, () => {
    checkMethodGradient(`gates ${granularity}`, (net) => {
      let noise: Float32Array[] = [];
      const method = settingsOf(gatesMethod, { lambda: 0.05, granularity });
      const gates = new BernoulliGates(net, method, UNIT_SGD, new Rng(1), { noise: (l, e) => e.set(noise[l]!) });
      noise = gateNoise(gates.mu, method.sigma);
      return { method: gates, theta: gates.mu };
    });
  });
}

Deno.test("gates - the clamp: z is 0 below 0, 1 above 1, mu + sigma·eps between; penalty is lambda·ΣΦ(mu/sigma)", () => {
  const { net } = smallNet(MLP, [6, 1, 1]);
  const eps = net.maskedParams.map((l) => new Float32Array(l.w.length));
  eps[0]![0] = -10;
  eps[0]![1] = 10;
  const gates = new BernoulliGates(net, settingsOf(gatesMethod, { lambda: 0.3 }), UNIT_SGD, new Rng(1), {
    noise: (l, e) => e.set(eps[l]!),
  });
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  gates.effectiveWeights(weff);
  const w = net.maskedParams[0]!.w, mu = gates.mu[0]!;
  assert.equal(weff[0]![0], 0);
  assert.equal(weff[0]![1], w[1]);
  assert.ok(Math.abs(weff[0]![2]! - w[2]! * mu[2]!) < 1e-7);
  const expected = 0.3 * gates.mu.reduce((s, m) => s + m.reduce((a, v) => a + normCdf(v / 0.5), 0), 0);
  assert.ok(Math.abs(gates.penalty() - expected) < 1e-9);
  assert.ok(Math.abs(gates.penaltyGradient(0, 3) - (0.3 / 0.5) * normPdf(mu[3]! / 0.5)) < 1e-12);
});

Deno.test("gates (neuron) - one gate per output unit removes whole rows", () => {
  const { net } = smallNet(MLP, [6, 1, 1]);
  const gates = new BernoulliGates(net, settingsOf(gatesMethod, { granularity: "neuron" }), UNIT_SGD, new Rng(1));
  assert.deepEqual(gates.mu.map((m) => m.length), [5, 3]);
  gates.mu[0]!.set([1, -1, 1, -1, 1]);
  assert.deepEqual(
    [...gates.binaryMask(0)],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0].concat([1, 1, 1, 1, 1, 1]).concat(
      [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
    ),
  );
});

for (const granularity of ["weight", "neuron"] as const) {
  Deno.test(`hard-concrete (${granularity}) - gradient matches finite differences (noise fixed)`, () => {
    checkMethodGradient(`hard-concrete ${granularity}`, (net) => {
      const rng = new Rng(4);
      const us = net.maskedParams.map((l) =>
        Float32Array.from({ length: l.w.length }, () => 0.3 + 0.4 * rng.uniform())
      );
      const method = settingsOf(hardConcreteMethod, { lambda: 0.05, granularity });
      const hc = new HardConcreteGates(net, method, UNIT_SGD, new Rng(1), {
        noise: (l, u) => u.set(us[l]!.subarray(0, u.length)),
      });
      return { method: hc, theta: hc.logAlpha };
    });
  });
}

Deno.test("hard-concrete - the closed-form expected-L0 penalty matches a Monte-Carlo estimate of P(z > 0)", () => {
  const { net } = smallNet(MLP, [6, 1, 1]);
  const m = settingsOf(hardConcreteMethod, { lambda: 1 });
  const hc = new HardConcreteGates(net, m, UNIT_SGD, new Rng(2));
  const la = hc.logAlpha[0]!;
  for (let i = 0; i < la.length; i++) la[i] = -3 + (6 * i) / (la.length - 1);
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const nonzero = new Float64Array(la.length);
  const N = 20000;
  for (let s = 0; s < N; s++) {
    hc.effectiveWeights(weff);
    for (let i = 0; i < la.length; i++) if (weff[0]![i] !== 0) nonzero[i]!++;
  }
  const shift = m.hc_beta * Math.log(-m.gamma / m.zeta);
  let worst = 0;
  for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(nonzero[i]! / N - sigmoidF32(la[i]! - shift)));
  assert.ok(worst < 0.015, `largest |MC − closed form| = ${worst}`);
  // and the test gate is clamp(sigmoid(log_alpha)·(zeta − gamma) + gamma, 0, 1)
  assert.equal(hc.testGate(-10), 0);
  assert.equal(hc.testGate(10), 1);
  assert.ok(Math.abs(hc.testGate(0) - 0.5) < 1e-12);
});

Deno.test("cs - gradient of loss + penalty matches finite differences", () => {
  checkMethodGradient("cs", (net) => {
    const method = settingsOf(csMethod, { lambda: 0.05, s0: 0.2, beta_final: 3, rounds: 1 });
    const cs = new ContinuousSparsification(net, method, UNIT_SGD);
    const rng = new Rng(3);
    for (const s of cs.s) for (let i = 0; i < s.length; i++) s[i] = 0.5 * rng.normal();
    return { method: cs, theta: cs.s };
  });
});

Deno.test("cs - beta reaches beta_final at the last epoch of every round, growing geometrically from 1", () => {
  const sched = csSchedule(10, 3, 200);
  assert.deepEqual(sched.map((e) => e.round), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
  for (const [first, last] of [[0, 3], [4, 6], [7, 9]] as const) {
    assert.equal(sched[first]!.beta, 1);
    assert.ok(Math.abs(sched[last]!.beta - 200) < 1e-9);
    const ratio = sched[first + 1]!.beta / sched[first]!.beta;
    for (let e = first + 1; e <= last; e++) assert.ok(Math.abs(sched[e]!.beta / sched[e - 1]!.beta - ratio) < 1e-9);
  }
  assert.ok(Math.abs(csSchedule(4, 1, 200)[1]!.beta - 200 ** (1 / 3)) < 1e-9);
  assert.deepEqual(csSchedule(2, 3, 50), [{ round: 0, beta: 50 }, { round: 1, beta: 50 }]);
});

Deno.test("cs - between rounds s ← min(beta·s, s0) with the round's final beta", () => {
  const { net } = smallNet(MLP, [6, 1, 1]);
  const cs = new ContinuousSparsification(
    net,
    settingsOf(csMethod, { s0: 0.1, beta_final: 8, rounds: 2 }),
    UNIT_SGD,
  );
  cs.beginEpoch(0, 4);
  cs.beginEpoch(1, 4);
  assert.equal(cs.beta, 8);
  cs.s[0]!.set([-0.5, 0.001, 0.05, 0.3]);
  cs.beginEpoch(2, 4);
  assert.equal(cs.beta, 1);
  assert.deepEqual([...cs.s[0]!.subarray(0, 4)].map((v) => Number(v.toFixed(6))), [-4, 0.008, 0.1, 0.1]);
  assert.deepEqual([...cs.binaryMask(0).subarray(0, 4)], [0, 1, 1, 1]);
});

Deno.test("edge-popup - exactly the top-k fraction of each layer is kept, by |score|", () => {
  const { net } = smallNet({ ...MLP, widths: [37] }, [13, 1, 1]);
  for (const k of [0.05, 0.3, 0.5, 0.99]) {
    const ep = new EdgePopup(net, settingsOf(edgePopupMethod, { k }), UNIT_SGD, new Rng(5));
    const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
    ep.effectiveWeights(weff);
    net.maskedParams.forEach((layer, l) => {
      const m = ep.binaryMask(l), s = ep.scores[l]!;
      const kept = m.reduce((a, v) => a + v, 0);
      assert.equal(kept, keptCount(m.length, k));
      assert.equal(kept, layer.w.length - Math.floor((1 - k) * layer.w.length));
      let minKept = Infinity, maxDropped = -Infinity;
      for (let i = 0; i < s.length; i++) {
        if (m[i]) minKept = Math.min(minKept, Math.abs(s[i]!));
        else maxDropped = Math.max(maxDropped, Math.abs(s[i]!));
        assert.equal(weff[l]![i], m[i] ? layer.w[i] : 0);
      }
      assert.ok(minKept >= maxDropped);
    });
  }
  // ties at the threshold are resolved to the exact count
  const out = new Uint8Array(6);
  topKMask(Float32Array.from([1, 1, 1, 1, 0.5, 2]), 0.5, out, new Float32Array(6));
  assert.deepEqual([...out], [1, 1, 0, 0, 0, 1]);
});

Deno.test("edge-popup - the gradient passes straight through to every score: sign(s)·dL/dWeff·W", () => {
  const { net, x, y, b } = smallNet(MLP, [6, 1, 1]);
  const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  const dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(dweff);
  const ep = new EdgePopup(net, settingsOf(edgePopupMethod, { k: 0.5 }), UNIT_SGD, new Rng(5));
  const before = ep.scores.map((s) => Float32Array.from(s));
  ep.beginEpoch(0, 1);
  ep.effectiveWeights(weff);
  net.forward(x, b, true);
  net.crossEntropy(y, b, true);
  net.backward(b);
  ep.applyGradients(dweff);
  let prunedWithGradient = 0;
  net.maskedParams.forEach((layer, l) => {
    const m = ep.binaryMask(l);
    for (let i = 0; i < layer.w.length; i++) {
      const expected = Math.sign(before[l]![i]!) * dweff[l]![i]! * layer.w[i]!;
      assert.ok(Math.abs(before[l]![i]! - ep.scores[l]![i]! - expected) < 1e-6);
      if (weff[l]![i] === 0 && expected !== 0) prunedWithGradient++;
    }
    void m;
  });
  assert.ok(prunedWithGradient > 0, "pruned weights receive gradient too");
});

Deno.test("methods - every method trains on the same frozen network, learns, leaves the weights untouched, and is reproducible", async () => {
  const spec = parseSpec(`name: all-methods
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates, hard-concrete, cs, edge-popup, dense]}
  lambda: {values: [0.001]}
  cs.lambda: {values: [1.0e-5]}
  k: {values: [0.5]}
  dense.lr: {values: [0.01]}
training: {epochs: 3, batch_size: 64}
`);
  const trials = expandTrials(spec);
  assert.deepEqual(trials.map((t) => t.config.method.name), ["gates", "hard-concrete", "cs", "edge-popup", "dense"]);
  // each method's own optimiser defaults, a scoped training override for dense only
  assert.deepEqual(trials.map((t) => [t.config.training.optimizer, t.config.training.lr, t.config.training.schedule]), [
    ["adam", 0.05, "constant"],
    ["adam", 0.05, "constant"],
    ["sgd", 0.1, "constant"],
    ["sgd", 0.1, "cosine"],
    ["adam", 0.01, "constant"],
  ]);
  for (const t of trials) {
    const a = await runTrial(t.config, createJsEngine());
    const b = await runTrial(t.config, createJsEngine());
    const name = t.config.method.name;
    assert.equal(a.accuracy, b.accuracy, name);
    assert.equal(a.ticket?.sha256, b.ticket?.sha256, name);
    // hard-concrete's test gates start at 0.5 and need more than 24 steps to reach 0 or 1: its soft gates learn,
    // while its binary ticket (test gate > 0) is still close to the whole random network
    const learned = name === "hard-concrete" ? a.soft_accuracy ?? a.accuracy : a.accuracy;
    assert.ok(learned > 0.5, `${name}: accuracy ${learned} on a 4-class task`);
    assert.ok(a.loss_curve[2]!.task_loss < a.loss_curve[0]!.task_loss, name);
    assert.deepEqual(a.masked_layers, ["fc1", "fc2"]);
    if (name === "dense") assert.ok(a.ticket === null && a.sparsity === 0);
    if (name === "edge-popup") assert.ok(Math.abs(a.sparsity - 0.5) < 0.01);
  }
});

Deno.test("methods - the frozen weights are a pure function of the model config, untouched by training", async () => {
  const spec = parseSpec(`name: frozen
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates, hard-concrete, cs, edge-popup]}
training: {epochs: 1, batch_size: 64}
`);
  const trials = expandTrials(spec);
  const { train } = await loadDataset(trials[0]!.config.dataset);
  const build = () => buildNet(trials[0]!.config.model, train.shape, train.classes, createJsEngine());
  const bytesOf = (net: Net) => net.params.map((p) => new Uint8Array(p.w.slice().buffer));
  const built = bytesOf(build());
  assert.deepEqual(bytesOf(build()), built, "two builds of one model config");
  const { kernels } = await loadKernels();
  const bs = 64, x = train.x.subarray(0, bs * train.dim), y = train.y.subarray(0, bs);
  for (const k of kernels ? [null, kernels] : [null]) {
    for (const t of trials) {
      const what = `${t.config.method.name}, ${k ? "native kernels" : "TypeScript loops"}`;
      const net = build();
      const method = createMethod(t.config, net, new Rng(t.config.seed, 2), k);
      const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
      const dweff = net.maskedParams.map((l) => new Float32Array(l.w.length));
      net.useEffectiveWeights(weff);
      net.useGradients(dweff);
      method.beginEpoch(0, 1);
      const first = method.penalty();
      for (let step = 0; step < 5; step++) { // the trainer's step (TrialRun.train)
        method.effectiveWeights(weff);
        net.forward(x, bs, true);
        net.crossEntropy(y, bs, true);
        net.backward(bs);
        method.applyGradients(dweff);
      }
      assert.ok(dweff.some((g) => g.some((v) => v !== 0)), `${what}: no gradient reached the method`);
      if (t.config.method.name !== "edge-popup") assert.notEqual(method.penalty(), first, `${what}: nothing learned`);
      assert.deepEqual(bytesOf(net), built, `${what}: the frozen weights changed`);
    }
  }
});
