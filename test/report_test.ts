import assert from "node:assert/strict";
import { loadPage } from "./_chromium.ts";
import { madeResult, ROOT, sweepInProcess, tinySpecText } from "./_fixtures.ts";
import { compareFronts } from "../src/pareto/compare.ts";
import { bootstrapHypervolume, hypervolume, type SeededPoint } from "../src/pareto/hypervolume.ts";
import { accuracyAtSparsity, kneeIndex, sparsityAtAccuracy } from "../src/pareto/interpolate.ts";
import { analyse } from "../src/report/analysis.ts";
import { parseAccuracyLevels } from "../src/cli/report.ts";
import { Rng } from "../src/util/rng.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { combineReports } from "../src/report/data.ts";
import { buildReportData } from "../src/report/mod.ts";
import { computeChartSpec, frontChartSpec } from "../src/report/charts.ts";
import { renderHtml } from "../src/report/html.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";

const close = (a: number | null, b: number, eps = 1e-12) => a !== null && Math.abs(a - b) < eps;

Deno.test("hypervolume - exact on hand-computed fronts, invariant to dominated points", () => {
  assert.equal(hypervolume([]), 0);
  assert.ok(close(hypervolume([{ x: 0.5, y: 0.8 }]), 0.4));
  // staircase: 0.5·0.9 + (0.8 − 0.5)·0.6 + (0.9 − 0.8)·0.2 = 0.45 + 0.18 + 0.02
  const front = [{ x: 0.5, y: 0.9 }, { x: 0.8, y: 0.6 }, { x: 0.9, y: 0.2 }];
  assert.ok(close(hypervolume(front), 0.65));
  const dominated = [{ x: 0.4, y: 0.85 }, { x: 0.7, y: 0.6 }, { x: 0.8, y: 0.55 }, { x: 0.5, y: 0.9 }, {
    x: 0,
    y: 0.99,
  }];
  assert.ok(close(hypervolume([...front, ...dominated.slice(0, 4)]), 0.65));
  // a point on the reference axis adds nothing; another reference point shifts the area
  assert.ok(close(hypervolume([...front, { x: 0, y: 0.99 }]), 0.65));
  assert.ok(close(hypervolume(front, { x: 0.5, y: 0.5 }), 0.3 * 0.1));
});

