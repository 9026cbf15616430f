import assert from "node:assert/strict";
import { createJsEngine } from "../src/engine/js.ts";
import { MethodSchema, ModelSchema, TrainingSchema } from "../src/spec/schema.ts";
import { BernoulliGates } from "../src/train/masks/gates.ts";
import { normCdf, normPdf } from "../src/train/masks/math.ts";
import { buildMlp, MlpPass } from "../src/train/nets/mlp.ts";
import { runTrial } from "../src/train/trial.ts";
import { Rng } from "../src/util/rng.ts";
import { tinySpec } from "./_fixtures.ts";
import { expandTrials } from "../src/spec/expand.ts";

Deno.test("gates - Phi is the standard normal CDF", () => {
  assert.ok(Math.abs(normCdf(0) - 0.5) < 1e-7);
  assert.ok(Math.abs(normCdf(1.959963985) - 0.975) < 1e-6);
  assert.ok(Math.abs(normCdf(-1) - (1 - normCdf(1))) < 1e-7);
  assert.ok(Math.abs(normCdf(-3) - 0.0013498980316) < 1e-7);
  // its derivative is the density
  const h = 1e-4;
  for (const x of [-2, -0.3, 0, 0.7, 1.5]) {
    assert.ok(Math.abs((normCdf(x + h) - normCdf(x - h)) / (2 * h) - normPdf(x)) < 1e-5);
  }
});

function smallSetup(lambda: number, fixedEps: Float32Array[]) {
  const net = buildMlp(ModelSchema.parse({ widths: [5], init: "kaiming_normal", weight_seed: 3 }), 6, 3);
  const method = MethodSchema.parse({ lambda, sigma: 0.5, mu_init: 0.5 });
  // SGD with lr 1 and no momentum: mu_new = mu_old - gradient, so the fused update exposes the gradient.
  const training = TrainingSchema.parse({ optimizer: "sgd", lr: 1, momentum: 0 });
  const gates = new BernoulliGates(net, method, training, new Rng(1), {
    noise: (l, eps) => eps.set(fixedEps[l]!),
  });
  return { net, gates };
}

Deno.test("gates - the clamp: z is 0 below 0, 1 above 1, mu + sigma·eps between", () => {
  const eps = [new Float32Array(30).fill(0), new Float32Array(15).fill(0)];
  eps[0]![0] = -10; // u far below 0
  eps[0]![1] = 10; // u far above 1
  const { net, gates } = smallSetup(0, eps);
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  gates.effectiveWeights(weff);
  const w = net.layers[0]!.w, mu = gates.mu[0]!;
  assert.equal(weff[0]![0], 0);
  assert.equal(weff[0]![1], w[1]);
  assert.ok(Math.abs(weff[0]![2]! - w[2]! * mu[2]!) < 1e-7);
});

Deno.test("gates - the gradient of loss + penalty matches central finite differences (noise fixed)", () => {
  const rng = new Rng(9);
  const eps = [new Float32Array(30), new Float32Array(15)];
  eps.forEach((e) => rng.fillNormal(e));
  const lambda = 0.05;
  const data = new Float32Array(4 * 6);
  rng.fillNormal(data);
  const y = Uint8Array.from([0, 1, 2, 1]);
  const { net, gates } = smallSetup(lambda, eps);
  // keep every u = mu + sigma·eps away from the clamp's kinks at 0 and 1
  gates.mu.forEach((mu, l) => {
    for (let i = 0; i < mu.length; i++) {
      const u = mu[i]! + 0.5 * eps[l]![i]!;
      if (Math.abs(u) < 0.02 || Math.abs(u - 1) < 0.02) eps[l]![i] = eps[l]![i]! + 0.1;
    }
  });
  const pass = new MlpPass(net, createJsEngine(), 4);
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  const dweff = net.layers.map((l) => new Float32Array(l.w.length));
  const dlogits = new Float32Array(4 * 3);
  const lossAt = () => {
    gates.effectiveWeights(weff);
    pass.forward(data, 4, weff);
    return pass.crossEntropy(y, 4).loss + gates.penalty();
  };
  const before = gates.mu.map((m) => Float32Array.from(m));
  const h = 1e-3;
  const numeric = gates.mu.map((mu) =>
    Array.from(mu, (_, i) => {
      const v = mu[i]!;
      mu[i] = v + h;
      const up = lossAt();
      mu[i] = v - h;
      const down = lossAt();
      mu[i] = v;
      return (up - down) / (2 * h);
    })
  );
  gates.effectiveWeights(weff);
  pass.forward(data, 4, weff);
  pass.crossEntropy(y, 4, dlogits);
  pass.backward(data, 4, weff, dlogits, dweff);
  gates.applyGradients(dweff);
  let checked = 0;
  gates.mu.forEach((mu, l) => {
    for (let i = 0; i < mu.length; i++) {
      const analytic = before[l]![i]! - mu[i]!;
      const fd = numeric[l]![i]!;
      assert.ok(Math.abs(analytic - fd) <= 2e-3 + 2e-2 * Math.abs(fd), `layer ${l} gate ${i}: ${analytic} vs ${fd}`);
      checked++;
    }
  });
  assert.equal(checked, 45);
});

