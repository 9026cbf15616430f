/**
 * One conformance suite for every registered mask method (src/train/masks/registry.ts): a method gets all of it
 * by registering. Per method: its gradient against finite differences (every variant of its enum settings), its
 * native kernels against its TypeScript loops bit for bit (when it registers any), its ticket rule (the ticket
 * is its own cut, a pure function of its parameters; the cuts nest), a packed run equal to a separate one,
 * a reproducible ticket hash with and without native kernels, the frozen weights untouched, and a falling loss.
 * Small nets and few steps: the suite stays fast.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { assertClose, finiteDiff, sameBits, smallNet, UNIT_SGD } from "./_nets.ts";
import { createBlasEngine } from "../src/engine/blas.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { type FusedKernels, loadKernels, registeredKernelNames } from "../src/engine/native.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { ModelSchema, type TrainingConfig, TrialTrainingSchema } from "../src/spec/schema.ts";
import { buildLadder, cutValues } from "../src/train/ladder.ts";
import type { MaskMethod, MethodDefinition } from "../src/train/masks/method.ts";
import { METHOD_DEFINITIONS, ownSettings } from "../src/train/masks/registry.ts";
import { buildNet } from "../src/train/nets/build.ts";
import type { FrozenNet } from "../src/train/nets/net.ts";
import type { TrialMetrics } from "../src/train/result.ts";
import { runTrial, runTrials } from "../src/train/trial.ts";
import { Rng } from "../src/util/rng.ts";

const { kernels } = await loadKernels();

/** The field's enum options, when it is an enum (through its default / optional wrappers). */
function enumOptions(t: z.ZodTypeAny): string[] | null {
  let u = t;
  while (u instanceof z.ZodDefault || u instanceof z.ZodOptional) {
    u = u instanceof z.ZodDefault ? u.removeDefault() : u.unwrap();
  }
  return u instanceof z.ZodEnum ? [...u.options] as string[] : null;
}

/**
 * The settings the suite runs a method at: its defaults (with a penalty weight large enough to matter, where it
 * has one), then each other option of each enum setting, one at a time.
 */
function variants(def: MethodDefinition): Record<string, unknown>[] {
  const base: Record<string, unknown> = "lambda" in def.fields ? { lambda: 0.05 } : {};
  const out = [ownSettings(def, base)];
  for (const [field, t] of Object.entries(def.fields)) {
    const options = enumOptions(t);
    if (!options) continue;
    for (const o of options) if (o !== out[0]![field]) out.push(ownSettings(def, { ...base, [field]: o }));
  }
  return out;
}

const label = (v: Record<string, unknown>) => JSON.stringify(v);
/** Asserts two float32 (or byte) arrays hold the same bits (signed zeros too), naming the first difference. */

function make(
  def: MethodDefinition,
  net: FrozenNet,
  config: Record<string, unknown>,
  training: TrainingConfig,
  kernels: FusedKernels | null = null,
): MaskMethod {
  return def.create({ net, config, training, rng: new Rng(1, 2), kernels });
}

/** Moves every parameter off its initial value by `scale·N(0, 1)` (the same draws each time), as training would. */
function jitter(m: MaskMethod, scale: number): void {
  const rng = new Rng(77);
  for (const p of m.params) {
    const e = new Float32Array(p.length);
    rng.fillNormal(e);
    for (let i = 0; i < p.length; i++) p[i] = p[i]! + scale * e[i]!;
  }
}

/** Random gradients for the effective weights, scaled. */
function randomGrads(net: FrozenNet, rng: Rng, scale: number): Float32Array[] {
  return net.maskedParams.map((l) => {
    const g = new Float32Array(l.w.length);
    rng.fillNormal(g);
    for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
    return g;
  });
}

/** A trial config per method of `names`, sharing network, data and seed (so that they pack). */
function trialConfigs(names: string[]) {
  const spec = parseSpec(`version: 1
name: conformance
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [24], init: signed_constant}
parameters:
  method: {values: [${names.join(", ")}]}
training: {epochs: 2, batch_size: 64}
`);
  return expandTrials(spec).map((t) => t.config);
}

/** Everything of a result but its timings. */
const outcome = (m: TrialMetrics) => ({
  accuracy: m.accuracy,
  soft_accuracy: m.soft_accuracy,
  sparsity: m.sparsity,
  ticket: m.ticket?.sha256 ?? null,
  cuts: m.cuts ?? null,
  curve: m.loss_curve,
  layers: m.layers,
  steps: m.steps,
});

