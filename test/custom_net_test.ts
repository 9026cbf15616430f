// model.architecture: custom (src/train/nets/custom.ts): built-ins written as layers build the same tensors and
// frozen weights, random valid stacks have exact gradients, bad stacks are one line each at their line and column,
// and a custom two-conv network trains in a sweep whose ticket verifies and loads in NumPy.
import assert from "node:assert/strict";
import { parse } from "yaml";
import { assertClose, finiteDiff, lossOf, spread, UNIT_SGD } from "./_nets.ts";
import { ROOT, sweepInProcess } from "./_fixtures.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { parseSpec } from "../src/spec/load.ts";
import { ModelSchema, TrialConfigSchema } from "../src/spec/schema.ts";
import { expandTrials, sweepIdOf } from "../src/spec/expand.ts";
import { exportPortable } from "../src/ticket/export.ts";
import { readTicket } from "../src/ticket/format.ts";
import { unpackMasks } from "../src/ticket/bits.ts";
import { verifyTicket } from "../src/ticket/verify.ts";
import { loadDataset } from "../src/train/data/load.ts";
import { buildNet } from "../src/train/nets/build.ts";
import type { Net } from "../src/train/nets/net.ts";
import { checkTrialLimits, DEFAULT_LIMITS, trialCost } from "../src/worker/limits.ts";
import { comparabilityIssues, settingsDiff, sweepSettings } from "../src/report/settings.ts";
import { Rng } from "../src/util/rng.ts";

const build = (model: Record<string, unknown>, shape: number[], classes = 10): Net =>
  buildNet(ModelSchema.parse(model), shape, classes, createJsEngine());

/** Both nets hold the same tensors (names, shapes, masked, frozen values) and give the same logits. */
function assertSameNet(a: Net, b: Net, what: string): void {
  assert.deepEqual(a.params.map((p) => [p.name, p.shape, p.masked]), b.params.map((p) => [p.name, p.shape, p.masked]));
  a.params.forEach((p, i) => assert.deepEqual(p.w, b.params[i]!.w, `${what}: frozen weights of ${p.name}`));
  const n = 3, x = new Float32Array(n * a.inputSize);
  new Rng(4).fillNormal(x);
  assert.deepEqual(a.forward(x, n, false), b.forward(x, n, false), `${what}: logits`);
}

/** The README's example of a custom network (its `yaml` block with `architecture: custom`). */
async function readmeModel(): Promise<Record<string, unknown>> {
  const text = await Deno.readTextFile(`${ROOT}README.md`);
  const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) =>
    b.includes("architecture: custom")
  );
  assert.ok(block, "README.md shows a custom network in a ```yaml block");
  return (parse(block) as { model: Record<string, unknown> }).model;
}

Deno.test("custom nets - Conv-2 (the README's), LeNet-300-100 and ResNet-20 written as layers are the built-ins: same tensors, frozen weights, logits", async () => {
  const readme = await readmeModel();
  const init = readme.init ?? "uniform";
  assertSameNet(build(readme, [28, 28, 1]), build({ architecture: "conv2", init }, [28, 28, 1]), "Conv-2");
  const lenet = ["flatten", { linear: 300 }, "relu", { linear: 100 }, "relu", { linear: "classes" }];
  for (const weight_seed of [0, 3]) {
    assertSameNet(
      build({ architecture: "custom", layers: lenet, weight_seed, init: "kaiming_normal" }, [28, 28, 1]),
      build({ architecture: "mlp", weight_seed, init: "kaiming_normal" }, [28, 28, 1]),
      `LeNet-300-100, weight seed ${weight_seed}`,
    );
  }
  // ResNet-20: residual blocks by reference, option-A shortcuts, names given where the built-in's differ
  const block = (c: number, stride = 1) => [
    { conv2d: { channels: c, stride } },
    "batch_norm",
    "relu",
    { conv2d: c },
    "batch_norm",
  ];
  const stage = (s: number, c: number) =>
    [1, 2, 3].map((b) => ({
      residual: {
        block: s > 1 && b === 1 ? `in${c}` : `b${c}`,
        shortcut: s > 1 && b === 1 ? "option_a" : "identity",
        relu: true,
        name: `stage${s}.block${b}`,
      },
    }));
  const resnet = {
    architecture: "custom",
    init: "kaiming_normal",
    blocks: { b16: block(16), in32: block(32, 2), b32: block(32), in64: block(64, 2), b64: block(64) },
    layers: [
      { conv2d: 16 },
      "batch_norm",
      "relu",
      ...stage(1, 16),
      ...stage(2, 32),
      ...stage(3, 64),
      "global_avg_pool",
      { linear: { units: "classes", name: "fc" } },
    ],
  };
  assertSameNet(
    build(resnet, [8, 8, 3]),
    build({ architecture: "resnet20", init: "kaiming_normal" }, [8, 8, 3]),
    "ResNet-20",
  );
});