Deno.test("gates - the penalty's gradient matches finite differences", () => {
  const { gates } = smallSetup(0.3, [new Float32Array(30), new Float32Array(15)]);
  const mu = gates.mu[0]!;
  for (const i of [0, 7, 19]) {
    mu[i] = -0.4 + 0.05 * i;
    const v = mu[i]!, h = 1e-2;
    mu[i] = v + h;
    const up = gates.penalty();
    mu[i] = v - h;
    const down = gates.penalty();
    mu[i] = v;
    const fd = (up - down) / (2 * h);
    assert.ok(Math.abs(fd - gates.penaltyGradient(0, i)) < 1e-4, `${fd} vs ${gates.penaltyGradient(0, i)}`);
  }
});

Deno.test("gates - frozen weights are bit-identical before and after training", async () => {
  const spec = tinySpec("frozen", 1);
  const trial = expandTrials(spec)[0]!;
  const net = buildMlp(trial.config.model, 64, 4);
  const snapshot = net.layers.map((l) => new Uint8Array(l.w.slice().buffer));
  const gates = new BernoulliGates(net, trial.config.method, trial.config.training, new Rng(0));
  const pass = new MlpPass(net, createJsEngine(), 8);
  const weff = net.layers.map((l) => new Float32Array(l.w.length));
  const dweff = net.layers.map((l) => new Float32Array(l.w.length));
  const x = new Float32Array(8 * 64), y = new Uint8Array(8), dl = new Float32Array(8 * 4);
  new Rng(4).fillNormal(x);
  for (let s = 0; s < 20; s++) {
    gates.effectiveWeights(weff);
    pass.forward(x, 8, weff);
    pass.crossEntropy(y, 8, dl);
    pass.backward(x, 8, weff, dl, dweff);
    gates.applyGradients(dweff);
  }
  net.layers.forEach((l, i) => assert.deepEqual(new Uint8Array(l.w.buffer), snapshot[i]));
  // and a full trial leaves a network rebuilt from the seed identical to a fresh one: weights are a pure
  // function of (architecture, initialiser, seed)
  await runTrial(trial.config, createJsEngine());
  const again = buildMlp(trial.config.model, 64, 4);
  again.layers.forEach((l, i) => assert.deepEqual(new Uint8Array(l.w.buffer), snapshot[i]));
});

Deno.test("gates - the same trial gives the same ticket twice; training learns the task", async () => {
  const trial = expandTrials(tinySpec("repro", 2))[0]!;
  const a = await runTrial(trial.config, createJsEngine());
  const b = await runTrial(trial.config, createJsEngine());
  assert.equal(a.ticket.sha256, b.ticket.sha256);
  assert.equal(a.accuracy, b.accuracy);
  assert.ok(a.accuracy > 0.6, `accuracy ${a.accuracy} on a 4-class task`);
  assert.equal(a.layers.length, 2);
  assert.ok(a.loss_curve.length === 3 && a.loss_curve[2]!.task_loss < a.loss_curve[0]!.task_loss);
});
