// Adaptive search (search.strategy: adaptive): spec fields, proposal determinism, gap targeting, a sweep over the
// in-memory transport, and a resume after a SIGKILLed coordinator with a real nats-server.
import assert from "node:assert/strict";
import type { RecordedResult } from "../src/coordinator/record.ts";
import { readManifest } from "../src/coordinator/run_dir.ts";
import { initialDesign, type Proposal, ProposalLog, proposeNext, searchProgress } from "../src/coordinator/search.ts";
import { resumeSweep } from "../src/coordinator/sweep.ts";
import { dryRun } from "../src/cli/dry_run.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runWorker } from "../src/worker/worker.ts";
import { resolveTrialConfig, sweepIdOf, trialIdOf } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { SpecError } from "../src/util/errors.ts";
import type { SweepSpec } from "../src/spec/schema.ts";
import { Rng } from "../src/util/rng.ts";
import { cluster, recorded, startCoordinator, until } from "./_cluster.ts";
import { presenceOf, runInProcess } from "./_fixtures.ts";

function adaptiveText(name: string, search: string, epochs = 2): string {
  return `version: 1
name: ${name}
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
tickets: {cuts: 4}
parameters:
  lambda: {min: 1.0e-4, max: 3.0e-1, scale: log}
  lr: {min: 0.01, max: 0.1, scale: log}
search: {strategy: adaptive, ${search}}
training: {epochs: ${epochs}, batch_size: 64}
`;
}

function specErrors(text: string): string {
  try {
    parseSpec(text, "s.yaml");
  } catch (e) {
    if (e instanceof SpecError) return e.message;
    throw e;
  }
  return "";
}

/** The lines of a JSONL file. */
async function jsonl<T>(path: string): Promise<T[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}

/**
 * Every recorded proposal is what proposeNext gives from the results recorded before it (the first `basis` lines
 * of results.jsonl, shuffled: arrival order must not matter) and the proposals before it.
 */
async function assertReplays(spec: SweepSpec, runDir: string): Promise<Proposal[]> {
  const proposals = await jsonl<Proposal>(`${runDir}/proposals.jsonl`);
  const results = await jsonl<RecordedResult>(`${runDir}/results.jsonl`);
  const rng = new Rng(5);
  proposals.forEach((p, k) => {
    const known = results.slice(0, p.basis);
    for (let i = known.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [known[i], known[j]] = [known[j]!, known[i]!];
    }
    const again = proposeNext(spec, sweepIdOf(spec), known, proposals.slice(0, k));
    const { basis: _basis, ...made } = p;
    assert.deepEqual(again, made, `proposal ${k} is not what its results give`);
  });
  return proposals;
}

Deno.test("adaptive search - spec: budget required, within limits.max_trials, fields located, grid fields refused", () => {
  assert.match(
    specErrors(adaptiveText("a", "seed: 0")),
    /s\.yaml:9:\d+ search\.budget: adaptive search needs `budget`/,
  );
  assert.match(
    specErrors(adaptiveText("a", "budget: 500") + "limits: {max_trials: 100}\n"),
    /s\.yaml:9:\d+ search\.budget: expected at most 100 \(limits\.max_trials\), found a budget of 500 trials/,
  );
  assert.match(specErrors(adaptiveText("a", "budget: 8, samples: 3")), /search\.samples: `samples` is for random/);
  assert.match(specErrors(adaptiveText("a", "budget: 8, patience: 0")), /search\.patience: expected/);
  assert.match(
    specErrors(adaptiveText("a", "budget: 2") + "seeds: [0, 1, 2]\n"),
    /search\.budget: expected a budget of at least one point × 3 seeds/,
  );
  assert.match(
    specErrors(
      adaptiveText("a", "budget: 8").replace("parameters:\n", "parameters:\n  method: {values: [gates, cs]}\n"),
    ),
    /parameters\.method: adaptive search runs one method/,
  );
  assert.match(
    specErrors(
      "name: g\ndataset: {name: synthetic}\nparameters:\n  lambda: {values: [0.1]}\nsearch: {budget: 8, parallel: 2}\n",
    ),
    /s\.yaml:5:\d+ search\.budget: `budget` is for `strategy: adaptive`.*\n.*search\.parallel: `parallel` is for/,
  );
  const ok = parseSpec(adaptiveText("a", "budget: 8, patience: 4, parallel: 2, initial: 3"));
  assert.equal(ok.search.budget, 8);
  // no defaults written into the parsed spec: grid and random sweeps keep their ids
  assert.deepEqual(Object.keys(parseSpec("name: g\nsearch: {strategy: grid}\n").search).sort(), ["seed", "strategy"]);
});

