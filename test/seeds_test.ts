// Seed statistics and the plots researchers read, on hand-made results (no training): configuration points with
// mean and spread over seeds, fronts over configurations with error bars (checked in headless Chromium), the
// remaining-weights log axis, the knob curves, thresholds chosen from what the fronts reach, and "cannot judge"
// below 3 seeds in the Markdown, the HTML and the CLI summary.
import assert from "node:assert/strict";
import { loadPage } from "./_chromium.ts";
import { fakeMetrics, handMadeRunDir, ROOT } from "./_fixtures.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { reportMain } from "../src/cli/report.ts";
import { configFront, configPoints, type SeedSample } from "../src/pareto/seeds.ts";
import { analyse, configKey, ConfigNumbers, KNEE_DEFINITION } from "../src/report/analysis.ts";
import { configChartSpec, knobChartSpec } from "../src/report/charts.ts";
import { buildReportData, type ReportData } from "../src/report/data.ts";
import { renderHtml } from "../src/report/html.ts";
import { renderMarkdown } from "../src/report/markdown.ts";
import { expandTrials, parseSpec, sweepIdOf, type Trial } from "../src/spec/mod.ts";

const close = (a: number | null | undefined, b: number, eps = 1e-9) => typeof a === "number" && Math.abs(a - b) < eps;

const specText = (seeds: string, dense = true) =>
  `name: seeds
dataset: {name: synthetic, train: 512, test: 256, validation: 64}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates, edge-popup${dense ? ", dense" : ""}]}
  gates.lambda: {values: [0.001, 0.01]}
  k: {values: [0.1, 0.3]}
seeds: ${seeds}
training: {epochs: 2, batch_size: 64}
`;

/** [cut, sparsity, validation accuracy] of a trial's own ticket (cut ignored) then of each cut of its ladder. */
type Ladder = [number, number, number][];

/**
 * Hand-made tickets of seed s (validation accuracy; test = validation − 0.01). gates lambda 0.001: own 50+s%
 * sparsity at 92−s%, cut 1 at 90+s% / 88−s%, cut 2 at 99+0.2s% / 70−2s%; lambda 0.01: own 95+s% / 80−s%, cut 1
 * 99.5+0.1s% / 50−s%, and on seed 2 only a cut 2 (left out of the configuration points). edge-popup k 0.1: own 90% /
 * 85−s%, cut (k 0.05) 95% / 80−s%; k 0.3: own 70% / 90−s%, cut (k 0.15) 85% / 86−s%. dense: 95.5%.
 */
function ladderOf(t: Trial): Ladder {
  const s = t.seed, p = t.params;
  if (t.config.method.name === "dense") return [[0, 0, 0.955]];
  if (p["lambda"] === 0.001) {
    return [[0, 0.5 + 0.01 * s, 0.92 - 0.01 * s], [0.6 + 0.01 * s, 0.9 + 0.01 * s, 0.88 - 0.01 * s], [
      0.8 + 0.01 * s,
      0.99 + 0.002 * s,
      0.7 - 0.02 * s,
    ]];
  }
  if (p["lambda"] === 0.01) {
    return [
      [0, 0.95 + 0.01 * s, 0.8 - 0.01 * s],
      [0.9, 0.995 + 0.001 * s, 0.5 - 0.01 * s],
      ...(s === 2 ? [[0.95, 0.999, 0.3]] : []),
    ] as Ladder;
  }
  return p["k"] === 0.1
    ? [[0, 0.9, 0.85 - 0.01 * s], [0.05, 0.95, 0.8 - 0.01 * s]]
    : [[0, 0.7, 0.9 - 0.01 * s], [0.15, 0.85, 0.86 - 0.01 * s]];
}