/** A random valid stack on 6×6×2 images: a convolution, a residual block of one of three kinds, pooling, a head. */
function randomStack(seed: number): Record<string, unknown> {
  const rng = new Rng(seed);
  const pick = <T>(a: T[]): T => a[rng.int(a.length)]!;
  const ch = 3 + rng.int(2);
  const blocks: Record<string, unknown[]> = {};
  const layers: unknown[] = [{ conv2d: { channels: ch, kernel: pick([1, 3]) } }, pick(["relu", "gelu", "batch_norm"])];
  const residual = rng.int(3);
  if (residual === 0) { // identity shortcut
    blocks.body = [{ conv2d: ch }, pick(["batch_norm", "layer_norm"]), "relu", { conv2d: ch }];
    layers.push({ residual: { block: "body", relu: rng.int(2) === 1 } });
  } else if (residual === 1) { // strided, more channels: option A
    blocks.body = [{ conv2d: { channels: ch + 2, stride: 2 } }, "batch_norm"];
    layers.push({ residual: { block: "body", shortcut: "option_a", relu: true } });
  } else { // a projection block as the shortcut
    blocks.body = [{ conv2d: ch + 1 }, "gelu"];
    blocks.proj = [{ conv2d: { channels: ch + 1, kernel: 1 } }];
    layers.push({ residual: { block: "body", shortcut: "proj" } });
  }
  layers.push(
    pick([{ max_pool: { size: 2, stride: pick([1, 2]) } }, { avg_pool: { size: pick([2, 3]), stride: pick([1, 2]) } }]),
  );
  if (rng.int(2)) layers.push("flatten", { linear: 4 + rng.int(4) }, pick(["relu", "gelu", "layer_norm"]));
  else layers.push("global_avg_pool");
  layers.push({ linear: "classes" });
  return { architecture: "custom", init: "kaiming_normal", layers, blocks };
}

Deno.test("custom nets - gradients of random valid stacks (conv, pools, norms, GELU, three kinds of residual) match finite differences", () => {
  const kinds = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const model = randomStack(seed);
    const net = build(model, [6, 6, 2], 3);
    const b = 4, x = new Float32Array(b * 72), y = Uint8Array.from({ length: b }, (_, i) => i % 3);
    new Rng(9 + seed).fillNormal(x);
    const weff = net.maskedParams.map((p) => Float32Array.from(p.w));
    const grads = net.maskedParams.map((p) => new Float32Array(p.w.length));
    net.useEffectiveWeights(weff);
    net.useGradients(grads);
    net.forward(x, b, true);
    net.crossEntropy(y, b, true);
    net.backward(b);
    const analytic: number[] = [], numeric: number[] = [];
    net.maskedParams.forEach((p, l) => {
      const idx = spread(p.w.length, 6);
      analytic.push(...idx.map((i) => grads[l]![i]!));
      numeric.push(...finiteDiff(weff[l]!, idx, () => lossOf(net, x, y, b), 1e-3));
    });
    const what = JSON.stringify(model.layers);
    assertClose(analytic, numeric, what);
    for (const l of model.layers as unknown[]) kinds.add(typeof l === "string" ? l : JSON.stringify(l).split('"')[1]!);
    // the worker's cost walk sees the tensors the build makes
    const cost = trialCost(TrialConfigSchema.parse({
      dataset: { name: "synthetic" },
      model,
      method: {},
      training: UNIT_SGD,
      backend: "js",
      seed: 0,
    }));
    const on8 = build(model, [8, 8, 1], 4);
    assert.deepEqual(cost.tensors.map((t) => [t.name, t.shape]), on8.params.map((p) => [p.name, p.shape]), what);
  }
  // the seeds cover every pooling and both heads
  for (const k of ["max_pool", "avg_pool", "flatten", "global_avg_pool", "residual"]) assert.ok(kinds.has(k), k);
});

