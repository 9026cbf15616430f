// A large sweep's coordinator state: compact planned trials (configurations resolved when asked), sweep.json
// version 2 (no configurations), and the incremental hypervolume behind the report's compute curve.
import assert from "node:assert/strict";
import { readManifest, type SweepManifest, writeManifest } from "../src/coordinator/run_dir.ts";
import { hypervolume, HypervolumeTracker } from "../src/pareto/hypervolume.ts";
import { expandTrials, resolveTrialConfig, sweepIdOf, trialEpochs, trialGroup } from "../src/spec/expand.ts";
import { Plan } from "../src/spec/plan.ts";
import { parseSpec } from "../src/spec/load.ts";
import { prettyJsonChunks, writeJson, writeReportFiles } from "../src/report/write.ts";
import { WIRE_VERSION } from "../src/broker/messages.ts";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { buildReportData, paretoJson, plainRow } from "../src/report/data.ts";
import { analyse } from "../src/report/analysis.ts";
import { CHART_POINTS, computeChartSpec, configChartSpec, renderSvg } from "../src/report/charts.ts";
import { renderHtml } from "../src/report/html.ts";
import { renderMarkdown } from "../src/report/markdown.ts";
import { trialsCsv } from "../src/report/export.ts";
import { TABLE_ROWS } from "../src/report/tables.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import type { TrialMetrics } from "../src/train/result.ts";
import { runWorker } from "../src/worker/worker.ts";
import { Rng } from "../src/util/rng.ts";

const MIXED = `name: mixed
dataset: {name: synthetic}
method: {name: gates, lambda: 1.0e-6}
training: {batch_size: 64}
parameters:
  method: {values: [gates, cs, supermask, edge-popup, dense]}
  lambda: {values: [1.0e-5, 1.0e-3]}
  k: {values: [0.3, 0.7]}
  lr: {values: [0.01, 0.1]}
  epochs: {values: [1, 3]}
seeds: [0, 5]
`;

Deno.test("scale - a planned trial's configuration is resolveTrialConfig's, its group and epochs without resolving", () => {
  const spec = parseSpec(MIXED);
  const trials = expandTrials(spec);
  assert.ok(trials.length > 40, String(trials.length));
  const methods = new Set<string>();
  for (const t of trials) {
    const expected = resolveTrialConfig(spec, t.params, t.seed);
    assert.deepEqual(t.config, expected, t.id);
    assert.equal(trialGroup(t), expected.method.name);
    assert.equal(trialEpochs(t), expected.training.epochs);
    methods.add(trialGroup(t));
  }
  assert.deepEqual([...methods].sort(), ["cs", "dense", "edge-popup", "gates", "supermask"]);
  // each call gives its own method and training objects: changing one trial's never changes another's
  const [a, b] = trials as [typeof trials[0], typeof trials[0]];
  const ca = a.config;
  (ca.training as { lr: number }).lr = 123;
  assert.notEqual(a.config.training.lr, 123);
  assert.notEqual(b.config.training.lr, 123);
});

