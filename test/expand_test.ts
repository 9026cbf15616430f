import assert from "node:assert/strict";
import { parseSpec } from "../src/spec/load.ts";
import { expandTrials, gridPoints } from "../src/spec/expand.ts";

const GRID = `name: g
parameters:
  lambda: {min: 1e-4, max: 1e-1, scale: log, count: 4}
  penalty: {values: [sum, mean]}
seeds: [0, 1, 2]
`;

Deno.test("expansion - grid is the cartesian product times the seeds", () => {
  const trials = expandTrials(parseSpec(GRID));
  assert.equal(trials.length, 4 * 2 * 3);
  const lambdas = [...new Set(trials.map((t) => t.params.lambda))];
  assert.deepEqual(lambdas, [0.0001, 0.001, 0.01, 0.1]);
  assert.equal(new Set(trials.map((t) => t.id)).size, trials.length);
  const t = trials.find((t) => t.params.lambda === 0.01 && t.params.penalty === "mean" && t.seed === 2)!;
  assert.equal(t.config.method.lambda, 0.01);
  assert.equal(t.config.method.penalty, "mean");
  assert.equal(t.config.seed, 2);
});

Deno.test("expansion - linear ranges include both ends", () => {
  assert.deepEqual(gridPoints({ min: 0, max: 1, scale: "linear", count: 5 }), [0, 0.25, 0.5, 0.75, 1]);
});

Deno.test("expansion - random search is reproducible for a seed and differs across seeds", () => {
  const spec = (seed: number) =>
    parseSpec(
      `name: r\nsearch: {strategy: random, samples: 10, seed: ${seed}}\nparameters:\n  lr: {min: 0.001, max: 0.1, scale: log}\n`,
    );
  const a = expandTrials(spec(1)).map((t) => t.params.lr);
  const b = expandTrials(spec(1)).map((t) => t.params.lr);
  const c = expandTrials(spec(2)).map((t) => t.params.lr);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  for (const v of a) assert.ok((v as number) >= 0.001 && (v as number) <= 0.1);
});

Deno.test("expansion - trial ids are stable across runs and processes", async () => {
  const ids = expandTrials(parseSpec(GRID)).map((t) => t.id);
  const code = `import { parseSpec } from "${new URL("../src/spec/load.ts", import.meta.url)}";
import { expandTrials } from "${new URL("../src/spec/expand.ts", import.meta.url)}";
console.log(JSON.stringify(expandTrials(parseSpec(${JSON.stringify(GRID)})).map((t) => t.id)));`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stderr: "inherit" }).output();
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), ids);
  // and a change of a parameter changes the ids
  const other = expandTrials(parseSpec(GRID.replace("1e-1", "2e-1"))).map((t) => t.id);
  assert.notDeepEqual(other, ids);
});

Deno.test("expansion - a method list crosses each method with only its own settings", () => {
  const spec = parseSpec(`name: m
parameters:
  method: {values: [gates, edge-popup, dense]}
  lambda: {values: [1.0e-6, 1.0e-5]}
  k: {values: [0.1, 0.3, 0.5]}
  edge-popup.lr: {values: [0.1, 0.2]}
seeds: [0, 1]
`);
  const trials = expandTrials(spec);
  const by = (m: string) => trials.filter((t) => t.config.method.name === m);
  assert.equal(by("gates").length, 2 * 2);
  assert.equal(by("edge-popup").length, 3 * 2 * 2);
  assert.equal(by("dense").length, 2);
  assert.deepEqual(Object.keys(by("gates")[0]!.params).sort(), ["lambda", "method"]);
  assert.deepEqual(Object.keys(by("edge-popup")[0]!.params).sort(), ["k", "lr", "method"]);
  assert.deepEqual(by("dense")[0]!.params, { method: "dense" });
  assert.equal(new Set(trials.map((t) => t.id)).size, trials.length);
  // every method sees the same frozen network and data
  assert.equal(new Set(trials.map((t) => JSON.stringify([t.config.model, t.config.dataset]))).size, 1);
  // random search draws a method, then its settings
  const random = expandTrials(parseSpec(`name: r
search: {strategy: random, samples: 30, seed: 1}
parameters:
  method: {values: [gates, edge-popup]}
  lambda: {min: 1.0e-6, max: 1.0e-4, scale: log}
  k: {min: 0.1, max: 0.9}
`));
  for (const t of random) {
    assert.deepEqual(
      Object.keys(t.params).sort(),
      t.params.method === "gates" ? ["lambda", "method"] : ["k", "method"],
    );
  }
  assert.ok(random.some((t) => t.params.method === "gates") && random.some((t) => t.params.method === "edge-popup"));
});