const SPEC_HEAD = "version: 1\nname: custom\ndataset: {name: mnist, train: 1000, test: 200}\nmodel:\n" +
  "  architecture: custom\n";

/** The problems of a spec: `line:column path: message`, one per line. */
function problems(model: string): string[] {
  try {
    parseSpec(SPEC_HEAD + model, "s.yaml");
  } catch (e) {
    return (e as Error).message.split("\n").slice(1).map((l) => l.trim().replace(/^s\.yaml:/, ""));
  }
  return [];
}

Deno.test("custom nets - a bad stack is refused at its line and column, one clear line per problem", () => {
  assert.deepEqual(
    problems(
      "  blocks:\n    b: [conv2d: 8, batchnorm]\n  layers:\n    - conv2d: {channels: 8, stide: 2}\n    - relu: 3\n" +
        "    - linear: -2\n    - {linear: 3, relu: null}\n",
    ),
    [
      "7:20 model.blocks.b.1: unknown layer 'batchnorm': did you mean 'batch_norm'? (layers: relu, gelu, flatten, " +
      "batch_norm, layer_norm, global_avg_pool, linear, conv2d, max_pool, avg_pool, residual)",
      "9:15 model.layers.0.conv2d: unknown setting 'stide' of conv2d: did you mean 'stride'? (allowed: channels, " +
      "kernel, stride, padding, name)",
      "10:13 model.layers.1.relu: relu has no settings: write it as `- relu`, found 3",
      "11:15 model.layers.2.linear: expected a positive integer or 'classes' (the dataset's classes), found -2",
      "12:7 model.layers.3: a layer is a name (relu) or one mapping such as `conv2d: 32` or `conv2d: {channels: " +
      "32, kernel: 5}`; found a mapping of linear, relu",
    ],
  );
  // blocks: unknown, containing themselves; weight names used twice
  assert.deepEqual(
    problems(
      "  blocks:\n    a: [conv2d: 8, residual: b]\n    b: [residual: a]\n  layers:\n    - conv2d: 8\n" +
        "    - residual: {block: a}\n    - residual: {block: c}\n    - {linear: {units: 10, name: conv1}}\n",
    ),
    [
      "8:19 model.blocks.b.0.residual.block: block 'a' contains itself (a → b → a): a network is finite",
      "12:25 model.layers.2.residual.block: no block 'c' in model.blocks (blocks: a, b)",
      "13:7 model.layers.3: weight name 'conv1' is used twice (first at model.layers.0); give one of them another " +
      "`name:`",
    ],
  );
  // shapes, on the dataset's 28×28×1 images
  assert.deepEqual(problems("  layers: [conv2d: 8, flatten, conv2d: 8, linear: classes]\n"), [
    "6:32 model.layers.2: conv2d: needs images [H, W, C], found 6272 (after a flatten or pooling to vectors?)",
  ]);
  assert.deepEqual(
    problems("  blocks: {down: [conv2d: {channels: 16, stride: 2}]}\n  layers: [conv2d: 8, residual: down]\n"),
    [
      "7:23 model.layers.1: residual: block 'down' turns 28×28×8 into 14×14×16, but the identity shortcut keeps " +
      "28×28×8; use `shortcut: option_a` or a projection block",
    ],
  );
  assert.deepEqual(problems("  layers: [conv2d: {channels: 4, kernel: 31, padding: 0}, linear: classes]\n"), [
    "6:12 model.layers.0: conv2d: a 31×31 kernel does not fit 28×28×1 inputs padded by 0",
  ]);
  assert.deepEqual(problems("  layers: [flatten, linear: 12]\n"), [
    "6:21 model.layers.1: the network ends in 12 values, expected 10 (the dataset's classes): end with " +
    "`linear: classes`",
  ]);
  assert.deepEqual(problems("  layers: [flatten, linear: 70000, linear: classes]\n"), [
    "6:29 model.layers.1.linear: expected at most 65,536 (limits.max_width), found 70,000; lower it, or raise the " +
    "limit with `limits: { max_width: N }`",
  ]);
  // layers belong to custom, and custom needs them
  assert.deepEqual(problems("  widths: [3]\n"), [
    "5:17 model.architecture: architecture custom needs `layers:`, a list such as [conv2d: 32, relu, max_pool, " +
    "flatten, linear: classes]",
  ]);
  assert.throws(
    () => parseSpec("name: x\nmodel: {architecture: mlp, layers: [relu]}\n", "s.yaml"),
    /s\.yaml:2:36 model\.layers: `layers` is for `architecture: custom`, found it with architecture mlp; drop it or set architecture: custom/,
  );
});