/** Hand-made results: trial `t` done with (sparsity, validation accuracy). */
function doneResult(sweepId: string, trialId: string, sparsity: number, val: number): RecordedResult {
  return {
    v: 1,
    sweep_id: sweepId,
    trial_id: trialId,
    status: "done",
    attempt: 1,
    metrics: { sparsity, val_accuracy: val, accuracy: val, cuts: null },
  } as unknown as RecordedResult;
}

Deno.test("adaptive search - proposals: deterministic whatever the arrival order; the largest front gap is targeted in log lambda", () => {
  const spec = parseSpec(adaptiveText("gap", "budget: 20, initial: 3, seed: 4"));
  const sweepId = sweepIdOf(spec);
  const design = initialDesign(spec);
  assert.equal(design.length, 3);
  // the initial design first, one point per proposal
  const proposals: Proposal[] = [];
  for (let i = 0; i < 3; i++) {
    const p = proposeNext(spec, sweepId, [], proposals)!;
    assert.equal(p.kind, "initial");
    assert.deepEqual(p.trials[0]!.params, design[i]);
    assert.equal(p.trials[0]!.id, trialIdOf(sweepId, design[i]!, 0));
    proposals.push({ ...p, basis: 0 });
  }
  // a hand-made front: the design's points by lambda get sparsity 0.5, 0.7, 0.95; the largest gap is 0.7-0.95
  const byLambda = proposals.map((p) => p.trials[0]!).sort((a, b) => Number(a.params.lambda) - Number(b.params.lambda));
  const made = [[0.5, 0.95], [0.7, 0.93], [0.95, 0.6]] as const;
  const results = byLambda.map((t, i) => doneResult(sweepId, t.id, made[i]![0], made[i]![1]));
  // the gap rule (what the surrogate falls back on)
  const next = proposeNext(spec, sweepId, results, proposals, "gap")!;
  assert.equal(next.kind, "gap");
  assert.ok(Math.abs(next.target! - 0.825) < 1e-9, `target ${next.target}`);
  const [lb, lc] = [Number(byLambda[1]!.params.lambda), Number(byLambda[2]!.params.lambda)];
  const lambda = Number(next.trials[0]!.params.lambda);
  assert.ok(lambda > lb && lambda < lc, `${lambda} not between ${lb} and ${lc}`);
  // the gap's middle is half-way between the bracketing trials' sparsities: the geometric mean
  assert.ok(Math.abs(Math.log10(lambda) - (Math.log10(lb) + Math.log10(lc)) / 2) < 1e-5);
  assert.deepEqual(next.trials[0]!.config, resolveTrialConfig(spec, next.trials[0]!.params, 0));
  // same results in any order: the same proposal
  for (const order of [[2, 0, 1], [1, 2, 0], [0, 2, 1]]) {
    assert.deepEqual(proposeNext(spec, sweepId, order.map((i) => results[i]!), proposals, "gap"), next);
  }
  // in flight, it splits its gap: the next proposal aims elsewhere (the tail 0.95-1 is now the largest)
  const after = proposeNext(spec, sweepId, results, [...proposals, { ...next, basis: 3 }], "gap")!;
  assert.notEqual(after.target, next.target);
  assert.ok(after.target! > 0.95, `target ${after.target}`);
});

