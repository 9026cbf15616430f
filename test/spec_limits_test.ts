// Issue 11, case 11: every spec field that drives cost has an upper bound, checked at load time with its
// line and column, and the coordinator stops on SIGTERM however busy it is.
import assert from "node:assert/strict";
import { loadSpec, parseSpec } from "../src/spec/load.ts";
import { expandTrials, sweepIdOf, trialCount } from "../src/spec/expand.ts";
import { LIMIT_DEFAULTS } from "../src/spec/schema.ts";
import { SpecError, TicketsweepError } from "../src/util/errors.ts";
import { ROOT, tinySpecText } from "./_fixtures.ts";

/** The problems parseSpec reports for `text`, which must be a SpecError (never a RangeError or another throw). */
function issuesOf(text: string) {
  try {
    parseSpec(text, "s.yaml");
  } catch (e) {
    assert.ok(e instanceof SpecError, `expected a SpecError, got ${(e as Error)?.stack ?? e}`);
    return e.issues;
  }
  assert.fail("expected a SpecError");
}

/** parseSpec must answer within `ms` (a bound is useless if checking it is the runaway). */
function fast<T>(ms: number, f: () => T): T {
  const t0 = performance.now();
  const out = f();
  const took = performance.now() - t0;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms, expected under ${ms}`);
  return out;
}

Deno.test("spec limits - epochs: 1e308 is refused at the field with the limit and how to raise it", () => {
  const [i] = issuesOf("name: a\ntraining:\n  epochs: 1e308\n");
  assert.equal(i!.path, "training.epochs");
  assert.equal(i!.line, 3);
  assert.equal(i!.column, 11);
  assert.match(i!.message, /expected at most 100,000 \(limits\.max_epochs\), found 1e\+308/);
  assert.match(i!.message, /`limits: \{ max_epochs: N \}`/);
  // a swept value is bounded too, at the value
  const [swept] = issuesOf("name: a\nparameters:\n  epochs: {values: [10, 1.0e+9]}\n");
  assert.equal(swept!.path, "parameters.epochs.values.1");
  assert.equal(swept!.line, 3);
  assert.match(swept!.message, /found 1,000,000,000/);
  // and a spec that needs more says so
  const s = parseSpec("name: a\ntraining: {epochs: 150000}\nlimits: {max_epochs: 200000}\n");
  assert.equal(s.training.epochs, 150000);
});

Deno.test("spec limits - every cost-driving field has a bound, reported at its line and column", () => {
  const cases: [string, string, RegExp][] = [
    ["training:\n  batch_size: 1.0e+7\n", "training.batch_size", /limits\.max_batch_size/],
    ["dataset:\n  name: synthetic\n  train: 1.0e+9\n", "dataset.train", /limits\.max_samples/],
    ["dataset:\n  name: synthetic\n  test: 1.0e+9\n", "dataset.test", /limits\.max_samples/],
    ["model:\n  widths: [300, 1.0e+9]\n", "model.widths.1", /limits\.max_width/],
    ["model:\n  widths: [" + Array(1001).fill(1).join(", ") + "]\n", "model.widths", /1,001 layers.*max_depth/],
    ["model:\n  dim: 1.0e+6\n", "model.dim", /limits\.max_width/],
    ["model:\n  heads: 1.0e+6\n", "model.heads", /limits\.max_width/],
    ["model:\n  mlp_ratio: 100000\n", "model.mlp_ratio", /dim × mlp_ratio = 6,400,000.*max_width/],
    ["model:\n  depth: 1.0e+6\n", "model.depth", /limits\.max_depth/],
    ["parameters:\n  lr: {min: 0.1, max: 1, count: 1.0e+9}\n", "parameters.lr.count", /limits\.max_trials/],
    ["search:\n  strategy: random\n  samples: 1.0e+9\n", "search.samples", /limits\.max_trials/],
    ["parameters:\n  batch_size: {min: 1, max: 1.0e+9, count: 2}\n", "parameters.batch_size.max", /max_batch_size/],
  ];
  for (const [body, path, message] of cases) {
    const issues = issuesOf(`name: a\n${body}`);
    const i = issues.find((x) => x.path === path);
    assert.ok(i, `${path}: ${JSON.stringify(issues)}`);
    assert.ok(i.line >= 2 && i.column >= 1, `${path} at ${i.line}:${i.column}`);
    assert.match(i.message, message, path);
    assert.match(i.message, /raise the limit with `limits: \{ max_\w+: N \}`/, path);
  }
  // the limits themselves are validated
  const bad = issuesOf("name: a\nlimits: {max_trials: 0, max_epoch: 3}\n");
  assert.deepEqual(bad.map((i) => i.path), ["limits.max_trials", "limits.max_epoch"]);
  assert.match(bad[1]!.message, /did you mean 'max_epochs'\?/);
});

Deno.test("spec limits - the sweeps/ examples are far inside every limit", async () => {
  for (const f of ["quickstart", "mnist-fc-methods"]) {
    const spec = await loadSpec(`${ROOT}sweeps/${f}.yaml`);
    assert.ok(trialCount(spec).trials <= LIMIT_DEFAULTS.max_trials / 100);
  }
});

Deno.test("spec limits - a 10⁹-trial grid is refused before expansion, with its count; limits.max_trials raises it", () => {
  const grid = `name: huge
parameters:
  lambda: {min: 1.0e-7, max: 1.0e-4, scale: log, count: 1000}
  lr: {min: 0.01, max: 0.1, count: 1000}
  sigma: {min: 0.1, max: 1, count: 1000}
`;
  const [i] = fast(500, () => issuesOf(grid));
  assert.equal(i!.path, "parameters");
  assert.equal(i!.line, 2);
  assert.match(
    i!.message,
    /1,000,000,000 trials \(gates: lambda 1,000 × lr 1,000 × sigma 1,000 points; × 1 seed\), more than limits\.max_trials \(100,000\)/,
  );
  assert.match(i!.message, /`limits: \{ max_trials: N \}`/);
  // seeds multiply
  const seeded = issuesOf("name: a\nparameters:\n  lr: {min: 0.01, max: 0.1, count: 60000}\nseeds: [0, 1]\n");
  assert.match(seeded[0]!.message, /120,000 trials/);
  // random search: samples × seeds, at search.samples
  const [r] = issuesOf("name: a\nsearch: {strategy: random, samples: 60000}\nseeds: [0, 1]\n");
  assert.equal(r!.path, "search.samples");
  assert.match(r!.message, /120,000 trials \(60,000 samples × 2 seeds\)/);
  // raised: it parses, counts without expanding, and keeps its sweep id
  const raised = parseSpec(grid.replace("name: huge\n", "name: huge\nlimits: {max_trials: 1000000000}\n"));
  assert.equal(trialCount(raised).trials, 1e9);
  assert.equal(sweepIdOf(raised), sweepIdOf({ ...raised, limits: undefined }));
  // expansion refuses a spec over its limit at once, whoever built it
  assert.throws(
    () => fast(500, () => expandTrials({ ...raised, limits: undefined })),
    (e) => e instanceof TicketsweepError && /1,000,000,000 trials/.test(e.message),
  );
});

Deno.test("spec limits - a spec file over 1 MiB is refused before parsing; a description over 10,000 characters at its line", async () => {
  const huge = "name: a\ndescription: " + "x".repeat(50_000_000) + "\n";
  const [i] = fast(1000, () => issuesOf(huge));
  assert.match(i!.message, /a spec file is at most 1 MiB \(1,048,576 bytes\), found 50,000,022 characters/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/big.yaml`, "name: a\ndescription: " + "x".repeat(2_000_000) + "\n");
    await assert.rejects(
      () => loadSpec(`${dir}/big.yaml`),
      (e) => e instanceof SpecError && /at most 1 MiB .* found 2,000,022 bytes/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const [d] = issuesOf("name: a\ndescription: " + "x".repeat(10_001) + "\n");
  assert.equal(d!.path, "description");
  assert.equal(d!.line, 2);
  assert.equal(d!.column, 14);
  assert.match(d!.message, /expected at most 10,000 characters, found 10,001/);
  assert.equal(parseSpec("name: a\ndescription: " + "x".repeat(10_000) + "\n").description!.length, 10_000);
});

