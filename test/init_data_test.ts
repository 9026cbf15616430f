import assert from "node:assert/strict";
import { ROOT } from "./_fixtures.ts";
import { initWeights } from "../src/train/init.ts";
import { Rng } from "../src/util/rng.ts";
import { IDX_FILES, loadIdx, parseIdx } from "../src/train/data/idx.ts";
import {
  CIFAR_MEAN,
  CIFAR_STD,
  CIFAR_TEST_FILE,
  CIFAR_TRAIN_FILES,
  loadCifar10,
  parseCifar,
} from "../src/train/data/cifar10.ts";
import { loadMnist } from "../src/train/data/mnist.ts";
import { loadFashionMnist } from "../src/train/data/fashion_mnist.ts";
import { augmentInto } from "../src/train/data/augment.ts";
import { DataError } from "../src/util/errors.ts";
import { sha256Hex } from "../src/util/hash.ts";

function moments(w: Float32Array): { mean: number; variance: number } {
  let s = 0, q = 0;
  for (const v of w) {
    s += v;
    q += v * v;
  }
  const mean = s / w.length;
  return { mean, variance: q / w.length - mean * mean };
}

Deno.test("init - moments match the definitions", () => {
  const fanIn = 400, n = 200_000;
  const u = moments(initWeights("uniform", fanIn, n, new Rng(1)));
  assert.ok(Math.abs(u.mean) < 1e-3);
  assert.ok(Math.abs(u.variance / (1 / (3 * fanIn)) - 1) < 0.02, `uniform variance ${u.variance}`); // a²/3, a = 1/√fan_in
  const k = moments(initWeights("kaiming_normal", fanIn, n, new Rng(2)));
  assert.ok(Math.abs(k.mean) < 2e-4);
  assert.ok(Math.abs(k.variance / (2 / fanIn) - 1) < 0.02, `kaiming variance ${k.variance}`);
  const s = initWeights("signed_constant", fanIn, n, new Rng(3));
  const c = Math.fround(Math.sqrt(2 / fanIn));
  assert.ok(s.every((v) => v === c || v === -c));
  const positive = s.filter((v) => v > 0).length / n;
  assert.ok(Math.abs(positive - 0.5) < 0.01, `fraction positive ${positive}`);
  const a = Math.fround(1 / Math.sqrt(fanIn));
  assert.ok(initWeights("uniform", fanIn, n, new Rng(4)).every((v) => v >= -a && v <= a));
});

Deno.test("init - the same seed gives bit-identical weights in another process", async () => {
  const code = `import { buildNet } from "${ROOT}src/train/nets/build.ts";
import { createJsEngine } from "${ROOT}src/engine/js.ts";
import { ModelSchema } from "${ROOT}src/spec/schema.ts";
import { sha256Hex } from "${ROOT}src/util/hash.ts";
for (const init of ["uniform", "kaiming_normal", "signed_constant"]) {
  const net = buildNet(ModelSchema.parse({ architecture: "conv2", init, weight_seed: 7 }), [8, 8, 1], 10, createJsEngine());
  console.log(net.params.map((p) => sha256Hex(new Uint8Array(p.w.buffer))).join(","));
}`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped" }).output();
  assert.equal(out.code, 0);
  const { buildNet } = await import("../src/train/nets/build.ts");
  const { createJsEngine } = await import("../src/engine/js.ts");
  const { ModelSchema } = await import("../src/spec/schema.ts");
  const here = ["uniform", "kaiming_normal", "signed_constant"].map((init) =>
    buildNet(ModelSchema.parse({ architecture: "conv2", init, weight_seed: 7 }), [8, 8, 1], 10, createJsEngine())
      .params.map((p) => sha256Hex(new Uint8Array(p.w.buffer))).join(",")
  );
  assert.deepEqual(new TextDecoder().decode(out.stdout).trim().split("\n"), here);
});