Deno.test("custom nets - an empty stack and names of Object's prototype (toString, constructor) are spec problems, not crashes", () => {
  assert.deepEqual(problems("  layers: []\n"), ["6:11 model.layers: expected at least one layer"]);
  const layers = "(layers: relu, gelu, flatten, batch_norm, layer_norm, global_avg_pool, linear, conv2d, max_pool, " +
    "avg_pool, residual)";
  assert.deepEqual(problems("  layers: [toString: 5, flatten, linear: classes]\n"), [
    `6:22 model.layers.0.toString: unknown layer 'toString' ${layers}`,
  ]);
  assert.deepEqual(problems("  layers: [constructor, flatten, linear: classes]\n"), [
    `6:12 model.layers.0: unknown layer 'constructor' ${layers}`,
  ]);
  assert.deepEqual(
    problems("  blocks: {a: [relu]}\n  layers: [residual: {block: toString}, flatten, linear: classes]\n"),
    [
      "7:30 model.layers.0.residual.block: no block 'toString' in model.blocks (blocks: a)",
    ],
  );
});

Deno.test("custom nets - a block named __proto__ is one clear line, wherever it is named", () => {
  const proto = "__proto__ cannot name a block (JavaScript objects reserve it): rename the block, e.g. proto_block";
  const uses = "  layers: [residual: __proto__, flatten, linear: classes]\n";
  assert.deepEqual(problems(`  blocks: {__proto__: [relu]}\n${uses}`), [`6:23 model.blocks.__proto__: ${proto}`]);
  assert.deepEqual(problems("  blocks: {__proto__: {a: 1}, b: [relu]}\n"), [`6:23 model.blocks.__proto__: ${proto}`]);
  assert.deepEqual(problems(uses), [`6:22 model.layers.0.residual.block: ${proto}`]);
});

/** ticketsweep's own test logits for a ticket (js engine, calibrated as trials evaluate). */
async function ticketLogits(ticket: string): Promise<Float32Array> {
  const { manifest, bits } = await readTicket(ticket);
  const { train, test } = await loadDataset(manifest.config.dataset);
  const net = buildNet(manifest.config.model, train.shape, train.classes, createJsEngine());
  const masks = unpackMasks(bits, net.maskedParams.map((l) => l.w.length));
  net.useEffectiveWeights(net.maskedParams.map((l, i) => l.w.map((v, j) => v * masks[i]![j]!)));
  net.calibrate(train);
  return net.forward(test.x, test.n, false).slice();
}