function resultOf(t: Trial): RecordedResult {
  const [own, ...cuts] = ladderOf(t);
  const kept = (sp: number) => [Math.round(16 * (1 - sp))];
  return {
    v: 1,
    sweep_id: t.sweepId,
    trial_id: t.id,
    status: "done",
    attempt: 1,
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: "2026-01-01T00:00:00Z",
    claim: "c",
    metrics: {
      ...fakeMetrics(own![1], own![2] - 0.01, { val_accuracy: own![2] }),
      ...(cuts.length
        ? {
          cuts: {
            rule: t.config.method.name === "edge-popup" ? "keep_fraction" : "test_gate",
            levels: { bits: 2, b64: "", sha256: "0".repeat(64) },
            points: cuts.map(([cut, sparsity, val]) => ({
              cut,
              sparsity,
              kept: kept(sparsity),
              accuracy: val - 0.01,
              val_accuracy: val,
              sha256: "0".repeat(64),
            })),
          },
        }
        : {}),
    },
  } as unknown as RecordedResult;
}

function sweep(seeds: string, dense = true): { data: ReportData; text: string; trials: Trial[] } {
  const text = specText(seeds, dense), spec = parseSpec(text), trials = expandTrials(spec);
  return { data: buildReportData(sweepIdOf(spec), spec.name, trials, trials.map(resultOf), text), text, trials };
}

Deno.test("seeds - configuration points: mean, sd and a seeded bootstrap interval over seeds; none below 3 seeds; positions not every seed has are left out", () => {
  const samples: SeedSample<string>[] = [];
  for (const seed of [0, 1, 2]) {
    samples.push({
      config: "a",
      position: 0,
      seed,
      sparsity: 0.5 + 0.01 * seed,
      accuracy: 0.9,
      test: 0.8,
      item: `a${seed}`,
    });
    samples.push({
      config: "a",
      position: 1,
      seed,
      sparsity: 0.8,
      accuracy: 0.7 + 0.1 * seed,
      test: 0.7,
      item: `b${seed}`,
    });
  }
  samples.push({ config: "a", position: 2, seed: 1, sparsity: 0.99, accuracy: 0.2, test: 0.2, item: "c1" });
  const { points, partial } = configPoints(samples, { seed: 3 });
  assert.equal(partial, 1);
  assert.deepEqual(points.map((p) => [p.position, p.seeds, p.members]), [
    [0, [0, 1, 2], ["a0", "a1", "a2"]],
    [1, [0, 1, 2], ["b0", "b1", "b2"]],
  ]);
  const [own, cut] = points;
  assert.ok(close(own!.sparsity.mean, 0.51) && close(own!.sparsity.sd, 0.01) && close(own!.accuracy.sd, 0));
  assert.ok(close(cut!.accuracy.mean, 0.8) && close(cut!.accuracy.sd, 0.1));
  // the interval brackets the mean inside the seeds' range, and is the same for the same generator seed
  const i = cut!.accuracy;
  assert.ok(i.lo! >= 0.7 - 1e-9 && i.lo! < i.mean && i.mean < i.hi! && i.hi! <= 0.9 + 1e-9, JSON.stringify(i));
  assert.deepEqual(configPoints(samples, { seed: 3 }), { points, partial });
  // eight seeds: another generator seed draws other resamples
  const eight = [0, 1, 2, 3, 4, 5, 6, 7].map((seed) => ({
    ...samples[0]!,
    seed,
    accuracy: 0.5 + 0.1 * Math.sin(seed),
  }));
  const at = (seed: number) => configPoints(eight, { seed, resamples: 200 }).points[0]!.accuracy;
  assert.deepEqual(at(3), at(3));
  assert.notDeepEqual(at(3), at(4));
  // adding another configuration does not move this one's interval (each point its own generator stream)
  const more = configPoints([...samples, { ...samples[0]!, config: "z" }], { seed: 3 });
  assert.deepEqual(more.points.find((p) => p.config === "a" && p.position === 1)!.accuracy, i);
  // two seeds: a standard deviation, no interval
  const two = configPoints(samples.filter((s) => s.seed < 2)).points[1]!;
  assert.ok(close(two.accuracy.sd, Math.SQRT1_2 * 0.1));
  assert.deepEqual([two.accuracy.lo, two.accuracy.hi], [null, null]);
  // the front over configuration points is on their means
  assert.deepEqual(configFront(points).map((p) => p.position), [0, 1]);
  assert.deepEqual(configFront([...points, { ...own!, position: 9 }]).length, 3); // an exact duplicate stays
});