Deno.test("spec limits - a YAML alias bomb, an alias without anchor and a self-referencing alias are located spec errors", () => {
  const levels = "abcdefghi";
  const bomb = "name: a\n" +
    [...levels].map((l, k) => `${l}: &${l} [${Array(9).fill(k === 0 ? '"lol"' : `*${levels[k - 1]}`).join(", ")}]`)
      .join("\n") +
    "\n";
  const [i] = fast(1000, () => issuesOf(bomb));
  assert.match(
    i!.message,
    /YAML aliases expand to more than 10,000 values by here \(\*d alone is 7,381\): an alias bomb\?/,
  );
  assert.equal(i!.line, 6); // e: the first alias past the limit
  assert.equal(i!.column, 8);
  const [u] = issuesOf("name: a\nseeds: *nope\n");
  assert.match(u!.message, /YAML alias \*nope has no anchor &nope before it/);
  assert.deepEqual([u!.line, u!.column], [2, 8]);
  const [c] = issuesOf("name: a\nx: &a [*a]\n");
  assert.match(c!.message, /alias \*a refers to a node that contains it/);
  // a few aliases are fine
  const ok = parseSpec("name: a\nseeds: &s [0, 1]\nparameters:\n  lambda: {values: *s}\n");
  assert.deepEqual(ok.parameters["lambda"]!.values, [0, 1]);
});