Deno.test("adaptive search - with enough trials, lambda is solved for the target at the proposal's lr (lr moves sparsity too)", () => {
  const spec = parseSpec(adaptiveText("solve", "budget: 20, initial: 5, seed: 2"));
  const sweepId = sweepIdOf(spec);
  const proposals: Proposal[] = [];
  for (let i = 0; i < 5; i++) proposals.push({ ...proposeNext(spec, sweepId, [], proposals)!, basis: 0 });
  // positions in the ranges (log10): lambda 1e-4..0.3, lr 0.01..0.1
  const u = (v: number, min: number, max: number) => Math.log10(v / min) / Math.log10(max / min);
  const plane = (params: Record<string, unknown>) =>
    -2 + 5 * u(Number(params.lambda), 1e-4, 0.3) + 2 * u(Number(params.lr), 0.01, 0.1);
  // every trial's own sparsity on the plane logit(s) = -2 + 5 u(lambda) + 2 u(lr); accuracy falls with sparsity
  const results = proposals.map((p) => {
    const s = 1 / (1 + Math.exp(-plane(p.trials[0]!.params)));
    return doneResult(sweepId, p.trials[0]!.id, s, 0.95 - 0.3 * s * s);
  });
  const next = proposeNext(spec, sweepId, results, proposals, "gap")!;
  assert.equal(next.kind, "gap");
  const t = next.target!;
  // the proposal's own point lies on the plane at the target: lambda answers for the lr it was given
  assert.ok(Math.abs(plane(next.trials[0]!.params) - Math.log(t / (1 - t))) < 0.01, JSON.stringify({ t, next }));
});

Deno.test("adaptive search - the surrogate proposes where the trials' ladders say the front rises, the same whatever the order", () => {
  const spec = parseSpec(adaptiveText("model", "budget: 20, initial: 5, seed: 3"));
  const sweepId = sweepIdOf(spec);
  const proposals: Proposal[] = [];
  for (let i = 0; i < 5; i++) proposals.push({ ...proposeNext(spec, sweepId, [], proposals)!, basis: 0 });
  const u = (v: unknown) => Math.log10(Number(v) / 0.01); // lr's position in 0.01..0.1
  // a hand-made landscape: a trial's ladder runs from its own sparsity (lambda's position) to 0.3 sparser, and its
  // accuracy everywhere rises with lr, the more the sparser: the front rises towards lr's top
  const results = proposals.map((p) => {
    const { lambda, lr } = p.trials[0]!.params;
    const own = 0.2 + 0.6 * Math.log10(Number(lambda) / 1e-4) / Math.log10(3e3);
    const acc = (s: number) => 0.5 + (0.2 + 0.2 * s) * u(lr) - 0.1 * s;
    const cuts = [0.1, 0.2, 0.3].map((d) => ({
      sparsity: own + d,
      val_accuracy: acc(own + d),
      accuracy: acc(own + d),
    }));
    const r = doneResult(sweepId, p.trials[0]!.id, own, acc(own));
    return { ...r, metrics: { ...r.metrics!, cuts: { points: cuts } } } as unknown as RecordedResult;
  });
  const next = proposeNext(spec, sweepId, results, proposals)!;
  assert.equal(next.kind, "model");
  assert.match(next.reason, /^expected improvement \d\.\d+(e-\d+)? of the validation front \(surrogate of 5 trials\)$/);
  const lrs = proposals.map((p) => u(p.trials[0]!.params.lr));
  assert.ok(u(next.trials[0]!.params.lr) > Math.max(...lrs), `lr ${next.trials[0]!.params.lr}, trials' ${lrs}`);
  assert.deepEqual(next.trials[0]!.config, resolveTrialConfig(spec, next.trials[0]!.params, 0));
  for (const order of [[4, 2, 0, 1, 3], [1, 0, 3, 4, 2]]) {
    assert.deepEqual(proposeNext(spec, sweepId, order.map((i) => results[i]!), proposals), next);
  }
  // the point in flight counts at its predicted ladder: the next proposal is elsewhere
  const after = proposeNext(spec, sweepId, results, [...proposals, { ...next, basis: 5 }])!;
  assert.notDeepEqual(after.trials[0]!.params, next.trials[0]!.params);
});