Deno.test("custom nets - a two-conv network with a residual block trains in a sweep; its ticket verifies and NumPy rebuilds its logits from the export", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsweep-custom-" });
  try {
    const text = `version: 1
name: custom-two-conv
dataset: {name: synthetic, train: 512, test: 128}
model:
  architecture: custom
  init: kaiming_normal
  blocks:
    down: [conv2d: {channels: 8, stride: 2}, batch_norm]
  layers:
    - conv2d: 4
    - relu
    - residual: {block: down, shortcut: option_a, relu: true}
    - avg_pool: {size: 2, stride: 1}
    - flatten
    - linear: 16
    - gelu
    - layer_norm
    - max_pool
    - linear: classes
parameters:
  lambda: {values: [1.0e-3]}
training: {epochs: 4, batch_size: 32, lr: 0.1}
tickets: {cuts: 0}
`;
    assert.throws(() => parseSpec(text, "t.yaml"), /t\.yaml:18:7 model\.layers\.8: max_pool: needs images/);
    const run = await sweepInProcess(text.replace("    - max_pool\n", ""), dir);
    const tickets = [...Deno.readDirSync(`${run}/tickets`)].map((e) => `${run}/tickets/${e.name}`);
    assert.equal(tickets.length, 1);
    const ticket = tickets[0]!;
    const { manifest } = await readTicket(ticket);
    assert.deepEqual(manifest.layers.map((l) => l.name), ["conv1", "res1.conv1", "fc1", "fc2"]);
    assert.ok(manifest.result.accuracy > 0.5, `it learned: accuracy ${manifest.result.accuracy} (4 classes)`);
    const v = await verifyTicket(ticket, createJsEngine());
    assert.ok(v.ok, JSON.stringify(v.checks));

    const out = `${dir}/out`;
    const written = await exportPortable(ticket, out, "npz");
    const doc = JSON.parse(await Deno.readTextFile(written.manifest));
    assert.deepEqual(doc.ops.map((o: { op: string }) => o.op), [
      "conv2d",
      "relu",
      "residual",
      "avg_pool",
      "flatten",
      "linear",
      "gelu",
      "layer_norm",
      "linear",
    ]);
    assert.deepEqual(doc.ops[2].shortcut, [{ op: "shortcut_a", channels: 8 }]);
    const res = await new Deno.Command("python3", {
      args: [`${ROOT}tools/ticket_forward.py`, out, `--logits=${out}/logits.npy`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, said);
    assert.match(said, /^reproduced$/m);
    const npy = await Deno.readFile(`${out}/logits.npy`);
    const theirs = new Float32Array(npy.slice(10 + new DataView(npy.buffer).getUint16(8, true)).buffer);
    const mine = await ticketLogits(ticket);
    assert.equal(theirs.length, mine.length);
    let worst = 0;
    for (let i = 0; i < mine.length; i++) {
      worst = Math.max(worst, Math.abs(theirs[i]! - mine[i]!) / Math.max(1, Math.abs(mine[i]!)));
    }
    assert.ok(worst <= 1e-4, `NumPy's logits differ from ticketsweep's by up to ${worst}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("custom nets - the sweeps/ custom example parses, fits every worker limit, and changes no built-in spec's id", async () => {
  const spec = parseSpec(await Deno.readTextFile(`${ROOT}sweeps/custom-two-conv.yaml`), "custom-two-conv.yaml");
  assert.equal(spec.model.architecture, "custom");
  const trials = expandTrials(spec);
  for (const t of trials) assert.equal(checkTrialLimits(t.config, DEFAULT_LIMITS, 2e9), null, t.id);
  // a report shows the layers, and a comparison with another stack says the networks differ
  const settings = sweepSettings("a", "a-1", trials);
  assert.equal(
    settings.values["model.layers"],
    "conv2d 8 (k3 s1 p1), relu, max_pool 2/2, conv2d 16 (k3 s1 p1), relu, max_pool 2/2, flatten, linear 64, relu, " +
      "linear classes",
  );
  const wider = trials.map((t) => ({
    ...t,
    config: {
      ...t.config,
      model: {
        ...t.config.model,
        layers: [{ conv2d: { channels: 32, kernel: 3, stride: 1, padding: 1 } }, ...t.config.model.layers!.slice(1)],
      },
    },
  }));
  const issues = comparabilityIssues(settingsDiff([settings, sweepSettings("b", "b-1", wider)]));
  assert.deepEqual(issues.map((i) => [i.what, i.settings.map((s) => s.setting)]), [["network", ["model.layers"]]]);
  // a spec without layers parses to no `layers` or `blocks` keys: its hashed form (and id) is what it was before
  // custom networks existed (the ids below are those of commit 31d83bb)
  const plain = parseSpec("name: plain\n", "p.yaml");
  assert.ok(!("layers" in plain.model) && !("blocks" in plain.model));
  for (const [f, id] of [["quickstart", "quickstart-bcbebf10"], ["mnist-fc-methods", "mnist-fc-methods-ec68bd68"]]) {
    assert.equal(sweepIdOf(parseSpec(await Deno.readTextFile(`${ROOT}sweeps/${f}.yaml`), f)), id);
  }
});
