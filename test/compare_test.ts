import assert from "node:assert/strict";
import { ResultMessageSchema, WIRE_VERSION } from "../src/broker/messages.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { reportMain } from "../src/cli/report.ts";
import { compareFronts } from "../src/pareto/compare.ts";
import type { SeededPoint } from "../src/pareto/hypervolume.ts";
import { analyse } from "../src/report/analysis.ts";
import { frontChartSpec } from "../src/report/charts.ts";
import { buildReportData, combineReports, type ReportData } from "../src/report/data.ts";
import { comparisonSentence, frontTables, renderMarkdown } from "../src/report/markdown.ts";
import { comparabilityWarning, settingsDiff } from "../src/report/settings.ts";
import { expandTrials, parseSpec, sweepIdOf, type Trial } from "../src/spec/mod.ts";
import { fakeMetrics, handMadeRunDir } from "./_fixtures.ts";

/** A spec of gates (2 lambdas) and a dense reference on synthetic data; `extra` adds or overrides top-level lines. */
const specText = (name: string, opts: { train?: number; epochs?: number; seeds?: string; dense?: boolean } = {}) =>
  `name: ${name}
dataset: {name: synthetic, train: ${opts.train ?? 512}, test: 256, validation: 64}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates${opts.dense === false ? "" : ", dense"}]}
  gates.lambda: {values: [0.001, 0.01]}
seeds: ${opts.seeds ?? "[0, 1, 2]"}
training: {epochs: ${opts.epochs ?? 2}, batch_size: 64}
`;

/** A done result of a trial with the given sparsity and accuracy (validation = accuracy + 0.01). */
function done(t: Trial, sparsity: number, accuracy: number): RecordedResult {
  return ResultMessageSchema.parse({
    v: WIRE_VERSION,
    sweep_id: t.sweepId,
    trial_id: t.id,
    status: "done",
    attempt: 1,
    metrics: fakeMetrics(sparsity, accuracy, { val_accuracy: accuracy + 0.01 }),
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: "2025-01-01T00:00:00Z",
    claim: "0".repeat(32),
  });
}

/**
 * A sweep's trials with hand-made results: gates tickets at 50% (lambda 0.001) and 90% (lambda 0.01) sparsity,
 * dense trials at 0% sparsity; every accuracy shifted by `shift`.
 */
function hand(text: string, shift: number, dense = 0.97): { trials: Trial[]; results: RecordedResult[] } {
  const trials = expandTrials(parseSpec(text));
  const results = trials.map((t) =>
    t.config.method.name === "dense"
      ? done(t, 0, dense)
      : done(t, t.params["lambda"] === 0.001 ? 0.5 : 0.9, (t.params["lambda"] === 0.001 ? 0.9 : 0.8) + shift)
  );
  return { trials, results };
}

function reportOf(text: string, shift: number, dense?: number): ReportData {
  const spec = parseSpec(text), { trials, results } = hand(text, shift, dense);
  return buildReportData(sweepIdOf(spec), spec.name, trials, results, text);
}

/** A run directory (sweep.json, results.jsonl) of a spec with hand-made results. */
function runDir(root: string, text: string, shift: number): Promise<string> {
  const { trials, results } = hand(text, shift);
  return handMadeRunDir(root, text, trials, results);
}

/** Runs `deno task report` in-process and returns what it printed. */
async function report(args: string[]): Promise<string> {
  const lines: string[] = [];
  const log = console.log, err = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = () => {};
  try {
    assert.equal(await reportMain(args), 0);
  } finally {
    console.log = log;
    console.error = err;
  }
  return lines.join("\n");
}