function idxBytes(dims: number[], data: number[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("data - IDX reader on files the test writes (plain and .gz); clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 3 training images of 2×2, 2 test images; pixel values and labels chosen to check the layout
    await Deno.writeFile(
      `${dir}/${IDX_FILES.trainImages}`,
      idxBytes([3, 2, 2], [0, 255, 0, 0, 0, 0, 255, 0, 51, 51, 51, 51]),
    );
    await Deno.writeFile(`${dir}/${IDX_FILES.trainLabels}.gz`, await gzip(idxBytes([3], [1, 2, 0])));
    await Deno.writeFile(`${dir}/${IDX_FILES.testImages}`, idxBytes([2, 2, 2], [255, 255, 255, 255, 0, 0, 0, 0]));
    await Deno.writeFile(`${dir}/${IDX_FILES.testLabels}`, idxBytes([2], [2, 1]));
    const { train, test } = await loadIdx(dir, undefined, undefined, 0);
    assert.deepEqual(train.shape, [2, 2, 1]);
    assert.equal(train.n, 3);
    assert.equal(train.classes, 3);
    assert.deepEqual([...train.y], [1, 2, 0]);
    const norm = (v: number) => Math.fround((v / 255 - 0.1307) / 0.3081);
    assert.deepEqual([...train.x.subarray(0, 4)], [norm(0), norm(255), norm(0), norm(0)]);
    assert.deepEqual([...test.x.subarray(4, 8)], [norm(0), norm(0), norm(0), norm(0)]);
    const sub = await loadIdx(dir, 2, 1, 5);
    assert.equal(sub.train.n, 2);
    await assert.rejects(() => loadIdx(dir, 4, undefined, 0), /dataset.train = 4 but only 3 samples exist/);
    assert.throws(() => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 9, 1]), "x"), /truncated/);
    assert.throws(() => parseIdx(Uint8Array.from([1, 2, 3, 4]), "x"), /not an IDX file/);
    await Deno.remove(`${dir}/${IDX_FILES.testLabels}`);
    await assert.rejects(() => loadIdx(dir, undefined, undefined, 0), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(
        e.message,
        /t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\) — not found; check dataset.path/,
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data - CIFAR-10 binary reader: planes to channels-last, per-channel normalisation, missing files named", async () => {
  const record = (label: number, r: number, g: number, b: number) => {
    const rec = new Uint8Array(3073);
    rec[0] = label;
    rec.fill(r, 1, 1025);
    rec.fill(g, 1025, 2049);
    rec.fill(b, 2049, 3073);
    rec[1 + 33] = 255; // red of pixel (row 1, col 1)
    return rec;
  };
  const one = record(7, 0, 128, 255);
  const img = parseCifar(one, "x");
  assert.equal(img.y[0], 7);
  assert.deepEqual(img.shape, [32, 32, 3]);
  assert.deepEqual([...img.x.subarray(0, 3)].map((v) => Math.round(v * 255)), [0, 128, 255]);
  assert.equal(img.x[33 * 3], 1);
  assert.throws(() => parseCifar(new Uint8Array(100), "bad.bin"), /not a whole number of 3073-byte/);
  const dir = await Deno.makeTempDir();
  try {
    for (const [i, f] of CIFAR_TRAIN_FILES.entries()) await Deno.writeFile(`${dir}/${f}`, record(i, 10, 20, 30));
    await assert.rejects(() => loadCifar10(dir, undefined, undefined, 0), /test_batch.bin .*not found/);
    await Deno.writeFile(`${dir}/${CIFAR_TEST_FILE}`, record(9, 0, 0, 0));
    const { train, test } = await loadCifar10(dir, undefined, undefined, 0);
    assert.equal(train.n, 5);
    assert.deepEqual([...train.y], [0, 1, 2, 3, 4]);
    assert.equal(test.n, 1);
    assert.ok(Math.abs(train.x[0]! - (10 / 255 - CIFAR_MEAN[0]!) / CIFAR_STD[0]!) < 1e-6);
    assert.ok(Math.abs(train.x[2]! - (30 / 255 - CIFAR_MEAN[2]!) / CIFAR_STD[2]!) < 1e-6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data - augmentation is a seeded crop-with-padding and flip", () => {
  const shape = [4, 4, 1];
  const src = Float32Array.from({ length: 16 }, (_, i) => i + 1);
  const a = new Float32Array(16), b = new Float32Array(16);
  augmentInto(src, shape, new Rng(3), a, 1);
  augmentInto(src, shape, new Rng(3), b, 1);
  assert.deepEqual(a, b);
  // every output pixel is padding (0) or a pixel of the source; flips and shifts seen over many draws
  const rng = new Rng(4), seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    augmentInto(src, shape, rng, a, 1);
    assert.ok(a.every((v) => v === 0 || (v >= 1 && v <= 16)));
    seen.add(a.join(","));
  }
  assert.equal(seen.size, 18); // 3×3 shifts × 2 flips
});

Deno.test("data - MNIST package split is stable; Fashion-MNIST has 70,000 images, 7,000 per class", async () => {
  const a = await loadMnist(500, 100, 3);
  const b = await loadMnist(500, 100, 3);
  assert.equal(sha256Hex(new Uint8Array(a.train.x.buffer)), sha256Hex(new Uint8Array(b.train.x.buffer)));
  assert.deepEqual(a.test.y, b.test.y);
  const c = await loadMnist(500, 100, 4);
  assert.notDeepEqual(a.test.y, c.test.y);
  // the split's first labels are pinned: a change of generator or split would change every published ticket
  assert.deepEqual([...a.train.y.subarray(0, 12)], [0, 5, 9, 3, 3, 6, 1, 7, 5, 5, 6, 9]);
  const f = await loadFashionMnist(60000, 10000, 0);
  assert.equal(f.train.n + f.test.n, 70000);
  const perClass = new Array(10).fill(0);
  for (const y of [...f.train.y, ...f.test.y]) perClass[y]++;
  assert.deepEqual(perClass, new Array(10).fill(7000));
  assert.deepEqual(f.train.shape, [28, 28, 1]);
});