Deno.test("spec limits - 10,000-deep nesting is a located spec error, not a stack overflow", () => {
  const deep: [string, string][] = [
    ["flow sequences", "x: " + "[".repeat(10_000) + "]".repeat(10_000)],
    ["flow mappings", "x: " + "{a: ".repeat(10_000) + "1" + "}".repeat(10_000)],
    ["compact sequences", "x:\n" + "- ".repeat(10_000) + "1"],
    ["block mappings", "x:\n" + Array.from({ length: 1000 }, (_, k) => " ".repeat(k + 1) + "a:").join("\n") + " 1"],
    ["anchors", "x: " + "&a ".repeat(10_000) + "1"],
    ["65 levels", "x: " + "[".repeat(65) + "]".repeat(65)],
    ["aliases", Array.from({ length: 70 }, (_, k) => `a${k}: &a${k} [${k ? `*a${k - 1}` : "1"}]`).join("\n")],
  ];
  for (const [what, body] of deep) {
    const issues = fast(2000, () => issuesOf(`name: a\n${body}\n`));
    assert.equal(issues.length, 1, what);
    assert.match(issues[0]!.message, /YAML nested more than 64 levels deep here/, what);
    assert.ok(issues[0]!.line >= 2, `${what}: line ${issues[0]!.line}`);
  }
  // the exact check points at the first collection past the limit: the 64th `[` (the root mapping is level 1)
  const [i] = issuesOf("name: a\nx: " + "[".repeat(65) + "]".repeat(65) + "\n");
  assert.deepEqual([i!.line, i!.column], [2, 3 + 64]);
  // brackets, dashes and braces inside comments, quotes and block scalars are not nesting
  const lots = "[".repeat(300), dashes = "- ".repeat(300);
  const spec = parseSpec(`# ${lots}
name: tricky
description: |
  ${lots}
  ${dashes}
   ${"{".repeat(300)}
model:
  masked: ["${lots}", '${lots}''s', "a\\"${lots}"]
  widths:
    - 300
    - 100
seeds:
- 0
- 1
`);
  assert.equal(spec.model.masked.length, 3);
  assert.equal(parseSpec(`name: p\ndescription: plain ${lots} text\n  continued ${dashes}\n`).name, "p");
});

Deno.test("spec limits - .inf, -.inf and .nan anywhere are located errors, never null in sweep.json", () => {
  const cases: [string, string, number, number, string][] = [
    ["training: {lr: .inf}\n", "training.lr", 2, 16, ".inf"],
    ["training:\n  lr: .nan\n", "training.lr", 3, 7, ".nan"],
    ["method:\n  lambda: -.inf\n", "method.lambda", 3, 11, "-.inf"],
    ["method:\n  lambda: .nan\n", "method.lambda", 3, 11, ".nan"],
    ["parameters:\n  lambda: {min: -.inf, max: 1, count: 2}\n", "parameters.lambda.min", 3, 17, "-.inf"],
    ["parameters:\n  lambda: {min: 0, max: .inf, count: 2}\n", "parameters.lambda.max", 3, 25, ".inf"],
    ["parameters:\n  lr: {values: [0.1, .nan]}\n", "parameters.lr.values.1", 3, 22, ".nan"],
    ["seeds: [0, .inf]\n", "seeds.1", 2, 12, ".inf"],
  ];
  for (const [yaml, path, line, column, found] of cases) {
    const issues = issuesOf(`name: a\n${yaml}`);
    assert.equal(issues.length, 1, `${yaml}: ${JSON.stringify(issues)}`);
    assert.deepEqual(issues[0], { path, line, column, message: `expected a finite number, found ${found}` });
  }
});