Deno.test("conformance - the registry holds every method, each with its spec fields, defaults and ladder rule", () => {
  const names = METHOD_DEFINITIONS.map((d) => d.name);
  for (const n of ["gates", "hard-concrete", "cs", "edge-popup", "dense"]) assert.ok(names.includes(n), n);
  assert.equal(new Set(names).size, names.length);
  for (const d of METHOD_DEFINITIONS) {
    assert.deepEqual(ownSettings(d, {}), z.object(d.fields).parse({}), `${d.name}: every field has a default`);
    assert.ok(d.summary.length > 0);
  }
});

for (const def of METHOD_DEFINITIONS) {
  const name = def.name;

  Deno.test(`conformance ${name} - gradient of (loss + penalty) matches finite differences, every variant`, () => {
    const { net } = smallNet({ architecture: "mlp", widths: [5], init: "kaiming_normal", weight_seed: 3 }, [6, 1, 1]);
    const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
    // a linear task loss Σ c·weff: d/d(weff) is c wherever it is taken, so straight-through estimators compare too
    const c = randomGrads(net, new Rng(5), 1);
    for (const v of variants(def)) {
      const fresh = () => {
        const m = make(def, net, v, UNIT_SGD);
        jitter(m, 0.1);
        m.beginEpoch(0, 10);
        return m;
      };
      const lossOf = (m: MaskMethod) => {
        if (m.relaxedWeights) m.relaxedWeights(weff);
        else m.effectiveWeights(weff);
        let s = 0;
        weff.forEach((w, l) => w.forEach((x, i) => (s += c[l]![i]! * x)));
        return s + m.penalty();
      };
      const probe = fresh();
      const numeric = probe.params.flatMap((p, l) =>
        finiteDiff(p, Array.from(p, (_, i) => i), () => {
          const m = fresh();
          m.params[l]!.set(p);
          return lossOf(m);
        }, 1e-3)
      );
      const m = fresh();
      const before = m.params.map((p) => Float32Array.from(p));
      m.effectiveWeights(weff);
      m.applyGradients(c);
      const analytic = m.params.flatMap((p, l) => Array.from(p, (x, i) => before[l]![i]! - x));
      assert.ok(analytic.length >= 8 && analytic.some((g) => g !== 0), `${name} ${label(v)}: a gradient`);
      assertClose(analytic, numeric, `${name} ${label(v)}`, 0.999, 0.03);
    }
  });

  Deno.test(`conformance ${name} - native kernels, where registered, give the TypeScript loops' bits`, () => {
    if (!registeredKernelNames().includes(name)) return; // TypeScript loops only: nothing to compare
    assert.ok(kernels, "the native kernels must build here (deno task test installs gcc: tools/test_setup.ts)");
    assert.ok(kernels.registered.has(name), `${name}'s kernels are in the loaded library`);
    // one layer past 32,768 weights, where edge-popup's kernel selects by a sampled bracket
    const net = buildNet(
      ModelSchema.parse({ widths: [48], init: "signed_constant" }),
      [28, 28, 1],
      10,
      createJsEngine(),
    );
    for (const optimizer of ["adam", "sgd"] as const) {
      const training = TrialTrainingSchema.parse({ ...def.training, optimizer });
      for (const v of variants(def)) {
        const what = `${name} ${optimizer} ${label(v)}`;
        const frozen = net.maskedParams.map((l) => Float32Array.from(l.w));
        const ts = make(def, net, v, training), cc = make(def, net, v, training, kernels);
        const a = net.maskedParams.map((l) => new Float32Array(l.w.length)), b = a.map((x) => x.slice());
        const g = new Rng(9);
        for (let step = 0; step < 3; step++) {
          ts.beginEpoch(step, 3);
          cc.beginEpoch(step, 3);
          ts.effectiveWeights(a);
          cc.effectiveWeights(b);
          a.forEach((x, l) => sameBits(x, b[l]!, `${what}: weff, step ${step}, layer ${l}`));
          const grads = randomGrads(net, g, 1e-2);
          ts.applyGradients(grads);
          cc.applyGradients(grads);
          ts.params.forEach((p, l) => sameBits(p, cc.params[l]!, `${what}: parameters, step ${step}, layer ${l}`));
        }
        assert.equal(ts.penalty(), cc.penalty(), what);
        net.maskedParams.forEach((l, i) => sameBits(l.w, frozen[i]!, `${what}: the frozen weights are never written`));
        net.maskedParams.forEach((_, l) => sameBits(ts.binaryMask(l), cc.binaryMask(l), `${what}: ticket, layer ${l}`));
      }
    }
  });

  Deno.test(`conformance ${name} - the ticket is its own cut, a function of its parameters, and the cuts nest`, () => {
    const { net } = smallNet({ architecture: "mlp", widths: [24, 12], init: "signed_constant" }, [8, 1, 1]);
    const training = TrialTrainingSchema.parse(def.training);
    for (const v of variants(def)) {
      const what = `${name} ${label(v)}`;
      const m = make(def, net, v, training);
      const weff = net.maskedParams.map((l) => new Float32Array(l.w.length));
      const g = new Rng(3);
      for (let step = 0; step < 3; step++) {
        m.beginEpoch(step, 3);
        m.effectiveWeights(weff);
        m.applyGradients(randomGrads(net, g, 1));
      }
      jitter(m, 0.3); // spread the parameters, as a longer training would
      const sizes = net.maskedParams.map((l) => l.w.length);
      if (def.ladder === null) {
        assert.ok(m.trainsWeights && m.cuts === undefined, `${what}: no ladder, and it trains the weights`);
        net.maskedParams.forEach((_, l) => assert.ok(m.binaryMask(l).every((x) => x === 1), `${what}: keeps all`));
        continue;
      }
      assert.equal(m.trainsWeights, false, what);
      const rule = m.cuts!;
      assert.equal(rule.rule, def.ladder, `${what}: the declared ladder rule`);
      // a fresh instance given the same parameters gives the same ticket: nothing else decides it
      const copy = make(def, net, v, training);
      copy.params.forEach((p, l) => p.set(m.params[l]!));
      net.maskedParams.forEach((_, l) => {
        const own = m.binaryMask(l);
        assert.equal(own.length, sizes[l], what);
        sameBits(own, rule.mask(l, rule.own), `${what}: binaryMask is the cut at its own value`);
        sameBits(own, copy.binaryMask(l), `${what}: a function of the parameters alone`);
        if (rule.values) {
          const values = rule.values(l);
          for (const c of [rule.own, 0.25, 0.5]) {
            if (c < rule.own) continue;
            sameBits(rule.mask(l, c), Uint8Array.from(values, (x) => (x > c ? 1 : 0)), `${what}: values > ${c}`);
          }
        }
      });
      const cuts = cutValues(rule, sizes, "auto");
      assert.ok(cuts.length >= 2, `${what}: an automatic ladder (${cuts.length} cuts)`);
      const ladder = buildLadder(rule, sizes, cuts); // throws unless every cut nests in the ones before
      assert.ok(ladder);
      const kept = (ms: Uint8Array[]) => ms.reduce((n, x) => n + x.reduce((a, b) => a + b, 0), 0);
      const own = kept(net.maskedParams.map((_, l) => m.binaryMask(l)));
      assert.ok(ladder.cuts.every((c) => kept(c.masks) <= own), `${what}: every cut is at most as dense as the ticket`);
    }
  });

  Deno.test(`conformance ${name} - packed equals separate, and the ticket hash reproduces with and without native kernels`, async () => {
    const other = name === "dense" ? "gates" : "dense";
    const [cfg, otherCfg] = trialConfigs([name, other]);
    assert.equal(cfg!.method.name, name);
    const engine = (native: boolean) => {
      const e = createBlasEngine(1);
      e.kernels = native ? kernels : null;
      return e;
    };
    const alone = await runTrial(cfg!, engine(true));
    const again = await runTrial(cfg!, engine(true));
    const loops = await runTrial(cfg!, engine(false));
    const [packed] = await Promise.all(runTrials([{ cfg: cfg! }, { cfg: otherCfg! }], engine(true)));
    assert.deepEqual(outcome(again), outcome(alone), `${name}: reproducible`);
    assert.deepEqual(outcome(loops), outcome(alone), `${name}: the same with the TypeScript loops`);
    assert.deepEqual(outcome(packed!), outcome(alone), `${name}: packed with ${other} as alone`);
    const [first, last] = [alone.loss_curve[0]!, alone.loss_curve.at(-1)!];
    assert.ok(last.task_loss < first.task_loss, `${name} learns: task loss ${first.task_loss} → ${last.task_loss}`);
    if (def.ladder === null) assert.ok(!alone.ticket, `${name}: no ticket`);
    else assert.match(alone.ticket?.sha256 ?? "", /^[0-9a-f]{64}$/, `${name}: a ticket`);
  });
}