Deno.test("seeds - configurations numbered without key strings are told apart exactly as their keys tell them", () => {
  const configs: { group: string; params: Record<string, number | string | boolean> }[] = [
    { group: "gates", params: { lambda: 1 } },
    { group: "gates", params: { lambda: "1" } },
    { group: "gates", params: { lambda: true } },
    { group: "gates", params: { lambda: "true" } },
    { group: "gates", params: { lambda: 0 } },
    { group: "gates", params: { lambda: -0 } },
    { group: "gates", params: { lambda: Infinity } },
    { group: "gates", params: { lambda: -Infinity } },
    { group: "gates", params: { lambda: "null" } },
    { group: "gates", params: { lambda: 1, k: 0.5 } },
    { group: "gates", params: { k: 0.5, lambda: 1 } },
    { group: "gates", params: { k: 1 } },
    { group: "gates", params: {} },
    { group: "edge-popup", params: { lambda: 1 } },
    { group: "gates", params: { lambda: 1 } },
  ];
  const numbers = new ConfigNumbers(), ids = configs.map((c) => numbers.of(c.group, c.params));
  const keys = configs.map(configKey);
  for (let i = 0; i < configs.length; i++) {
    for (let j = 0; j < configs.length; j++) {
      assert.equal(ids[i] === ids[j], keys[i] === keys[j], `${keys[i]} ${keys[j]}`);
    }
  }
  // numbered in the order they first appear
  assert.deepEqual(ids, [0, 1, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 9, 10, 0]);
});