Deno.test("compare - report A B: two sweeps of one name differing in train size and epochs print exactly those settings and a warning", async () => {
  const root = await Deno.makeTempDir();
  try {
    // the same spec name (as two runs of one spec file edited in between): the sweeps stay apart
    const a = await runDir(root, specText("q", { train: 2000, epochs: 2 }), 0);
    const b = await runDir(root, specText("q", { train: 512, epochs: 10 }), -0.16);
    const out = await report([a, b, "--out", `${root}/cmp`]);
    const ida = a.split("/").at(-1)!, idb = b.split("/").at(-1)!;
    // the console starts with the settings table: only train size and epochs
    const top = out.slice(0, out.indexOf("wrote "));
    assert.match(top, /^## Settings that differ/);
    const rows = top.split("\n").filter((l) => l.startsWith("| ")).slice(2);
    assert.deepEqual(rows, [`| dataset.train | 2000 | 512 |`, `| training.epochs | 2 | 10 |`]);
    assert.match(top, new RegExp(`\\| setting \\| ${ida} \\| ${idb} \\|`));
    const warning =
      /Warning: the fronts of q-\w+ and q-\w+ are not comparable: data sizes differ \(dataset\.train: 2000 vs 512\): .*; epochs differ \(training\.epochs: 2 vs 10\): training longer/;
    assert.match(top, warning);
    assert.match(out.slice(out.lastIndexOf("wrote ")), warning); // and again at the end
    // the Markdown and HTML comparison start with it too
    const md = await Deno.readTextFile(`${root}/cmp/report.md`);
    assert.ok(md.indexOf("## Settings that differ") < md.indexOf("## Pareto fronts"));
    assert.match(md, /\| dataset\.train \| 2000 \| 512 \|/);
    assert.match(md, warning);
    const html = await Deno.readTextFile(`${root}/cmp/report.html`);
    assert.match(html, /<div id="settings-diff"><table>.*<td>training\.epochs<\/td><td>2<\/td><td>10<\/td>/s);
    assert.match(html, /<p class="warn" id="comparability-warning"><strong>Warning: the fronts of/);
    assert.ok(html.indexOf("comparability-warning") < html.indexOf("<h2>Pareto fronts</h2>"));
    // one front per sweep, not one merged front of both
    const fronts = JSON.parse(await Deno.readTextFile(`${root}/cmp/fronts.json`));
    assert.deepEqual(fronts.fronts.map((f: { group: string }) => f.group), [`${ida}: gates`, `${idb}: gates`]);
    assert.deepEqual(fronts.settings_diff.map((d: { setting: string }) => d.setting), [
      "dataset.train",
      "training.epochs",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compare - identical settings: no warning, and the diff says nothing differs", () => {
  const a = reportOf(specText("a"), 0), b = reportOf(specText("b"), -0.05);
  const both = combineReports([a, b]);
  assert.deepEqual(settingsDiff(both.settings), []);
  assert.equal(comparabilityWarning(both.settings), null);
  const md = renderMarkdown(both, analyse(both, { resamples: 50 }));
  assert.doesNotMatch(md, /Warning|not comparable/);
  assert.match(md, /## Settings that differ\n\nNone: /);
  assert.match(md, /The fronts are comparable/);
  // a method setting alone is listed, without a warning
  const c = reportOf(specText("c").replace("training: {", "method: {sigma: 0.3}\ntraining: {"), 0);
  const ac = combineReports([a, c]).settings;
  assert.deepEqual(settingsDiff(ac), [{ setting: "method.sigma", values: ["0.5", "0.3"] }]);
  assert.equal(comparabilityWarning(ac), null);
});

/** Seed-shifted fronts over [from, to] in sparsity, `shift` added to every accuracy. */
function fronts(seeds: number[], from: number, to: number, shift: number): SeededPoint[] {
  return seeds.flatMap((seed) =>
    [0, 0.25, 0.5, 0.75, 1].map((t) => {
      const x = from + t * (to - from);
      return { x, y: 0.95 - 0.3 * x * x + shift + 0.002 * seed, seed };
    })
  );
}

Deno.test("compare - with 1 or 2 seeds every comparison says it cannot judge the spread, never a verdict", () => {
  for (const seeds of [[0], [0, 1]]) {
    const n = seeds.length;
    for (const shift of [0.1, 0]) {
      const c = compareFronts("a", fronts(seeds, 0.1, 0.9, shift), "b", fronts(seeds, 0.1, 0.9, 0), { seed: 1 });
      assert.ok(c.levels.length > 10 && c.levels.every((l) => l.winner === "unjudged"), JSON.stringify(c.regions));
      const text = comparisonSentence(c);
      assert.match(text, new RegExp(`cannot judge the spread with ${n} seeds? \\(needs 3\\)`));
      assert.doesNotMatch(text, /beyond the seed-to-seed spread|indistinguishable|within the seed-to-seed spread/);
      if (shift) assert.match(text, /a higher at 10\.00-90\.00% sparsity \(by up to 10\.0 pp\)/);
    }
  }
  // three seeds on one side, two on the other: still no verdict
  const mixed = compareFronts("a", fronts([0, 1, 2], 0.1, 0.9, 0.1), "b", fronts([0, 1], 0.1, 0.9, 0), { seed: 1 });
  assert.match(comparisonSentence(mixed), /cannot judge the spread with 2 seeds \(needs 3\)/);
  // three a side: a verdict
  const three = compareFronts("a", fronts([0, 1, 2], 0.1, 0.9, 0.1), "b", fronts([3, 4, 5], 0.1, 0.9, 0), { seed: 1 });
  assert.match(comparisonSentence(three), /a more accurate at 10\.00-90\.00% sparsity \(by up to \d+\.\d pp, beyond/);
});

Deno.test("compare - fronts that overlap in part: verdicts only where both reach, the rest named as not overlapping", () => {
  // a covers 20-60% sparsity, b 40-90%: a is 10 points better everywhere it exists
  const a = fronts([0, 1, 2], 0.2, 0.6, 0.1), b = fronts([3, 4, 5], 0.4, 0.9, 0);
  const c = compareFronts("a", a, "b", b, { seed: 1 });
  assert.deepEqual(c.overlap, { from: 0.4, to: 0.6 });
  assert.ok(c.levels.length >= 3);
  assert.ok(c.levels.every((l) => l.sparsity >= 0.4 - 1e-9 && l.sparsity <= 0.6 + 1e-9), JSON.stringify(c.levels));
  assert.deepEqual(c.outside.map((r) => [r.only, r.from, r.to]), [["a", 0.2, 0.4], ["b", 0.6, 0.9]]);
  const text = comparisonSentence(c);
  assert.match(text, /where both fronts reach \(40\.00-60\.00% sparsity\): a more accurate at 40\.00-60\.00%/);
  assert.match(
    text,
    /the fronts do not overlap elsewhere \(at 20\.00-40\.00% sparsity only a reaches, at 60\.00-90\.00% sparsity only b reaches\): no verdict there/,
  );
  // no overlap at all: no verdict anywhere
  const apart = compareFronts("a", fronts([0, 1, 2], 0.1, 0.3, 0), "b", b, { seed: 1 });
  assert.equal(apart.overlap, null);
  assert.deepEqual(apart.levels, []);
  assert.match(
    comparisonSentence(apart),
    /the fronts do not overlap \(a: 10\.00-30\.00%, b: 40\.00-90\.00% sparsity\): no verdict\.$/,
  );
});

Deno.test("compare - each sweep keeps its own dense reference, labelled, never applied to another sweep's fronts", () => {
  const withDense = reportOf(specText("x"), 0, 0.97);
  const without = reportOf(specText("y", { dense: false }), 0);
  const both = combineReports([without, withDense]);
  assert.equal(both.dense, null);
  assert.deepEqual(both.references.map((r) => [r.sweep, r.groups]), [["x", ["x: gates"]]]);
  const tables = frontTables(both);
  assert.match(tables, /Dense reference of x, for its fronts only/);
  assert.match(tables, /y has no dense reference/);
  const [yTable, xTable] = tables.split("### Front: ").slice(1);
  assert.doesNotMatch(yTable!, /Δ vs/);
  assert.match(xTable!, /Δ vs x dense \(pp\)/);
  // both with one: each front against its own
  const other = reportOf(specText("z", { train: 256 }), -0.1, 0.8);
  const two = combineReports([withDense, other]);
  assert.deepEqual(two.references.map((r) => [r.sweep, r.groups, r.accuracy]), [
    ["x", ["x: gates"], 0.98],
    ["z", ["z: gates"], 0.81],
  ]);
  const t2 = frontTables(two).split("### Front: ").slice(1);
  // x's gates at 50% sparsity: 0.91 validation vs x's 0.98 → -7.00; z's: 0.81 vs z's 0.81 → 0.00
  assert.match(t2[0]!, /\| 50\.00 \| 91\.00 \| 90\.00 \| -7\.00 \|/);
  assert.match(t2[1]!, /\| 50\.00 \| 81\.00 \| 80\.00 \| 0\.00 \|/);
  const chart = JSON.stringify(frontChartSpec(two, analyse(two, { resamples: 50 })));
  assert.match(chart, /"text":"x dense 98%"/);
  assert.match(chart, /"text":"z dense 81%"/);
});
