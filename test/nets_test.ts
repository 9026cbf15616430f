import assert from "node:assert/strict";
import { assertClose, finiteDiff, lossOf, smallNet, spread } from "./_nets.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { ModelSchema } from "../src/spec/schema.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { ReLU } from "../src/train/nets/layers/activation.ts";
import { Conv2d, GlobalAvgPool } from "../src/train/nets/layers/conv.ts";
import { Linear } from "../src/train/nets/layers/linear.ts";
import { BatchNorm } from "../src/train/nets/layers/norm.ts";
import { Residual, ShortcutA } from "../src/train/nets/layers/residual.ts";
import { param, Sequential } from "../src/train/nets/module.ts";
import { Net } from "../src/train/nets/net.ts";
import { Rng } from "../src/util/rng.ts";

/** The loss gradient with respect to every masked tensor matches central finite differences. */
function checkGradients(model: Record<string, unknown>, shape: number[], perLayer = 6, batch = 4): void {
  const { net, x, y, b } = smallNet(model, shape, 3, batch);
  checkNetGradients(net, x, y, b, perLayer, String(model.architecture));
}

function checkNetGradients(
  net: Net,
  x: Float32Array,
  y: Uint8Array,
  b: number,
  perLayer: number,
  what: string,
  cos = 0.999,
  rel = 0.03,
): void {
  const weff = net.maskedParams.map((p) => Float32Array.from(p.w));
  const grads = net.maskedParams.map((p) => new Float32Array(p.w.length));
  net.useEffectiveWeights(weff);
  net.useGradients(grads);
  net.forward(x, b, true);
  net.crossEntropy(y, b, true);
  net.backward(b);
  const analytic: number[] = [], numeric: number[] = [];
  net.maskedParams.forEach((p, l) => {
    const idx = spread(p.w.length, perLayer);
    analytic.push(...idx.map((i) => grads[l]![i]!));
    numeric.push(...finiteDiff(weff[l]!, idx, () => lossOf(net, x, y, b), 1e-3));
  });
  assertClose(analytic, numeric, what, cos, rel);
}

Deno.test("nets - MLP gradients match finite differences", () => {
  checkGradients({ architecture: "mlp", widths: [7, 5], init: "kaiming_normal" }, [6, 1, 1]);
});

Deno.test("nets - Conv-2 gradients (convolution, pooling) match finite differences", () => {
  checkGradients({ architecture: "conv2", init: "kaiming_normal" }, [6, 6, 2]);
});

Deno.test("nets - ResNet-20 gradients (batch norm, residuals, option-A shortcuts) match finite differences", () => {
  // 19 convolutions deep: a batch of 16 keeps batch-norm statistics away from degenerate, few ReLU kinks hit
  checkGradients({ architecture: "resnet20", init: "kaiming_normal" }, [8, 8, 3], 3, 16);
});

Deno.test("nets - ViT gradients (patches, attention, layer norm, GELU) match finite differences", () => {
  checkGradients({ architecture: "vit", init: "kaiming_normal", dim: 8, depth: 2, heads: 2, patch_size: 2 }, [4, 4, 1]);
});

function count(architecture: string, shape: number[], extra: Record<string, unknown> = {}) {
  const net = buildNet(ModelSchema.parse({ architecture, ...extra }), shape, 10, createJsEngine());
  return {
    net,
    masked: net.maskedParams.map((l) => l.name),
    weights: net.maskedParams.reduce((s, l) => s + l.w.length, 0),
    all: net.params.reduce((s, l) => s + l.w.length, 0),
  };
}