Deno.test("seeds - fronts over configurations, cuts matched by ladder position, levels chosen from what the fronts reach", () => {
  const { data } = sweep("[0, 1, 2]");
  const a = analyse(data, { resamples: 200 });
  const [gates, popup] = a.fronts;
  assert.deepEqual([gates!.group, popup!.group], ["gates", "edge-popup"]);
  // lambda 0.01's cut 2 exists on seed 2 only: left out
  assert.equal(a.partial, 1);
  const means = (f: typeof gates) =>
    f!.front.map((p) => [Number((100 * p.sparsity.mean).toFixed(2)), Number((100 * p.accuracy.mean).toFixed(2))]);
  assert.deepEqual(means(gates), [[51, 91], [91, 87], [96, 79], [99.2, 68], [99.6, 49]]);
  assert.deepEqual(means(popup), [[70, 89], [85, 85], [90, 84], [95, 79]]);
  assert.deepEqual(gates!.front.map((p) => p.label), [
    "lambda=0.001 method=gates own ticket",
    "lambda=0.001 method=gates cut #1 (0.6/0.61/0.62)",
    "lambda=0.01 method=gates own ticket",
    "lambda=0.001 method=gates cut #2 (0.8/0.81/0.82)",
    "lambda=0.01 method=gates cut #1 (0.9)",
  ]);
  for (const p of [...gates!.front, ...popup!.front]) {
    assert.deepEqual(p.seeds, [0, 1, 2]);
    assert.ok(p.accuracy.lo! < p.accuracy.mean && p.accuracy.mean < p.accuracy.hi!, p.label);
  }
  // the test accuracy beside it is the mean of the same tickets' test accuracies
  assert.ok(close(gates!.front[0]!.test.mean, 0.9));
  // sparsity levels: the sparsest five candidates some front reaches (99.6%), and what every front reaches (95%)
  assert.deepEqual(a.atSparsity, [0.9, 0.95, 0.98, 0.99, 0.995]);
  assert.deepEqual(popup!.atSparsity.map((x) => x.accuracy === null ? null : Number(x.accuracy.toFixed(4))), [
    0.84,
    0.79,
    null,
    null,
    null,
  ]);
  // accuracy levels: 1, 2, 5 points below the best point (91%); dense (95.5%) − 5 pp is reached, − 1 and − 2 are not
  assert.deepEqual(a.atAccuracyLevels, [
    { accuracy: 0.905, basis: "dense − 5 pp" },
    { accuracy: 0.9, basis: "best − 1 pp" },
    { accuracy: 0.89, basis: "best − 2 pp" },
    { accuracy: 0.86, basis: "best − 5 pp" },
  ]);
  assert.ok(close(gates!.atAccuracy[0]!.sparsity, 0.51 + 0.4 * 0.005 / 0.04, 1e-6));
  assert.equal(popup!.atAccuracy[0]!.sparsity, null);
  // the knee is on the configuration front, its ticket the seed closest to the point's means
  assert.equal(gates!.knee_point!.label, "lambda=0.001 method=gates cut #1 (0.6/0.61/0.62)");
  assert.equal(gates!.knee!.seed, 1);
  // the Markdown says it all: configuration tables with spread, the matching rule, the knee, the chosen levels
  const md = renderMarkdown(data, a);
  assert.match(md, /### Configuration front: gates \(5 of 5 points from 2 configurations, 3 seeds each\)/);
  assert.match(
    md,
    /\| 51\.00 \| 1\.00 \| \[50\.\d\d, 5\d\.\d\d\] \| 91\.00 \| 1\.00 \| \[90\.\d\d, 9\d\.\d\d\] \| 90\.00 \| -4\.50 \| 3 \|/,
  );
  assert.match(md, /same step down the ladder/);
  assert.ok(md.includes(KNEE_DEFINITION));
  assert.match(
    md,
    /\| validation accuracy ≥ 90\.50% \(dense − 5 pp\) \| validation accuracy ≥ 90\.00% \(best − 1 pp\) \|/,
  );
  assert.match(md, /\| 90\.00% sparse \| 95\.00% sparse \| 98\.00% sparse \| 99\.00% sparse \| 99\.50% sparse \|/);
  assert.doesNotMatch(md, /cannot judge/);
});

Deno.test("seeds - HTML in headless Chromium: configuration fronts with error bars, the log axis of weights remaining, per-seed fronts, knob curves, labelled dense line", async () => {
  const { data } = sweep("[0, 1, 2]");
  const a = analyse(data);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/report.html`, await renderHtml(data, a));
    const page = await loadPage(
      `file://${dir}/report.html`,
      `(() => {
        const plot = (id) => document.getElementById("plot-" + id);
        const box = (e) => e.getBoundingClientRect();
        const rules = (id, prefix) => [...plot(id).querySelectorAll('line[aria-roledescription="rule mark"]')]
          .filter((l) => (l.getAttribute("aria-label") || "").startsWith(prefix));
        // each x-axis label at its tick's position (labels at the ends are flush, not centred on their ticks)
        const xLabels = (id) => {
          const axis = plot(id).querySelector('[aria-label^="X-axis"]');
          const ticks = [...axis.querySelectorAll(".role-axis-tick line")].map((l) => box(l).left);
          return Object.fromEntries([...axis.querySelectorAll(".role-axis-label text")].map((t, i) => [t.textContent, ticks[i]]));
        };
        return {
          plots: [...document.querySelectorAll(".plot")].map((p) => p.id),
          accuracyBars: rules("fronts", "accuracy ").map((l) => box(l).height),
          sparsityBars: rules("fronts", "sparsity ").map((l) => box(l).width),
          barTitles: rules("fronts", "accuracy ").map((l) => l.querySelector("title").textContent),
          logBars: rules("fronts-remaining", "accuracy ").length,
          remaining: xLabels("fronts-remaining"),
          linear: xLabels("fronts"),
          kneeNote: plot("fronts").nextElementSibling.id,
          texts: [...plot("fronts").querySelectorAll("text")].map((t) => t.textContent),
          seedLines: plot("seeds").querySelectorAll('[aria-roledescription="line mark"]').length,
          knobAxes: [...plot("knob").querySelectorAll('[aria-label^="X-axis"]')].map((g) => g.getAttribute("aria-label")),
          knobPoints: [...plot("knob").querySelectorAll('path[aria-roledescription="point"] title')].map((t) => t.textContent),
        };
      })()`,
    );
    await Deno.mkdir(`${ROOT}test-artifacts`, { recursive: true });
    await Deno.writeFile(`${ROOT}test-artifacts/report-seeds.png`, page.screenshot);
    await Deno.copyFile(`${dir}/report.html`, `${ROOT}test-artifacts/report-seeds.html`);
    assert.deepEqual(page.errors, []);
    const v = page.value as Record<string, unknown> & {
      accuracyBars: number[];
      sparsityBars: number[];
      barTitles: string[];
      remaining: Record<string, number>;
      linear: Record<string, number>;
      texts: string[];
      knobAxes: string[];
      knobPoints: string[];
    };
    assert.deepEqual(v.plots, [
      "plot-fronts",
      "plot-fronts-remaining",
      "plot-seeds",
      "plot-knob",
      "plot-hypervolume",
      "plot-compute",
      "plot-layers",
      "plot-loss",
    ]);
    // one vertical and one horizontal error bar per front point (5 gates, 4 edge-popup), drawn with a length
    assert.equal(v.accuracyBars.length, 9);
    assert.ok(v.accuracyBars.every((h) => h > 2), JSON.stringify(v.accuracyBars));
    assert.equal(v.sparsityBars.length, 9);
    assert.ok(v.sparsityBars.filter((w) => w > 1).length >= 5, JSON.stringify(v.sparsityBars)); // edge-popup's are 0
    assert.ok(
      v.barTitles.some((t) =>
        /^accuracy gates lambda=0\.001 method=gates own ticket, 3 seeds: sparsity 51% ± 1 \(95% interval [\d.]+-[\d.]+%\), validation accuracy 91% ± 1 /
          .test(t)
      ),
      v.barTitles.join("\n"),
    );
    assert.equal(v.logBars, 9);
    // weights remaining on a log axis: 10, 1 and 0.1% (90, 99, 99.9% sparse) evenly spaced, sparser to the right
    const r = v.remaining;
    assert.ok(r["100"]! < r["10"]! && r["10"]! < r["1"]! && r["1"]! < r["0.1"]!, JSON.stringify(r));
    const gap = r["10"]! - r["100"]!;
    assert.ok(
      gap > 50 && Math.abs(r["1"]! - r["10"]! - gap) < 1 && Math.abs(r["0.1"]! - r["1"]! - gap) < 1,
      JSON.stringify(r),
    );
    // (on the linear axis 90 → 99 would be a tenth of 0 → 90)
    assert.ok(v.linear["0"]! < v.linear["100"]!);
    assert.equal(v.kneeNote, "knee-definition");
    assert.ok(v.texts.includes("dense 95.5%"), v.texts.join("|"));
    assert.ok(v.texts.some((t) => /dashed: dense reference/.test(t)));
    // per-seed fronts: one line per method and seed
    assert.equal(v.seedLines, 6);
    // knob curves: lambda and k, each against sparsity and accuracy; a point per value, 3 seeds each
    assert.deepEqual(v.knobAxes.map((l) => l.match(/titled '(\w+)'/)![1]), ["lambda", "lambda", "k", "k"]);
    assert.equal(v.knobPoints.length, 8);
    assert.ok(
      v.knobPoints.includes(
        "gates lambda=0.01 (own tickets, 3 seeds): sparsity 96% ± 1 (95% interval 95-97%), validation accuracy 79% ± 1 (95% interval 78-80%)",
      ),
      v.knobPoints.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seeds - no dense trial: no dense line and no promise of one", async () => {
  const { data } = sweep("[0, 1, 2]", false);
  const a = analyse(data, { resamples: 50 });
  const spec = JSON.stringify(configChartSpec(data, a));
  assert.doesNotMatch(spec, /dashed|"dense /);
  assert.match(spec, /no dense reference in this sweep/);
  assert.ok(a.atAccuracyLevels.every((l) => l.basis.startsWith("best")));
  assert.doesNotMatch(await renderHtml(data, a), /dashed: dense/);
  // an interval reaching 100% sparsity ends at the log axis' floor, not at 0 weights remaining
  a.fronts[0]!.front.at(-1)!.sparsity.hi = 1;
  const log = configChartSpec(data, a, "remaining") as unknown as {
    layer: { data: { values: Record<string, number | null>[] } }[];
  };
  const lows = log.layer.flatMap((l) => l.data.values.map((v) => v.r_lo)).filter((v) => v !== null && v !== undefined);
  assert.ok(lows.length >= 9 && lows.every((v) => v! >= 0.1), JSON.stringify(lows));
  // the knob chart needs a swept knob: one lambda and one k are no curve
  const one = sweep("[0]");
  const single = {
    ...one.data,
    tickets: one.data.tickets.filter((t) => t.params["lambda"] !== 0.01 && t.params["k"] !== 0.3),
  };
  assert.equal(knobChartSpec(single, analyse(single, { resamples: 50 })), null);
});

Deno.test("seeds - below 3 seeds the Markdown, the HTML and the CLI summary say they cannot judge the spread, never a verdict", async () => {
  const verdict = /beyond the seed-to-seed spread|indistinguishable|within the seed-to-seed spread/;
  const { data, text, trials } = sweep("[0, 1]");
  const a = analyse(data, { resamples: 50 });
  assert.ok(a.fronts.every((f) => f.front.every((p) => p.accuracy.lo === null && p.accuracy.sd !== null)));
  const md = renderMarkdown(data, a);
  assert.match(md, /cannot judge the spread with 2 seeds \(needs 3\)/);
  assert.match(md, /\| 50\.50 \| 0\.71 \| cannot judge \(2 seeds\) \| 91\.50 \| 0\.71 \| cannot judge \(2 seeds\) \|/);
  assert.match(md, /\| gates \| [\d.]+ \| [\d.]+ \| cannot judge \(2 seeds\) \| cannot judge \(2 seeds\) \| 2 \|/);
  assert.doesNotMatch(md, verdict);
  const html = await renderHtml(data, a);
  assert.match(html, /cannot judge the spread with 2 seeds \(needs 3\)/);
  assert.match(html, /<td>cannot judge \(2 seeds\)<\/td>/);
  assert.doesNotMatch(html, verdict);
  assert.doesNotMatch(html, /error bars: 95% interval over seeds/); // no bar drawn
  const hv = html.match(/<div class="plot" id="plot-hypervolume">([\s\S]*?)<\/div>/)![1]!;
  assert.match(hv, /<title>gates: per seed [\d.]+ \(cannot judge the spread with 2 seeds\), pooled front/);
  // the CLI summary of a run directory with these results
  const root = await Deno.makeTempDir();
  try {
    const dir = await handMadeRunDir(root, text, trials, trials.map(resultOf), "2026-01-01T00:00:00Z");
    const lines: string[] = [];
    const log = console.log, err = console.error;
    console.log = (...x: unknown[]) => lines.push(x.join(" "));
    console.error = () => {};
    try {
      assert.equal(await reportMain([dir]), 0);
    } finally {
      console.log = log;
      console.error = err;
    }
    const out = lines.join("\n");
    assert.match(out, /### Configuration front: gates/);
    assert.match(out, /cannot judge the spread with 2 seeds \(needs 3\)/);
    assert.match(out, /gates vs edge-popup: .*cannot judge the spread with 2 seeds/);
    assert.doesNotMatch(out, verdict);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
