import assert from "node:assert/strict";
import { createTfjsEngine, TFJS_NODE_HINT } from "../src/engine/tfjs.ts";
import { createBlasEngine } from "../src/engine/blas.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { createWebgpuEngine } from "../src/engine/webgpu/engine.ts";
import { selectEngine } from "../src/engine/select.ts";
import type { Engine } from "../src/engine/engine.ts";
import { ModelSchema } from "../src/spec/schema.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { Rng } from "../src/util/rng.ts";

/** Small nets that exercise every product the layers make: dense, im2col convolution, attention. */
const NETS: { name: string; model: Record<string, unknown>; shape: number[]; b: number }[] = [
  { name: "mlp", model: { architecture: "mlp", widths: [24, 16], init: "kaiming_normal" }, shape: [7, 7, 1], b: 9 },
  { name: "conv2", model: { architecture: "conv2", init: "kaiming_normal" }, shape: [8, 8, 3], b: 5 },
  {
    name: "vit",
    model: { architecture: "vit", patch_size: 4, dim: 16, depth: 1, heads: 2, init: "kaiming_normal" },
    shape: [8, 8, 1],
    b: 3,
  },
];

/** Loss and d(loss)/d(weights) of every net on `engine` for a fixed batch. */
function lossAndGradients(engine: Engine) {
  return NETS.map(({ name, model, shape, b }) => {
    const net = buildNet(ModelSchema.parse(model), shape, 4, engine);
    const rng = new Rng(3);
    const x = new Float32Array(b * shape.reduce((p, q) => p * q, 1));
    rng.fillNormal(x);
    const y = Uint8Array.from({ length: b }, (_, i) => i % 4);
    const grads = net.maskedParams.map((p) => new Float32Array(p.w.length));
    net.useGradients(grads);
    net.forward(x, b, true);
    const { loss } = net.crossEntropy(y, b, true);
    net.backward(b);
    return { name, loss, grads };
  });
}

/** Asserts `got` matches the `cpu` reference: loss to 1e-5 relative, each gradient to 1e-4 of its largest entry. */
function assertMatches(
  got: ReturnType<typeof lossAndGradients>,
  ref: ReturnType<typeof lossAndGradients>,
  who: string,
) {
  got.forEach((g, i) => {
    const r = ref[i]!;
    assert.ok(
      Math.abs(g.loss - r.loss) <= 1e-5 * Math.abs(r.loss),
      `${who} ${g.name}: loss ${g.loss} vs cpu ${r.loss}`,
    );
    g.grads.forEach((grad, l) => {
      const want = r.grads[l]!;
      let scale = 0, err = 0;
      for (let j = 0; j < want.length; j++) {
        scale = Math.max(scale, Math.abs(want[j]!));
        err = Math.max(err, Math.abs(grad[j]! - want[j]!));
      }
      assert.ok(scale > 0, `${g.name} layer ${l}: the reference gradient is all zero`);
      assert.ok(err <= 1e-4 * scale, `${who} ${g.name} layer ${l}: gradient error ${err} of ${scale}`);
    });
  });
}

const reference = async () => lossAndGradients(await createTfjsEngine("cpu"));

const PRESENT: [string, () => Engine | Promise<Engine>][] = [
  ["blas", () => createBlasEngine(1)],
  ["wasm", () => createTfjsEngine("wasm")],
  ["js", () => createJsEngine()],
  // CI installs mesa-vulkan-drivers, so WebGPU runs there on Mesa's software adapter
  ["webgpu", () => createWebgpuEngine()],
];

for (const [name, create] of PRESENT) {
  Deno.test(`engines - ${name} gives the same loss and gradients as tfjs cpu on MLP, Conv-2 and ViT`, async () => {
    const ref = await reference();
    const engine = await create();
    try {
      assertMatches(lossAndGradients(engine), ref, name);
    } finally {
      engine.close();
    }
  });
}

// tfjs-node is optional (the test set-up does not install it): without it, the matching test shows as ignored
const tfjsNodeError = await createTfjsEngine("tensorflow").then((e) => (e.close(), ""), (e) => (e as Error).message);
const tfjsNodeNote = tfjsNodeError ? " [ignored: the optional tfjs-node is not installed]" : "";

Deno.test({
  name: `engines - tensorflow (tfjs-node) matches cpu${tfjsNodeNote}`,
  ignore: tfjsNodeError !== "",
  fn: async () => {
    const engine = await createTfjsEngine("tensorflow");
    try {
      assertMatches(lossAndGradients(engine), await reference(), "tensorflow");
    } finally {
      engine.close();
    }
  },
});

Deno.test({
  name: "engines - without tfjs-node, tensorflow fails with how to install it and auto skips it",
  ignore: tfjsNodeError === "",
  fn: async () => {
    assert.match(tfjsNodeError, /tfjs-node not loadable/);
    assert.ok(tfjsNodeError.includes(TFJS_NODE_HINT));
    const choice = await selectEngine("auto");
    choice.engine.close();
    assert.match(choice.reason, /skipped .*tensorflow: tfjs-node not loadable/);
  },
});

Deno.test("engines - auto never picks a software WebGPU adapter and says why", async () => {
  const gpu = await createWebgpuEngine();
  gpu.close();
  const choice = await selectEngine("auto");
  choice.engine.close();
  if (gpu.software) {
    assert.notEqual(choice.engine.name, "webgpu");
    assert.match(choice.reason, /webgpu: WebGPU .* is slower than the CPU backends/);
  } else {
    assert.match(choice.reason, /fastest/);
  }
});