Deno.test("scale - sweep.json version 3 holds no trial list: the plan is the spec's, read by index; version 2 is still read", async () => {
  const spec = parseSpec(
    `name: big\ndataset: {name: synthetic}\nparameters:\n  lambda: {min: 0, max: 1, count: 20000}\n`,
  );
  const trials = expandTrials(spec);
  assert.equal(trials.length, 20000);
  assert.deepEqual(Object.keys(trials[0]!).sort(), ["id", "params", "seed", "sweepId"]);
  const dir = await Deno.makeTempDir();
  try {
    const m: SweepManifest = {
      format: "ticketsweep-sweep",
      version: 3,
      sweep_id: sweepIdOf(spec),
      name: spec.name,
      spec_file: "big.yaml",
      spec_text: "",
      spec,
      trials: Plan.of(spec),
      created_at: new Date().toISOString(),
    };
    await writeManifest(dir, m);
    // the spec and the plan's size and fingerprint: the same few kilobytes whatever the size of the plan
    const bytes = (await Deno.stat(`${dir}/sweep.json`)).size;
    assert.ok(bytes < 4000, `sweep.json is ${bytes} bytes`);
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
    assert.equal(raw.version, 3);
    assert.equal(raw.trials, undefined);
    assert.deepEqual(raw.plan, { trials: 20000, fingerprint: (m.trials as Plan).fingerprint });
    const back = await readManifest(dir);
    assert.ok(back.trials instanceof Plan);
    assert.deepEqual(back.trials.map((t) => t.id), trials.map((t) => t.id));
    for (const i of [0, 1, 9999, 19999]) assert.deepEqual(back.trials.at(i).config, trials[i]!.config);
    // version 2 (each trial's id, parameters and seed): read, as the same plan read by index
    const v2 = { ...raw, version: 2, plan: undefined, trials: trials.map((t) => t.toJSON()) };
    await Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(v2, null, 2));
    const old = await readManifest(dir);
    assert.equal(old.version, 2);
    assert.equal(old.trials.fingerprint, back.trials.fingerprint);
    assert.deepEqual(old.trials.map((t) => t.id), trials.map((t) => t.id));
    assert.deepEqual(old.trials.at(19999).config, trials[19999]!.config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale - sweep.json version 1 (every trial with its configuration) is still read, configurations as written", async () => {
  const spec = parseSpec(`name: old\ndataset: {name: synthetic}\nparameters:\n  lambda: {values: [0.1, 0.2]}\n`);
  const trials = expandTrials(spec).map((t) => ({ ...t, config: { ...t.config, backend: "js" as const } }));
  const dir = await Deno.makeTempDir();
  try {
    const m = {
      format: "ticketsweep-sweep",
      version: 1,
      sweep_id: sweepIdOf(spec),
      name: spec.name,
      spec_file: "old.yaml",
      spec_text: "",
      spec,
      trials,
      created_at: new Date().toISOString(),
    };
    await Deno.writeTextFile(`${dir}/sweep.json`, JSON.stringify(m, null, 2));
    const back = await readManifest(dir);
    assert.equal(back.version, 1);
    assert.deepEqual(back.trials.map((t) => t.config.backend), ["js", "js"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale - the incremental hypervolume agrees with hypervolume() after every point", () => {
  const rng = new Rng(7, 3);
  const tracker = new HypervolumeTracker();
  const points: { x: number; y: number }[] = [];
  for (let i = 0; i < 600; i++) {
    // on a coarse grid, so that equal x, equal y and exact duplicates happen; some outside the reference box
    const p = { x: Math.round(rng.uniform() * 40) / 40 - 0.05, y: Math.round(rng.uniform() * 40) / 40 };
    points.push(p);
    tracker.add(p);
    assert.ok(Math.abs(tracker.value - hypervolume(points)) < 1e-12, `after ${i + 1}: ${tracker.value}`);
  }
  const line = new HypervolumeTracker(); // every point on the front, added out of order (the dispatch bench's)
  const all: { x: number; y: number }[] = [];
  for (let i = 0; i < 2000; i++) {
    const x = (i * 7919) % 2000 / 2000;
    all.push({ x, y: 0.99 - 0.5 * x });
    line.add(all.at(-1)!);
  }
  assert.ok(Math.abs(line.value - hypervolume(all)) < 1e-9);
});

Deno.test("scale - report JSON written in pieces is JSON.stringify(value, null, 2) byte for byte", async () => {
  const rows = Array.from({ length: 1500 }, (_, i) => ({
    id: `t${i}`,
    x: i / 7,
    skip: undefined,
    tags: i % 3 ? [] : ["a\nb", { deep: [1, { z: null }] }],
    nested: { empty: {}, list: [i, undefined, 'q"uote'] },
  }));
  const value = {
    v: 1,
    name: "line\nbreak, é € 😀 (UTF-8 of 2, 3 and 4 bytes)",
    empty: [],
    none: {},
    gone: undefined,
    trials: rows,
    fronts: [{ group: "gates", points: rows.slice(0, 1200) }, { group: "cs", points: [] }],
    when: new Date(0),
  };
  const dir = await Deno.makeTempDir();
  try {
    await writeJson(`${dir}/x.json`, value);
    assert.equal(await Deno.readTextFile(`${dir}/x.json`), JSON.stringify(value, null, 2) + "\n");
    assert.equal([...prettyJsonChunks(value, "")].length > 1000, true); // in pieces, not one string
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale - report rows kept as columns read back each field of their results (null, absent, replaced)", () => {
  const text = `name: cols\ndataset: {name: synthetic}\nparameters:\n  lambda: {values: [0.1, 0.2, 0.3, 0.4, 0.5]}\n`;
  const trials = expandTrials(parseSpec(text));
  const worker = { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" };
  const base = (i: number, status: string) => ({
    v: WIRE_VERSION,
    sweep_id: trials[i]!.sweepId,
    trial_id: trials[i]!.id,
    status,
    attempt: 1 + i,
    worker,
    finished_at: "2026-01-01T00:00:00Z",
    claim: "c",
  });
  const layers = [{ layer: "fc1", shape: [4, 4], total: 16, kept: 4, sparsity: 0.75 }];
  const metrics = (extra: Partial<TrialMetrics>) => ({
    accuracy: 0.9,
    val_accuracy: 0.8,
    soft_accuracy: 0.7,
    sparsity: 0.6,
    layers: [],
    masked_layers: ["fc1"],
    loss_curve: [],
    steps: 1,
    steps_per_s: 2.5,
    train_s: 3,
    wall_s: 3,
    backend: "js",
    device: "cpu",
    data: "synthetic",
    ticket: null,
    ...extra,
  });
  const results = [
    { ...base(0, "failed"), error: "first attempt" }, // replaced by the next line
    { ...base(0, "done"), metrics: metrics({ val_accuracy: null, soft_accuracy: null, layers }) },
    { ...base(1, "done"), metrics: metrics({}) },
    { ...base(2, "failed"), error: "out of memory" },
    { ...base(3, "stopped"), metrics: metrics({ stopped: { epochs: 1.5, planned_epochs: 3, rung_epoch: 1 } }) },
    { ...base(4, "done"), trial_id: "not-in-plan", metrics: metrics({}) },
  ] as unknown as RecordedResult[];
  const d = buildReportData(sweepIdOf(parseSpec(text)), "cols", trials, results, text);
  const head = (i: number) => ({
    trial_id: trials[i]!.id,
    group: "gates",
    params: trials[i]!.params,
    seed: 0,
    label: `lambda=${0.1 * (i + 1)} seed=0`.replace("0.30000000000000004", "0.3"),
  });
  const measured = {
    accuracy: 0.9,
    val_accuracy: 0.8,
    soft_accuracy: 0.7,
    sparsity: 0.6,
    steps_per_s: 2.5,
    train_s: 3,
  };
  assert.deepEqual(d.trials.map(plainRow), [
    {
      ...head(0),
      status: "done",
      attempt: 1,
      worker: "h/w",
      ...measured,
      val_accuracy: null,
      soft_accuracy: null,
      backend: "js",
      layers,
      loss_curve: [],
      score: 0.9,
      dominated: false,
    },
    {
      ...head(1),
      status: "done",
      attempt: 2,
      worker: "h/w",
      ...measured,
      backend: "js",
      layers: [],
      loss_curve: [],
      score: 0.9,
      dominated: false, // the same point as the first: neither dominates
    },
    { ...head(2), status: "failed", attempt: 3, worker: "h/w", error: "out of memory" },
    {
      ...head(3),
      status: "stopped",
      attempt: 4,
      worker: "h/w",
      ...measured,
      backend: "js",
      layers: [],
      loss_curve: [],
      stopped: { epochs: 1.5, planned_epochs: 3 },
    },
    { ...head(4), status: "pending" },
  ]);
  assert.equal(d.selection, "test"); // one done trial has no validation accuracy
});

Deno.test("scale - a 3,000-trial report: charts drawn from evenly spaced points and say so, tables of 1,000 rows", async () => {
  const text = `name: wide\ndataset: {name: synthetic}\nparameters:\n  lambda: {min: 0, max: 1, count: 3000}\n`;
  const trials = expandTrials(parseSpec(text));
  const results: RecordedResult[] = trials.map((t, i) => ({
    v: WIRE_VERSION,
    sweep_id: t.sweepId,
    trial_id: t.id,
    status: "done",
    attempt: 1,
    metrics: noopMetrics(t.params["lambda"] as number),
    worker: { id: `w${i % 4}`, host: "h", backend: "js", device: "none", deno: "2" },
    finished_at: new Date(0).toISOString(),
    claim: "c",
  }));
  const d = buildReportData("wide-1", "wide", trials, results, text);
  const a = analyse(d);
  const compute = computeChartSpec(d)! as { usermeta?: { thinned?: { drawn: number; total: number } } };
  assert.equal(compute.usermeta?.thinned?.total, 3000);
  assert.ok(compute.usermeta!.thinned!.drawn <= CHART_POINTS);
  const svg = await renderSvg(configChartSpec(d, a));
  assert.match(svg, /of 3,000 points drawn, evenly spaced/);
  const html = await renderHtml(d, a);
  const rows = html.slice(html.indexOf('<table id="trials"')).split("</table>")[0]!.match(/<tr>/g)!.length;
  assert.equal(rows, TABLE_ROWS + 1); // the header and 1,000 trials
  assert.match(html, /1,000 of 3,000 rows shown, evenly spaced: trials\.csv has every trial/);
  assert.equal(trialsCsv(d).trim().split("\n").length, 3001);
  assert.match(renderMarkdown(d, a), /1,000 of 3,000 rows shown/);
});

Deno.test("scale - a plan is published as results come in: never more than publishAhead out, each trial recorded once", async () => {
  const runs = await Deno.makeTempDir();
  const transport = new MemoryTransport();
  let published = 0, recorded = 0, most = 0;
  const publishTrial = transport.publishTrial.bind(transport);
  transport.publishTrial = (t, n) => {
    most = Math.max(most, ++published - recorded);
    return publishTrial(t, n);
  };
  const ac = new AbortController();
  const worker = runWorker({
    transport,
    backend: "js",
    signal: ac.signal,
    runTrial: (t) => Promise.resolve(noopMetrics(Number(t.params["lambda"]))),
  });
  try {
    const text = `name: ahead\ndataset: {name: synthetic}\nparameters:\n  lambda: {min: 0, max: 1, count: 120}\n`;
    const logs: string[] = [];
    const outcome = await runSweep({
      spec: parseSpec(text),
      specText: text,
      specFile: "ahead.yaml",
      runsDir: runs,
      transport,
      publishAhead: 16,
      log: (l) => {
        logs.push(l);
        if (l.startsWith("[")) recorded++;
      },
    });
    assert.ok(outcome.complete, logs.slice(-5).join("\n"));
    assert.equal(published, 120);
    assert.ok(most <= 16 && most >= 8, `at most ${most} published and not recorded`);
    assert.ok(logs.some((l) => l === `published 120 trials of ${outcome.sweepId}`), logs.join("\n"));
    const ids = (await Deno.readTextFile(`${outcome.runDir}/results.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l).trial_id
    );
    assert.equal(new Set(ids).size, 120);
    assert.equal(ids.length, 120);
  } finally {
    ac.abort();
    await worker;
    await transport.close();
    await Deno.remove(runs, { recursive: true });
  }
});

function noopMetrics(lambda: number): TrialMetrics {
  return {
    accuracy: 0.99 - 0.5 * lambda,
    soft_accuracy: null,
    sparsity: lambda,
    layers: [],
    masked_layers: [],
    loss_curve: [],
    steps: 0,
    steps_per_s: 0,
    train_s: 0,
    wall_s: 0,
    backend: "none",
    device: "none",
    data: "synthetic",
    ticket: null,
  };
}

Deno.test("scale - the report reads the results once, one at a time; pareto.json and trials.csv written as made", async () => {
  const text = `name: once\ndataset: {name: synthetic}\nparameters:\n  lambda: {min: 0, max: 1, count: 40}\n`;
  const trials = expandTrials(parseSpec(text));
  const results: RecordedResult[] = trials.slice(0, 30).map((t, i) => ({
    v: WIRE_VERSION,
    sweep_id: t.sweepId,
    trial_id: t.id,
    status: i % 7 === 3 ? "failed" : "done",
    attempt: 1,
    ...(i % 7 === 3
      ? { error: "boom", failure: "error" as const }
      : { metrics: noopMetrics(Number(t.params["lambda"])) }),
    worker: { id: `w${i % 3}`, host: "h", backend: "js", device: "none", deno: "2" },
    finished_at: new Date(0).toISOString(),
    claim: "c",
  }));
  let reads = 0;
  const once = (function* () {
    reads++;
    yield* results;
  })(); // a generator: a second pass over it would see nothing
  const d = buildReportData("once-1", "once", trials, once, text);
  assert.equal(reads, 1);
  assert.deepEqual(d, buildReportData("once-1", "once", trials, results, text));
  assert.equal(d.counts.done + d.counts.failed, 30);
  const dir = await Deno.makeTempDir();
  try {
    await writeReportFiles(dir, d);
    const pareto = await Deno.readTextFile(`${dir}/pareto.json`);
    assert.equal(pareto, JSON.stringify(paretoJson(d), null, 2) + "\n"); // streamed rows = the whole array's text
    assert.equal(JSON.parse(pareto).trials.length, d.counts.done);
    assert.equal(await Deno.readTextFile(`${dir}/trials.csv`), trialsCsv(d));
    assert.equal(trialsCsv(d).trim().split("\n").length, 1 + trials.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