Deno.test("spec limits - seeds: [0, 0, 0] and a repeated grid value are refused, naming the value", () => {
  const issues = issuesOf("name: a\nseeds: [0, 0, 0]\n");
  assert.deepEqual(issues.map((i) => [i.path, i.line, i.column]), [["seeds.1", 2, 12], ["seeds.2", 2, 15]]);
  assert.match(issues[0]!.message, /duplicate seed 0 \(also seeds\.0\)/);
  const [v] = issuesOf("name: a\nparameters:\n  lr: {values: [0.1, 0.2, 0.1]}\n");
  assert.equal(v!.path, "parameters.lr.values.2");
  assert.match(v!.message, /duplicate value 0\.1 \(also at values\.0\)/);
  const [m] = issuesOf("name: a\nparameters:\n  method: {values: [gates, gates]}\n");
  assert.match(m!.message, /duplicate value "gates"/);
});

/** Starts the sweep CLI on `spec` in-process (no broker), waits for `ready` in its output, then signals it. */
async function signalledSweep(
  spec: string,
  ready: RegExp,
  signals: { signal: Deno.Signal; after: RegExp | number }[],
): Promise<{ code: number; text: string; afterFirstS: number }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.yaml`, spec);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/sweep.ts`, `${dir}/s.yaml`, "--runs", dir],
      env: { NO_COLOR: "1", NATS_SERVER_BIN: "/nonexistent/nats-server" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        for (const w of waiters) if (w.re.test(text)) w.resolve();
      }
    };
    const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
    const waitFor = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${re} within 20 s:\n${text}`)), 20_000);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        if (re.test(text)) resolve();
      });
    let first = 0;
    try {
      await waitFor(ready);
      for (const { signal, after } of signals) {
        if (typeof after === "number") await new Promise((r) => setTimeout(r, after));
        else await waitFor(after);
        first ||= performance.now();
        child.kill(signal);
      }
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    } finally {
      const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await child.status.finally(() => clearTimeout(guard));
      await pumped;
    }
    const { code } = await child.status;
    return { code, text, afterFirstS: (performance.now() - first) / 1000 };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("sweep CLI - SIGTERM stops a running sweep and says how to resume; a second one stops it at once", async () => {
  const spec = tinySpecText("sigterm", 2, "backend: js\n", 2000);
  const once = await signalledSweep(spec, /[1-9] running/, [{ signal: "SIGTERM", after: 300 }]);
  assert.ok(once.afterFirstS < 10, `exited ${once.afterFirstS.toFixed(1)} s after SIGTERM`);
  assert.notEqual(once.code, 0, once.text);
  assert.match(once.text, /interrupted \(SIGTERM\): stopping; the sweep can be continued with --resume \S+sigterm-/);
  const twice = await signalledSweep(spec, /[1-9] running/, [
    { signal: "SIGTERM", after: 300 },
    { signal: "SIGTERM", after: /interrupted \(SIGTERM\)/ },
  ]);
  assert.equal(twice.code, 143, twice.text);
  assert.ok(twice.afterFirstS < 5, `exited ${twice.afterFirstS.toFixed(1)} s after SIGTERM`);
  // the main thread answers it, or (on a loaded machine, mid-step) the signal thread a second later: both stop now
  assert.match(
    twice.text,
    /interrupted again \(SIGTERM\)(?:: stopping| while busy: exiting) now; the sweep can be continued with --resume/,
  );
});

Deno.test("sweep CLI - SIGTERM while the coordinator is busy planning a large sweep still ends it", async () => {
  // 10⁶ trials (allowed by its limits): hashing their ids for the plan's table takes seconds, synchronously, so the
  // signal lands while the main thread is busy; the signal thread ends it after 3 s, or the main thread answers
  // first (hashing done) and stops the sweep. Either way it ends, says what to do next and records nothing.
  const spec = `name: busy
limits: {max_trials: 1000000}
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32]}
parameters:
  lambda: {min: 1.0e-4, max: 3.0e-2, scale: log, count: 1000}
  lr: {min: 0.01, max: 0.1, count: 1000}
backend: js
`;
  const r = await signalledSweep(spec, /running in this process/, [{ signal: "SIGTERM", after: 500 }]);
  assert.notEqual(r.code, 0, r.text);
  assert.ok(r.afterFirstS < 30, `exited ${r.afterFirstS.toFixed(1)} s after SIGTERM`);
  if (r.code === 143 && /while busy/.test(r.text)) {
    assert.match(
      r.text,
      /interrupted \(SIGTERM\) while busy for 3 s: exiting now; (?:nothing was recorded yet|the sweep can be continued with --resume)/,
    );
  } else {
    assert.match(r.text, /interrupted \(SIGTERM\): stopping;/);
    assert.match(r.text, /0 done, 0 failed, 1000000 pending/);
    assert.match(r.text, /continue it with: deno task sweep --resume \S+busy-/);
  }
});