Deno.test("nets - parameter counts and masked layers equal the architectures' definitions", () => {
  const mlp = count("mlp", [28, 28, 1]);
  assert.deepEqual(mlp.masked, ["fc1", "fc2", "fc3"]);
  assert.equal(mlp.weights, 784 * 300 + 300 * 100 + 100 * 10); // LeNet-300-100: 266,200
  // edge-popup / lottery-ticket Conv-2/4/6 on CIFAR-10: 4.3M, 2.4M, 2.3M weights
  const c2 = count("conv2", [32, 32, 3]);
  assert.deepEqual(c2.masked, ["conv1", "conv2", "fc1", "fc2", "fc3"]);
  assert.equal(c2.weights, 27 * 64 + 576 * 64 + 16 * 16 * 64 * 256 + 256 * 256 + 2560);
  assert.equal(c2.weights, 4_300_992);
  assert.equal(count("conv4", [32, 32, 3]).weights, 2_425_024);
  assert.equal(count("conv6", [32, 32, 3]).weights, 2_261_184);
  // ResNet-20 (He et al.): 0.27M weights in 19 convolutions and the classifier
  const r = count("resnet20", [32, 32, 3]);
  assert.equal(r.masked.length, 20);
  assert.equal(r.weights, 268_336);
  assert.ok(r.masked.includes("stage2.block1.conv1") && r.masked.at(-1) === "fc");
  // ViT: patch embedding, per block qkv + proj + two MLP layers, head; class token and positions unmasked
  const D = 16, depth = 3, p = 4, hidden = 2 * D;
  const v = count("vit", [32, 32, 3], { dim: D, depth, heads: 4, patch_size: p });
  assert.equal(v.weights, D * p * p * 3 + depth * (3 * D * D + D * D + 2 * D * hidden) + 10 * D);
  assert.equal(v.all - v.weights, D + (64 + 1) * D);
  assert.equal(v.masked.length, 2 + 4 * depth);
});

Deno.test("nets - output shapes for each architecture and input size", () => {
  const cases: [string, number[]][] = [
    ["mlp", [28, 28, 1]],
    ["conv4", [28, 28, 1]],
    ["conv6", [32, 32, 3]],
    ["resnet20", [28, 28, 1]],
    ["vit", [28, 28, 1]],
  ];
  for (const [arch, shape] of cases) {
    const { net } = count(arch, shape);
    const b = 2;
    const logits = net.forward(new Float32Array(b * net.inputSize), b, false);
    assert.equal(logits.length, b * 10, arch);
  }
});

Deno.test("nets - model.masked selects the masked tensors; a pattern matching nothing names the layers", () => {
  const net = count("conv4", [32, 32, 3], { masked: ["conv*"] }).net;
  assert.deepEqual(net.maskedParams.map((l) => l.name), ["conv1", "conv2", "conv3", "conv4"]);
  assert.equal(net.params.length, 7);
  assert.throws(
    () => count("mlp", [28, 28, 1], { masked: ["conv*"] }),
    /model.masked: 'conv\*' matches no layer of mlp; its layers are fc1, fc2, fc3/,
  );
});

Deno.test("nets - one strided residual block with batch norm and an option-A shortcut: exact gradients", () => {
  const ctx = { engine: createJsEngine() }, rng = new Rng(5);
  const p = (name: string, shape: number[]) => {
    const w = new Float32Array(shape.reduce((a, b) => a * b));
    rng.fillNormal(w);
    return param(name, shape, 1, w.map((v) => 0.5 * v));
  };
  const c1 = new Conv2d(ctx, p("c1", [4, 3, 3, 2]), [6, 6, 2]);
  const inner = new Sequential([
    new Conv2d(ctx, p("c2", [8, 3, 3, 4]), [6, 6, 4], { stride: 2 }),
    new BatchNorm([3, 3, 8]),
  ], [
    6,
    6,
    4,
  ]);
  const res = new Residual(inner, new ShortcutA([6, 6, 4], 8), true);
  const layers = [c1, new BatchNorm(c1.outShape), new ReLU(c1.outShape), res, new GlobalAvgPool(res.outShape)];
  const body = new Sequential([...layers, new Linear(ctx, p("fc", [3, 8]), [8], false)], [6, 6, 2]);
  const net = new Net(body, [6, 6, 2], 3, ctx.engine);
  const b = 8, x = new Float32Array(b * 72), y = Uint8Array.from({ length: b }, (_, i) => i % 3);
  rng.fillNormal(x);
  checkNetGradients(net, x, y, b, 20, "residual block", 0.9999, 0.01);
});

Deno.test("nets - a saturated softmax yields no subnormal gradients (they would slow every product down)", () => {
  // one linear layer, logits [0, -90, -95]: the wrong classes' probabilities are about 1e-39 and 1e-41
  const net = buildNet(ModelSchema.parse({ widths: [], init: "kaiming_normal" }), [4, 1, 1], 3, createJsEngine());
  const w = net.maskedParams[0]!.w; // [3, 4]
  w.fill(0);
  w[4] = -90;
  w[8] = -95;
  const b = 2, x = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0]), y = new Uint8Array(b);
  const grads = [new Float32Array(12)];
  net.useGradients(grads);
  net.forward(x, b, true);
  net.crossEntropy(y, b, true);
  net.backward(b);
  const sub = [...grads[0]!].filter((v) => v !== 0 && Math.abs(v) < 1.1754943508222875e-38);
  assert.deepEqual(sub, []);
});