Deno.test("adaptive search - stops at the budget, or after `patience` recorded trials without a better hypervolume", () => {
  const spec = parseSpec(adaptiveText("pat", "budget: 12, patience: 3"));
  const id = sweepIdOf(spec);
  const proposals = [0, 1, 2, 3, 4, 5].map((n) => ({ n, trials: [{ id: `t${n}` }] }) as unknown as Proposal);
  const r = (n: number, x: number, y: number) => doneResult(id, `t${n}`, x, y);
  // t1 improves, t2..t3 do not: 2 trials without improvement, patience 3 goes on
  assert.equal(
    searchProgress(spec, [r(0, 0.5, 0.9), r(1, 0.8, 0.9), r(2, 0.5, 0.8), r(3, 0.6, 0.8)], proposals).stop,
    null,
  );
  const st = searchProgress(
    spec,
    [r(0, 0.5, 0.9), r(1, 0.8, 0.9), r(2, 0.5, 0.8), r(3, 0.6, 0.8), r(4, 0.1, 0.1)],
    proposals,
  );
  assert.equal(st.stop, "patience");
  assert.equal(st.sinceImprovement, 3);
  assert.ok(Math.abs(st.hypervolume - 0.72) < 1e-12);
  // 11 proposed trials + 1 seed fits a budget of 12, 12 + 1 does not
  const many = (k: number) =>
    Array.from({ length: k }, (_, n) => ({ n, trials: [{ id: `u${n}` }] }) as unknown as Proposal);
  assert.equal(searchProgress(spec, [], many(11)).stop, null);
  assert.equal(searchProgress(spec, [], many(12)).stop, "budget");
});