Deno.test("hypervolume - bootstrap over seeds: reproducible for a seed, brackets the per-seed mean", () => {
  const pts: SeededPoint[] = [];
  for (const seed of [0, 1, 2, 3]) {
    for (const x of [0.3, 0.6, 0.9]) pts.push({ x, y: 0.95 - 0.4 * x * x - 0.02 * seed, seed });
  }
  const a = bootstrapHypervolume(pts, { seed: 7 }), b = bootstrapHypervolume(pts, { seed: 7 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(bootstrapHypervolume(pts, { seed: 8 }), a);
  assert.equal(a.seeds, 4);
  assert.ok(a.lo <= a.mean && a.mean <= a.hi && a.lo < a.hi);
  assert.ok(close(a.value, hypervolume(pts.filter((p) => p.seed === 0))));
  const one = bootstrapHypervolume(pts.filter((p) => p.seed === 2));
  assert.equal(one.lo, one.hi);
});

Deno.test("interpolation - accuracy at sparsity and sparsity at accuracy along known fronts", () => {
  const front = [{ x: 0.5, y: 0.9 }, { x: 0.8, y: 0.6 }, { x: 0.9, y: 0.2 }, { x: 0.6, y: 0.5 }];
  assert.ok(close(accuracyAtSparsity(front, 0.3), 0.9)); // a sparser ticket exists at 0.9
  assert.ok(close(accuracyAtSparsity(front, 0.5), 0.9));
  assert.ok(close(accuracyAtSparsity(front, 0.65), 0.75));
  assert.ok(close(accuracyAtSparsity(front, 0.85), 0.4));
  assert.equal(accuracyAtSparsity(front, 0.95), null);
  assert.ok(close(sparsityAtAccuracy(front, 0.9), 0.5));
  assert.ok(close(sparsityAtAccuracy(front, 0.75), 0.65));
  assert.ok(close(sparsityAtAccuracy(front, 0.1), 0.9));
  assert.equal(sparsityAtAccuracy(front, 0.95), null);
  // the knee of a bent front is its bend
  assert.equal(kneeIndex([{ x: 0.1, y: 0.9 }, { x: 0.8, y: 0.88 }, { x: 0.95, y: 0.3 }]), 1);
  assert.deepEqual(parseAccuracyLevels("0.9,95"), [0.9, 0.95]);
  assert.throws(() => parseAccuracyLevels("0.9,x"), /'x' is not an accuracy/);
  for (const v of ["0x5f", "1e1", "Infinity", "", " ", "9.5.1"]) {
    assert.throws(() => parseAccuracyLevels(v), /--at-accuracy: '.*' is not an accuracy \(expected 0\.95 or 95\)/, v);
  }
  assert.deepEqual(parseAccuracyLevels(".5, 50."), [0.5, 0.5]);
  // below 1 a fraction, above 1 a percentage; 1 (taken as 100%) could be either
  assert.deepEqual(parseAccuracyLevels("0.99,100,1.5"), [0.99, 1, 0.015]);
  for (const v of ["1", "1.0", " 1.00"]) {
    assert.throws(
      () => parseAccuracyLevels(`0.9,${v}`),
      /^TicketsweepError: --at-accuracy: ' ?1(\.0*)?' could be a fraction \(100%\) or a percentage \(1%\): give 100 or 0\.01$/,
      v,
    );
  }
});

Deno.test("comparison - a clearly better front wins beyond the seed spread; two draws of one front tie", () => {
  // each seed shifts its whole front by seed-level noise, as a different mask draw would
  const make = (shift: number, seeds: number[], noise: number) =>
    seeds.flatMap((seed) => {
      const offset = noise * new Rng(seed, 5).normal();
      return [0.2, 0.5, 0.7, 0.9].map((x) => ({ x, y: 0.9 - 0.5 * x * x + shift + offset, seed }));
    });
  const better = compareFronts("a", make(0.1, [0, 1, 2], 0.005), "b", make(0, [0, 1, 2], 0.005), { seed: 1 });
  assert.ok(better.hvDiff.lo > 0);
  assert.ok(better.levels.length >= 15 && better.levels.every((l) => l.winner === "a"));
  assert.deepEqual(better.regions.map((r) => r.winner), ["a"]);
  const tie = compareFronts("a", make(0, [0, 1, 2, 3], 0.03), "b", make(0, [4, 5, 6, 7], 0.03), { seed: 1 });
  assert.ok(tie.hvDiff.lo < 0 && tie.hvDiff.hi > 0, JSON.stringify(tie.hvDiff));
  assert.ok(tie.levels.filter((l) => l.winner === "tie").length >= tie.levels.length - 1);
});

/** A finished two-method, two-seed sweep on the synthetic task, run in-process. */
async function finishedSweep(dir: string): Promise<string> {
  const text = `name: report-test
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates, edge-popup, dense]}
  gates.lambda: {min: 1.0e-3, max: 3.0e-2, scale: log, count: 3}
  k: {values: [0.1, 0.3, 0.6]}
seeds: [0, 1]
training: {epochs: 2, batch_size: 64}
`;
  return await sweepInProcess(text, dir);
}

/** Parses the Markdown tables under a heading into rows of cells. */
function tableAfter(md: string, heading: string): string[][] {
  const start = md.indexOf(heading);
  assert.ok(start >= 0, `no '${heading}'`);
  const lines = md.slice(start).split("\n").slice(1);
  const rows: string[][] = [];
  let seen = false;
  for (const line of lines) {
    if (line.startsWith("|")) {
      seen = true;
      rows.push(line.slice(1, -1).split(" | ").map((c) => c.trim()));
    } else if (seen) break;
  }
  return rows.slice(2); // header and rule
}

Deno.test("report - HTML in headless Chromium, Markdown tables equal fronts.json, trials.csv complete", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await finishedSweep(dir);
    const fronts = JSON.parse(await Deno.readTextFile(`${run}/fronts.json`));
    const md = await Deno.readTextFile(`${run}/report.md`);
    assert.deepEqual(fronts.fronts.map((f: { group: string }) => f.group), ["gates", "edge-popup"]);
    assert.ok(fronts.dense_reference.trials === 2);
    // every front table parses back into fronts.json's points
    for (const f of fronts.fronts) {
      const rows = tableAfter(md, `### Front: ${f.group} (`);
      assert.deepEqual(
        rows.map((r) => [Number(r[0]), Number(r[1]), r.at(-1)]),
        f.points.map((p: { sparsity: number; val_accuracy: number; trial_id: string }) => [
          Number((100 * p.sparsity).toFixed(2)),
          Number((100 * p.val_accuracy).toFixed(2)), // the fronts choose on validation accuracy
          p.trial_id,
        ]),
      );
    }
    const hv = tableAfter(md, "### Hypervolume and knee");
    assert.deepEqual(
      hv.map((r) => [r[0], Number(r[1]), Number(r[2])]),
      fronts.fronts.map((f: { group: string; hypervolume: { value: number; mean: number } }) => [
        f.group,
        Number(f.hypervolume.value.toFixed(4)),
        Number(f.hypervolume.mean.toFixed(4)),
      ]),
    );
    assert.equal(fronts.selection, "validation");
    const at = tableAfter(md, "### Validation accuracy at sparsity");
    at.forEach((r, i) => {
      const f = fronts.fronts[i];
      f.accuracy_at_sparsity.forEach((x: { accuracy: number | null }, j: number) =>
        assert.equal(r[j + 1], x.accuracy === null ? "" : (100 * x.accuracy).toFixed(2))
      );
    });
    const csv = (await Deno.readTextFile(`${run}/trials.csv`)).trim().split("\n");
    assert.equal(csv.length, 1 + 3 * 2 + 3 * 2 + 2);
    assert.match(
      csv[0]!,
      /^trial_id,group,status,seed,param_k,param_lambda,param_method,sparsity,val_accuracy,accuracy/,
    );

    // the analysis is reproducible
    const { reportDataOf, readManifest } = await import("../src/coordinator/run_dir.ts");
    const { ResultLog } = await import("../src/coordinator/record.ts");
    const data = reportDataOf(await readManifest(run), (await ResultLog.open(run)).all());
    assert.deepEqual(analyse(data), analyse(data));

    const html = await Deno.readTextFile(`${run}/report.html`);
    assert.ok(!/(src|href)="https?:/.test(html), "the report must not load anything from the network");
    const page = await loadPage(
      `file://${run}/report.html`,
      `[...document.querySelectorAll(".plot")].map((p) => {
        const svg = p.querySelector("svg"); const r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
        return { id: p.id, width: r.width, height: r.height, marks: p.querySelectorAll("[aria-roledescription]").length,
                 titles: p.querySelectorAll("title").length };
      })`,
    );
    await Deno.mkdir(`${ROOT}test-artifacts`, { recursive: true });
    await Deno.writeFile(`${ROOT}test-artifacts/report.png`, page.screenshot);
    assert.deepEqual(page.errors, []);
    const plots = page.value as { id: string; width: number; height: number; marks: number; titles: number }[];
    assert.deepEqual(plots.map((p) => p.id), [
      "plot-fronts",
      "plot-fronts-remaining",
      "plot-seeds",
      "plot-knob",
      "plot-hypervolume",
      "plot-compute",
      "plot-layers",
      "plot-loss",
    ]);
    for (const p of plots) {
      assert.ok(p.width > 100 && p.height > 50, `${p.id} is ${p.width}×${p.height}`);
      assert.ok(p.marks > 2 && p.titles > 2, `${p.id} has ${p.marks} marks, ${p.titles} hover titles`);
    }
    assert.ok(page.screenshot.length > 10_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A hand-made sweep of three trials recorded done, stopped early (1.5 of 4 epochs) and failed, in that order. */
function stoppedSweep(name: string, keep = 3) {
  const trials = expandTrials(parseSpec(tinySpecText("hvc", 3, "", 4)));
  const result = (i: number, status: "done" | "stopped" | "failed", sparsity: number, val: number): RecordedResult =>
    madeResult(trials[i]!, status, sparsity, val - 0.01, val);
  const results = [result(2, "done", 0.5, 0.8), result(0, "stopped", 0.3, 0.6), result(1, "failed", 0, 0)];
  return { trials, data: buildReportData(`id-${name}`, name, trials, results.slice(0, keep), "") };
}

Deno.test("report - HTML charts hypervolume against compute (one line per sweep) and stopped trials as their own layer", async () => {
  const { trials, data } = stoppedSweep("first");
  const stoppedId = trials[0]!.id;
  // the compute chart's points are the curve's steps
  const spec = computeChartSpec(data) as unknown as { data: { values: Record<string, unknown>[] } };
  assert.deepEqual(
    spec.data.values.map((v) => [v.sweep, v.trial_epochs, v.hypervolume]),
    data.compute![0]!.steps.map((s) => ["first", s.trial_epochs, Number(s.hypervolume.toFixed(6))]),
  );
  assert.deepEqual(spec.data.values.map((v) => v.trial_epochs), [4, 5.5, 5.5]);
  // a comparison puts every sweep on the same chart
  const both = combineReports([data, stoppedSweep("second", 1).data]);
  const side = computeChartSpec(both) as unknown as { data: { values: { sweep: string }[] } };
  assert.deepEqual([...new Set(side.data.values.map((v) => v.sweep))], ["first", "second"]);

  // the stopped trial: a layer of its own (crosses, legend "stopped early"), its partial point on no front
  type Layer = { data: { values: Record<string, unknown>[] }; encoding: { shape?: { scale: { range: string[] } } } };
  const layers = (frontChartSpec(data, analyse(data)) as unknown as { layer: Layer[] }).layer;
  const crosses = layers.filter((l) => l.encoding.shape);
  assert.equal(crosses.length, 1);
  assert.deepEqual(crosses[0]!.encoding.shape!.scale.range, ["cross"]);
  const [p] = crosses[0]!.data.values;
  assert.deepEqual([p!.trial_id, p!.kind, p!.sparsity, p!.accuracy], [stoppedId, "stopped early", 30, 60]);
  assert.match(String(p!.label), /stopped early after 1\.50 of 4 epochs; partial point sparsity 30%/);
  assert.ok(data.fronts.every((f) => f.points.every((t) => t.trial_id !== stoppedId)));
  // no stopped trial, no such layer
  const plain = stoppedSweep("plain", 1).data;
  const plainLayers = (frontChartSpec(plain, analyse(plain)) as unknown as { layer: Layer[] }).layer;
  assert.ok(plainLayers.every((l) => !l.encoding.shape));

  // the page: the compute chart beside its table, a hover title per step, the cross with its title and legend entry
  const html = await renderHtml(both, analyse(both));
  const plot = (id: string) => html.match(new RegExp(`<div class="plot" id="plot-${id}">([\\s\\S]*?)</div>`))![1]!;
  assert.ok(html.indexOf('id="plot-compute"') < html.indexOf("trial-epochs ≤"));
  const titles = [...plot("compute").matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]);
  for (const [sweep, steps] of [["first", ["1 trial", "2 trials", "3 trials"]], ["second", ["1 trial"]]] as const) {
    for (const s of steps) assert.ok(titles.some((t) => t!.startsWith(`${sweep}: ${s} recorded`)), `${sweep} ${s}`);
  }
  assert.ok(titles.includes("first: 2 trials recorded, 5.5 trial-epochs, validation hypervolume 0.4000"));
  // on the per-seed chart (a stopped trial is one seed's partial point, in no configuration)
  assert.match(plot("seeds"), /<title>first: [^<]*stopped early after 1\.50 of 4 epochs[^<]*<\/title>/);
  assert.match(plot("seeds"), />stopped early</); // its legend entry
  assert.doesNotMatch(plot("fronts"), /stopped early/);
  assert.doesNotMatch(await renderHtml(plain, analyse(plain)), /stopped early after/);
});