Deno.test("adaptive search - in-memory sweep: within budget, every proposal recorded once and before its result, resume reads the plan, an emptied proposals.jsonl is rebuilt", async () => {
  const runsDir = await Deno.makeTempDir();
  try {
    const text = adaptiveText("mem", "budget: 9, parallel: 2, initial: 3, seed: 1");
    const spec = parseSpec(text);
    const { outcome, lines } = await runInProcess(text, runsDir);
    assert.ok(outcome.complete, lines.join("\n"));
    const proposals = await assertReplays(spec, outcome.runDir);
    const proposed = proposals.flatMap((p) => p.trials.map((t) => t.id));
    assert.equal(proposed.length, 9);
    assert.equal(new Set(proposed).size, 9, "a trial proposed twice");
    assert.deepEqual(proposals.slice(0, 3).map((p) => p.kind), ["initial", "initial", "initial"]);
    assert.ok(proposals.slice(3).every((p) => p.kind !== "initial"));
    const rows = await recorded(outcome.runDir);
    assert.deepEqual(rows.map((r) => r.trial_id).sort(), [...proposed].sort());
    // early stopping is on by default for adaptive search: a dominated trial ends `stopped`, never failed
    assert.ok(
      rows.every((r) => r.status === "done" || r.status === "stopped"),
      JSON.stringify(rows.map((r) => r.status)),
    );
    assert.match(lines.join("\n"), /no more proposals \(budget of 9 trials spent/);
    // the plan as the report and --resume read it
    const m = await readManifest(outcome.runDir);
    assert.deepEqual(m.trials.map((t) => t.id), proposed);
    assert.equal(outcome.data.counts.done + (outcome.data.counts.stopped ?? 0), 9);
    // a torn last proposal line (a crash mid-append: never published) is set aside, the rest kept
    await Deno.writeTextFile(`${outcome.runDir}/proposals.jsonl`, '{"v":1,"n":9,"ba', { append: true });
    const log = await ProposalLog.open(outcome.runDir, spec, sweepIdOf(spec));
    assert.equal(log.proposals.length, proposals.length);
    assert.match(log.setAside[0]!.reason, /torn/);
    // proposals.jsonl emptied (0 bytes) after its trials ran: the proposals are rebuilt from results.jsonl, and a
    // resume runs nothing again (it used to set every result aside as not in the plan and re-run the sweep)
    await Deno.writeTextFile(`${outcome.runDir}/proposals.jsonl`, "");
    const rebuilt = await ProposalLog.open(outcome.runDir, spec, sweepIdOf(spec), { readOnly: true });
    assert.equal(rebuilt.rebuilt, proposals.length);
    // the same points in the same order (a surrogate's reason may be the one of a smaller basis)
    const points = (ps: readonly Proposal[]) => ps.map(({ basis: _b, reason: _r, ...p }) => p);
    assert.deepEqual(points(rebuilt.proposals), points(proposals));
    assert.equal(await Deno.readTextFile(`${outcome.runDir}/proposals.jsonl`), "", "read-only: the file as it was");
    const transport = new MemoryTransport();
    const ac = new AbortController();
    const worker = runWorker({ transport, backend: "js", signal: ac.signal });
    const logged: string[] = [];
    const again = await resumeSweep(outcome.runDir, { transport, log: (l) => logged.push(l) }).finally(async () => {
      ac.abort();
      await worker;
      await transport.close();
    });
    assert.ok(again.complete);
    assert.ok(
      logged.some((l) => /had lost 9 proposals whose trials have outcomes: rebuilt/.test(l)),
      logged.join("\n"),
    );
    assert.deepEqual(points(await jsonl<Proposal>(`${outcome.runDir}/proposals.jsonl`)), points(proposals));
    assert.deepEqual((await recorded(outcome.runDir)).map((r) => r.trial_id).sort(), [...proposed].sort());
    assert.equal(await Deno.stat(`${outcome.runDir}/results.rejected.jsonl`).catch(() => null), null);
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("adaptive search - --dry-run on a run directory reads its proposals: recorded results are not problems", async () => {
  const runsDir = await Deno.makeTempDir();
  try {
    const text = adaptiveText("dry", "budget: 2, parallel: 2, initial: 2, seed: 1", 1);
    const { outcome, lines } = await runInProcess(text, runsDir);
    assert.ok(outcome.complete, lines.join("\n"));
    const out: string[] = [];
    // it said that each recorded result was no trial of the plan, to be set aside and run again (exit 1)
    assert.equal(await dryRun(parseSpec(text), outcome.runDir, (l) => out.push(l), true), 0, out.join("\n"));
    assert.match(out.join("\n"), /already records 2 of them \(0 failed\): a run proposes more while its budget lasts/);
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("adaptive search - without search.parallel: the design at once, then one trial in flight per live worker (7 or 1)", async () => {
  const runsDir = await Deno.makeTempDir();
  try {
    const text = adaptiveText("follow", "budget: 9, initial: 2, seed: 2");
    const spec = parseSpec(text);
    // six idle workers elsewhere (their heartbeats only) and this process's one
    const setup = async (t: MemoryTransport) => {
      for (let n = 0; n < 6; n++) await t.putPresence(presenceOf("elsewhere", `idle-${n}`));
    };
    const { outcome, lines } = await runInProcess(text, runsDir, setup);
    assert.ok(outcome.complete, lines.join("\n"));
    const proposals = await assertReplays(spec, outcome.runDir);
    assert.equal(proposals.length, 9);
    // before any result: one proposal per live worker (6 or 7, as this process's worker has beaten yet or not), not 4
    const first = proposals.filter((p) => p.basis === 0).length;
    assert.ok(first >= 6, `${first} proposals before the first result`);
    // this process's worker alone: the design's 3 points at once, then each proposal sees every result before it
    const alone = await runInProcess(adaptiveText("alone", "budget: 6, initial: 3, seed: 2"), runsDir);
    assert.ok(alone.outcome.complete, alone.lines.join("\n"));
    const bases = (await jsonl<Proposal>(`${alone.outcome.runDir}/proposals.jsonl`)).map((p) => p.basis);
    assert.deepEqual(bases, [0, 0, 0, 3, 4, 5]);
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("adaptive search - workers not yet beating at the start are counted at their first result, not 5 s later", async () => {
  const runsDir = await Deno.makeTempDir();
  try {
    // as local workers spawned with the sweep: no presence when the coordinator first counts, three right after
    // (this process's worker and two idle ones elsewhere)
    const setup = async (transport: MemoryTransport) => {
      for (let n = 0; n < 2; n++) await transport.putPresence(presenceOf("elsewhere", `idle-${n}`));
      const list = transport.listPresence.bind(transport);
      let counts = 0;
      transport.listPresence = () => counts++ === 0 ? Promise.resolve([]) : list();
    };
    const text = adaptiveText("recount", "budget: 8, initial: 2, seed: 2");
    // the periodic count never comes
    const { outcome } = await runInProcess(text, runsDir, setup, { presencePollMs: 600_000 });
    assert.ok(outcome.complete);
    const after = (await assertReplays(parseSpec(text), outcome.runDir)).slice(2);
    // trials in flight when each was proposed: up to 3 once the first result made the coordinator count again
    assert.ok(Math.max(...after.map((p) => p.n - p.basis)) >= 2, JSON.stringify(after.map((p) => [p.n, p.basis])));
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("adaptive search - coordinator SIGKILLed mid-sweep, then --resume: the same proposals, each trial once, budget kept", async () => {
  const c = await cluster(2);
  try {
    const text = adaptiveText("kill", "budget: 10, parallel: 2, initial: 2, seed: 3", 40);
    const path = `${c.dir}/kill.yaml`;
    await Deno.writeTextFile(path, text);
    const spec = parseSpec(text);
    const runDir = `${c.dir}/runs/${sweepIdOf(spec)}`;
    const first = startCoordinator([path, "--runs", `${c.dir}/runs`, "--ack-wait", "3"], c.server, `${c.dir}/c1.log`);
    await until("3 results", async () => (await recorded(runDir)).length >= 3, 120_000);
    first.kill("SIGKILL");
    await first.status;
    const atKill = (await recorded(runDir)).length;
    const proposedAtKill = (await jsonl<Proposal>(`${runDir}/proposals.jsonl`)).length;
    await new Promise((r) => setTimeout(r, 2000)); // the workers go on; their results wait on the broker
    const second = startCoordinator(["--resume", runDir, "--ack-wait", "3"], c.server, `${c.dir}/c2.log`);
    const status = await second.status;
    const log2 = await Deno.readTextFile(`${c.dir}/c2.log`);
    assert.equal(status.code, 0, log2);
    assert.ok(atKill < 10, "killed before the end");
    const proposals = await assertReplays(spec, runDir);
    assert.ok(proposals.length > proposedAtKill, "the resumed coordinator proposed more");
    const proposed = proposals.flatMap((p) => p.trials.map((t) => t.id));
    assert.equal(proposed.length, 10);
    assert.equal(new Set(proposed).size, 10);
    const rows = await recorded(runDir);
    assert.equal(new Set(rows.map((r) => r.trial_id)).size, rows.length, "a trial recorded twice");
    assert.deepEqual(rows.map((r) => r.trial_id).sort(), [...proposed].sort());
    assert.match(log2, /resuming .*: \d+\/10 trials already recorded/);
  } finally {
    await c.close();
  }
});

Deno.test("adaptive search - budget_epochs spec: one of budget and budget_epochs, within max_trials × epochs, located", () => {
  assert.match(
    specErrors(adaptiveText("a", "budget: 8, budget_epochs: 16")),
    /s\.yaml:9:\d+ search\.budget_epochs: give one of `budget` \(trials\) and `budget_epochs`/,
  );
  assert.match(specErrors(adaptiveText("a", "seed: 0")), /search\.budget: .*or `budget_epochs`/);
  assert.match(
    specErrors(adaptiveText("a", "budget_epochs: 201") + "limits: {max_trials: 100}\n"),
    /s\.yaml:9:\d+ search\.budget_epochs: expected at most 200 trial-epochs \(limits\.max_trials × training\.epochs/,
  );
  assert.equal(specErrors(adaptiveText("a", "budget_epochs: 200") + "limits: {max_trials: 100}\n"), "");
  assert.match(specErrors(adaptiveText("a", "budget_epochs: 0")), /search\.budget_epochs/);
  assert.match(
    specErrors(
      "name: g\ndataset: {name: synthetic}\nparameters:\n  lambda: {values: [0.1]}\nsearch: {budget_epochs: 8}\n",
    ),
    /search\.budget_epochs: `budget_epochs` is for `strategy: adaptive`/,
  );
  assert.equal(parseSpec(adaptiveText("a", "budget_epochs: 16")).search.budget_epochs, 16);
});

Deno.test("adaptive search - budget_epochs counts done and failed trials' planned epochs, stopped trials' trained epochs, in-flight trials' planned", () => {
  const spec = parseSpec(adaptiveText("ep", "budget_epochs: 10", 4));
  const id = sweepIdOf(spec);
  const config = resolveTrialConfig(spec, { lambda: 0.01, lr: 0.05 }, 0);
  const proposals = [0, 1, 2, 3].map((n) => ({ n, trials: [{ id: `t${n}`, config }] }) as unknown as Proposal);
  const stopped = (n: number, epochs: number) =>
    ({
      ...doneResult(id, `t${n}`, 0.5, 0.5),
      status: "stopped",
      metrics: { sparsity: 0.5, accuracy: 0.5, cuts: null, stopped: { epochs, planned_epochs: 4, rung_epoch: 1 } },
    }) as unknown as RecordedResult;
  const failed = (n: number) => ({ ...doneResult(id, `t${n}`, 0, 0), status: "failed", metrics: null });
  // t0 done (4), t1 stopped after 1, t2 failed (4): 9 < 10, goes on
  const three = [doneResult(id, "t0", 0.5, 0.9), stopped(1, 1), failed(2) as unknown as RecordedResult];
  let st = searchProgress(spec, three, proposals.slice(0, 3));
  assert.deepEqual([st.committedEpochs, st.stop], [9, null]);
  // t3 in flight counts its planned 4: 13 ≥ 10, stops
  st = searchProgress(spec, three, proposals);
  assert.deepEqual([st.committedEpochs, st.stop], [13, "budget"]);
  // stopped after 1.5 instead: t3 stopped too, 4 + 1.5 + 4 + 1 = 10.5 ≥ 10
  st = searchProgress(spec, [...three, stopped(3, 1.5)], proposals);
  assert.deepEqual([st.committedEpochs, st.stop], [10.5, "budget"]);
  // deterministic: a function of the outcomes, not of their order
  assert.equal(searchProgress(spec, [...three].reverse(), proposals).committedEpochs, 13);
});

Deno.test("adaptive search - in-memory sweep with budget_epochs and early stopping: stopped trials buy more trials, within the epochs budget, each recorded once", async () => {
  const runsDir = await Deno.makeTempDir();
  try {
    const epochs = 4, budgetEpochs = 24, parallel = 2;
    const text =
      adaptiveText("memep", `budget_epochs: ${budgetEpochs}, parallel: ${parallel}, initial: 3, seed: 1`, epochs) +
      "early_stop: {rungs: [0.25, 0.5], margin: 0}\n";
    const spec = parseSpec(text);
    const { outcome, lines } = await runInProcess(text, runsDir);
    assert.ok(outcome.complete, lines.join("\n"));
    const proposals = await assertReplays(spec, outcome.runDir);
    const proposed = proposals.flatMap((p) => p.trials.map((t) => t.id));
    assert.equal(new Set(proposed).size, proposed.length, "a trial proposed twice");
    const rows = await recorded(outcome.runDir);
    assert.deepEqual(rows.map((r) => r.trial_id).sort(), [...proposed].sort(), "each proposed trial recorded once");
    const stopped = rows.filter((r) => r.status === "stopped");
    assert.ok(stopped.length > 0, `no trial stopped: ${JSON.stringify(rows.map((r) => r.status))}`);
    assert.ok(proposed.length > budgetEpochs / epochs, `${proposed.length} trials for ${budgetEpochs} trial-epochs`);
    // a function of the recorded outcomes: what searchProgress counts from results.jsonl, over by less than one
    // trial's planned epochs × parallel (the trials in flight when the budget was reached)
    const results = await jsonl<RecordedResult>(`${outcome.runDir}/results.jsonl`);
    const spent = searchProgress(spec, results, proposals).committedEpochs;
    assert.ok(spent < budgetEpochs + epochs * parallel, `spent ${spent} trial-epochs`);
    assert.match(lines.join("\n"), new RegExp(`no more proposals \\(budget of ${budgetEpochs} trial-epochs spent`));
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
});
