// A run directory's files on load (results.jsonl, sweep.json) and its lock: one coordinator at a time.
import assert from "node:assert/strict";
import { WIRE_VERSION } from "../src/broker/messages.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { type RecordedResult, REJECTED_FILE, ResultLog, setAsideNotice } from "../src/coordinator/record.ts";
import { readManifest, type SweepManifest, writeManifest, writeReports } from "../src/coordinator/run_dir.ts";
import { acquireRunLock, LOCK_FILE } from "../src/coordinator/run_lock.ts";
import { statusMain } from "../src/cli/status.ts";
import { expandTrials, sweepIdOf, type Trial, trialIdOf } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";
import { TicketsweepError } from "../src/util/errors.ts";
import { cluster, recorded, startCoordinator, until, writeSpec } from "./_cluster.ts";
import { ROOT, tinySpecText } from "./_fixtures.ts";

/** A run directory with its sweep.json (n planned trials) and nothing recorded. */
/** A manifest with its trials as a list (as a version 1 or 2 file holds them). */
type ListedManifest = SweepManifest & { trials: Trial[] };

async function runDir(n = 3): Promise<{ runs: string; dir: string; m: ListedManifest }> {
  const runs = await Deno.makeTempDir();
  const text = tinySpecText("rundir", n);
  const spec = parseSpec(text);
  const m: ListedManifest = {
    format: "ticketsweep-sweep",
    version: 1,
    sweep_id: sweepIdOf(spec),
    name: spec.name,
    spec_file: "s.yaml",
    spec_text: text,
    spec,
    trials: expandTrials(spec),
    created_at: new Date().toISOString(),
  };
  const dir = `${runs}/${m.sweep_id}`;
  await writeManifest(dir, m);
  return { runs, dir, m };
}

/** A valid recorded outcome (failed: no metrics needed). */
function outcome(m: SweepManifest, trialId: string): RecordedResult {
  return {
    v: WIRE_VERSION,
    sweep_id: m.sweep_id,
    trial_id: trialId,
    status: "failed",
    attempt: 1,
    error: "boom",
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: new Date().toISOString(),
    claim: "",
  };
}

const lines = (text: string) => text.split("\n").filter((l) => l);

Deno.test("run dir - results.jsonl: bad lines set aside with their line numbers, never counted", async () => {
  const { runs, dir, m } = await runDir(3);
  try {
    const [a, b, c] = m.trials.map((t) => t.id) as [string, string, string];
    const A = JSON.stringify(outcome(m, a)), B = JSON.stringify(outcome(m, b));
    const U = JSON.stringify(outcome(m, "not-planned")), torn = A.slice(0, 40);
    await Deno.writeTextFile(`${dir}/results.jsonl`, [A, "123", "{}", U, B, A, torn].join("\n"));
    const log = await ResultLog.open(dir, { planned: m.trials.map((t) => t.id) });
    assert.equal(log.size, 2);
    assert.ok(log.has(a) && log.has(b) && !log.has(c));
    assert.deepEqual(log.setAside.map((s) => s.line), [2, 3, 4, 6, 7]);
    assert.deepEqual(log.setAside.map((s) => s.runsAgain), [true, true, true, false, true]);
    const notices = log.setAside.map((s) => setAsideNotice(s));
    assert.match(notices[0]!, /^results\.jsonl line 2: not a result \(a number, not an object\)/);
    assert.match(
      notices[1]!,
      /^results\.jsonl line 3: not a result \(missing v, sweep_id, trial_id.*\); set aside in results\.rejected\.jsonl; its trial runs again$/,
    );
    assert.match(notices[2]!, /line 4: not a trial of this sweep's plan \(trial not-planned\)/);
    assert.match(notices[3]!, new RegExp(`line 6: a second outcome of trial ${a} \\(line 1 is kept\\)`));
    assert.match(notices[4]!, /line 7: torn/);
    assert.deepEqual(lines(await Deno.readTextFile(`${dir}/results.jsonl`)), [A, B]);
    const rejected = lines(await Deno.readTextFile(`${dir}/${REJECTED_FILE}`)).map((l) => JSON.parse(l));
    assert.deepEqual(rejected.map((r) => [r.line, r.raw]), [[2, "123"], [3, "{}"], [4, U], [6, A], [7, torn]]);
    // the next line is never glued onto a torn one
    await Deno.writeTextFile(`${dir}/results.jsonl`, torn, { append: true });
    assert.ok(await log.record(outcome(m, c), m.trials[2]!));
    const again = await ResultLog.open(dir, { planned: m.trials.map((t) => t.id) });
    assert.equal(again.size, 3);
    assert.deepEqual(again.setAside.map((s) => s.line), [3]);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - results.jsonl replaced mid-sweep by a stale copy: its other outcome of a recorded trial is set aside, the recorded one kept", async () => {
  const { runs, dir, m } = await runDir(3);
  try {
    const [a, b, c] = m.trials.map((t) => t.id) as [string, string, string];
    const log = await ResultLog.open(dir, { planned: m.trials.map((t) => t.id) });
    const ours = (id: string) => ({ ...outcome(m, id), claim: "1".repeat(32) }); // a --retry-failed round's claim
    assert.ok(await log.record(ours(a), m.trials[0]!));
    const stale = JSON.stringify(outcome(m, a)); // the outcome that round superseded, of a backup copy
    // replaced (noticed at the next result), then overwritten in place (noticed at the end): the stale line stayed
    // first and the next open kept it, setting the recorded outcome aside as a second one
    await Deno.writeTextFile(`${dir}/copy`, stale + "\n");
    await Deno.rename(`${dir}/copy`, `${dir}/results.jsonl`);
    assert.ok(await log.record(ours(b), m.trials[1]!));
    // (a's recorded line appended after the stale one stays, once)
    await Deno.writeTextFile(
      `${dir}/results.jsonl`,
      [stale, JSON.stringify(ours(b)), JSON.stringify(ours(a)), ""].join("\n"),
    );
    assert.ok(await log.record(ours(c), m.trials[2]!));
    assert.equal(await log.restoreMissing(), 1);
    const again = await ResultLog.open(dir, { planned: m.trials.map((t) => t.id) });
    assert.deepEqual(again.setAside, []);
    assert.deepEqual(
      again.all().map((r) => [r.trial_id, r.claim]).sort(),
      [a, b, c].map((id) => [id, "1".repeat(32)]).sort(),
    );
    const rejected = lines(await Deno.readTextFile(`${dir}/${REJECTED_FILE}`)).map((l) => JSON.parse(l));
    assert.deepEqual(rejected.map((r) => r.raw), [stale, stale]);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - a corrupt or incomplete sweep.json: one line naming the file, the field and the fix", async () => {
  const { runs, dir, m } = await runDir(2);
  try {
    const file = `${dir}/sweep.json`;
    const cases: [string, RegExp][] = [
      [JSON.stringify(m).slice(0, 100), /sweep\.json: not JSON .*; rewrite it by running its spec again/],
      [
        JSON.stringify({ ...m, trials: undefined }),
        /sweep\.json: missing trials; rewrite it by running its spec again \(deno task sweep .*\/spec\.yaml --runs /,
      ],
      [JSON.stringify({ ...m, trials: [{ ...m.trials[0], seed: "x" }] }), /sweep\.json: trials\.0\.seed: Expected/],
      [JSON.stringify({ ...m, version: 4 }), /sweep\.json: version: this ticketsweep reads versions 1 to 3, found 4/],
    ];
    for (const [text, re] of cases) {
      await Deno.writeTextFile(file, text);
      const e = await readManifest(dir).then(() => null, (e) => e);
      assert.ok(e instanceof TicketsweepError, `${text.slice(0, 40)}: ${e}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), e.message);
    }
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - an edited but valid sweep.json is refused, not read as a plan of fewer trials", async () => {
  const { runs, dir, m } = await runDir(3);
  try {
    const file = `${dir}/sweep.json`;
    const [t0, t1] = m.trials as [Trial, Trial];
    const otherId = "rundir-00000000";
    const cases: [string, unknown, RegExp][] = [
      ["no trials", { ...m, trials: [] }, /sweep\.json: trials: 0 trials, but its spec plans 3 \(gates: lambda 3/],
      ["one removed", { ...m, trials: m.trials.slice(1) }, /trials: 2 trials, but its spec plans 3/],
      [
        "one added",
        { ...m, trials: [...m.trials, { ...t0, seed: 7, id: trialIdOf(m.sweep_id, t0.params, 7) }] },
        /trials: 4 trials, but its spec plans 3/,
      ],
      [
        "params altered",
        { ...m, trials: [{ ...t0, params: t1.params }, ...m.trials.slice(1)] },
        new RegExp(`trials\\.0\\.id: ${t0.id} is not the id of its parameters and seed`),
      ],
      ["a repeated trial", { ...m, trials: [t0, t0, t1] }, /trials\.1\.id: trial .* twice/],
      [
        "another sweep's id",
        { ...m, sweep_id: otherId, trials: m.trials.map((t) => ({ ...t, sweepId: otherId })) },
        new RegExp(`sweep_id: ${otherId} is not the id of its spec \\(${m.sweep_id}\\)`),
      ],
      ["spec altered", { ...m, spec: { ...m.spec, seeds: [0, 1] } }, /sweep_id: .* is not the id of its spec/],
    ];
    for (const [what, manifest, re] of cases) {
      await Deno.writeTextFile(file, JSON.stringify(manifest));
      const e = await readManifest(dir).then(() => null, (e) => e);
      assert.ok(e instanceof TicketsweepError, `${what}: ${e}`);
      assert.match(e.message, re, what);
      assert.match(e.message, /; rewrite it by running its spec again \(deno task sweep .*spec\.yaml --runs /, what);
      assert.ok(!e.message.includes("\n"), e.message);
    }
    await writeManifest(dir, m);
    assert.equal((await readManifest(dir)).trials.length, 3);
    // version 3 (no trial list): a plan that is not what its spec expands to is one line
    const v3 = JSON.parse(await Deno.readTextFile(file));
    assert.equal(v3.version, 3);
    for (const plan of [{ ...v3.plan, fingerprint: "0123456789abcdef" }, { ...v3.plan, trials: 4 }]) {
      await Deno.writeTextFile(file, JSON.stringify({ ...v3, plan }));
      const e = await readManifest(dir).then(() => null, (e) => e);
      assert.ok(e instanceof TicketsweepError, `${JSON.stringify(plan)}: ${e}`);
      assert.match(
        e.message,
        new RegExp(
          `sweep\\.json: plan: it records ${plan.trials} trials \\(fingerprint ${plan.fingerprint}\\), but its spec ` +
            `expands to 3 \\(fingerprint ${v3.plan.fingerprint}\\) with this ticketsweep: use the ticketsweep that ` +
            "wrote it, or rewrite it by running its spec again",
        ),
      );
      assert.ok(!e.message.includes("\n"), e.message);
    }
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - a held lock refuses a second coordinator; released, it is free", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await acquireRunLock(dir, () => {});
    const info = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
    assert.deepEqual([info.v, info.pid, info.host], [1, Deno.pid, Deno.hostname()]);
    await assert.rejects(
      acquireRunLock(dir, () => {}),
      (e: Error) =>
        e instanceof TicketsweepError &&
        e.message.startsWith(`${dir} is held by the coordinator pid ${Deno.pid} on host ${Deno.hostname()} since`),
    );
    await first.release();
    await assert.rejects(Deno.stat(`${dir}/${LOCK_FILE}`), Deno.errors.NotFound);
    await (await acquireRunLock(dir, () => {})).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run dir - runSweep refuses a run directory another coordinator holds", async () => {
  const { runs, dir, m } = await runDir(2);
  const lock = await acquireRunLock(dir, () => {});
  try {
    const transport = new MemoryTransport();
    await assert.rejects(
      runSweep({ spec: m.spec, specText: m.spec_text, specFile: "s.yaml", runsDir: runs, transport, log: () => {} }),
      (e: Error) => e instanceof TicketsweepError && /is held by the coordinator pid/.test(e.message),
    );
    await transport.close();
    await assert.rejects(Deno.stat(`${dir}/results.jsonl`), Deno.errors.NotFound);
  } finally {
    await lock.release();
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - stale locks are taken over with a log line: dead pid, old heartbeat of another host, corrupt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const now = new Date().toISOString(), old = new Date(Date.now() - 60_000).toISOString();
    const lockOf = (host: string, pid: number, heartbeat: string) =>
      JSON.stringify({ v: 1, host, pid, started_at: old, heartbeat_at: heartbeat });
    const cases: [string, RegExp][] = [
      [
        lockOf(Deno.hostname(), gone.pid, now),
        new RegExp(`from the coordinator pid ${gone.pid} .*its process is gone`),
      ],
      [lockOf("elsewhere", 4242, old), /from the coordinator pid 4242 on host elsewhere .*heartbeat is 60 s old/],
      ['{"v":1,"ho', /it was unreadable \(not JSON/],
    ];
    for (const [text, re] of cases) {
      await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, text);
      const logged: string[] = [];
      const lock = await acquireRunLock(dir, (l) => logged.push(l));
      assert.equal(logged.length, 1);
      assert.match(logged[0]!, re);
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).pid, Deno.pid);
      await lock.release();
    }
    // another host's lock with a fresh heartbeat is live
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, lockOf("elsewhere", 4242, now));
    await assert.rejects(acquireRunLock(dir, () => {}), /held by the coordinator pid 4242 on host elsewhere/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run dir - another host's heartbeat over 30 s in the future: refused, saying the clocks differ", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    for (
      const [ahead, re] of [
        [
          5 * 60_000,
          new RegExp(
            `held by the coordinator pid 4242 on host elsewhere since .*; its heartbeat is 300 s in the future: the ` +
              `clocks of elsewhere and this host differ; if that coordinator is gone, remove ${dir}/${LOCK_FILE}$`,
          ),
        ],
        [10_000, /held by the coordinator pid 4242 on host elsewhere .*; stop it first, or wait/],
      ] as const
    ) {
      const text = JSON.stringify({
        v: 1,
        host: "elsewhere",
        pid: 4242,
        started_at: at(-60_000),
        heartbeat_at: at(ahead),
      });
      await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, text);
      await assert.rejects(
        acquireRunLock(dir, () => {}),
        (e: Error) => e instanceof TicketsweepError && re.test(e.message),
      );
      assert.equal(await Deno.readTextFile(`${dir}/${LOCK_FILE}`), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run dir - coordinator.lock or results.jsonl a directory: one line saying so; status exits 1", async () => {
  const { runs, dir, m } = await runDir(2);
  const out: string[] = [];
  const log = console.log;
  try {
    await Deno.mkdir(`${dir}/${LOCK_FILE}`);
    await assert.rejects(
      acquireRunLock(dir, () => {}),
      (e: Error) =>
        e instanceof TicketsweepError &&
        e.message === `${dir}/${LOCK_FILE} is a directory, not a lock file: move it away`,
    );
    await Deno.remove(`${dir}/${LOCK_FILE}`);
    await Deno.mkdir(`${dir}/results.jsonl`);
    const want = `${dir}/results.jsonl is a directory, not a file: move it away`;
    for (const readOnly of [false, true]) {
      await assert.rejects(
        ResultLog.open(dir, { planned: m.trials.map((t) => t.id), readOnly }),
        (e: Error) => e instanceof TicketsweepError && e.message === want,
      );
    }
    console.log = (s: string) => out.push(s);
    assert.equal(await statusMain([dir]), 1);
  } finally {
    console.log = log;
    await Deno.remove(runs, { recursive: true });
  }
  assert.deepEqual(out, [`${dir}/results.jsonl is a directory, not a file: move it away`]);
});

Deno.test("run dir - status of a directory that is not a run directory exits 1", async () => {
  const runs = await Deno.makeTempDir();
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    assert.equal(await statusMain([`${runs}/nosuch`]), 1);
  } finally {
    console.log = log;
    await Deno.remove(runs, { recursive: true });
  }
  assert.deepEqual(out, [
    `${runs}/nosuch/sweep.json not found: ${runs}/nosuch is not a sweep run directory (deno task sweep makes them)`,
  ]);
});

Deno.test("run dir - status without a broker: a held run directory is running, a dead coordinator's is stopped", async () => {
  const { runs, dir } = await runDir(2);
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    const lock = await acquireRunLock(dir, () => {});
    await statusMain(["--runs", runs]);
    await lock.release();
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const at = new Date().toISOString();
    await Deno.writeTextFile(
      `${dir}/${LOCK_FILE}`,
      JSON.stringify({ v: 1, host: Deno.hostname(), pid: gone.pid, started_at: at, heartbeat_at: at }),
    );
    await statusMain(["--runs", runs]);
  } finally {
    console.log = log;
    await Deno.remove(runs, { recursive: true });
  }
  assert.match(out[0]!, new RegExp(`: running \\(coordinator pid ${Deno.pid} on ${Deno.hostname()}\\); 2 trials`));
  assert.match(
    out[1]!,
    /: stopped: its coordinator \(pid \d+ on .*\) is gone; continue with deno task sweep --resume /,
  );
});

Deno.test("run dir - status without a broker prints the run directory escaped: a line break in its path cannot forge a line", async () => {
  const { runs, m } = await runDir(2);
  const dir = `${runs}/x\n[00:00:00] forged/${m.sweep_id}`;
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    await writeManifest(dir, m);
    await Deno.writeTextFile(`${dir}/results.jsonl`, JSON.stringify(outcome(m, m.trials[0]!.id)) + "\n{}\n");
    await statusMain([dir]);
  } finally {
    console.log = log;
    await Deno.remove(runs, { recursive: true });
  }
  assert.equal(out.length, 3, out.join("\n")); // the sweep, its set-aside line, its --retry-failed hint
  for (const l of out) assert.ok(l.includes("x\\x0a[00:00:00] forged/") && !l.includes("\n"), l);
});

Deno.test("run dir - a report never overwrites a more complete one", async () => {
  const { runs, dir, m } = await runDir(2);
  try {
    const all = m.trials.map((t) => outcome(m, t.id));
    assert.equal((await writeReports(dir, m, all)).written, true);
    const logged: string[] = [];
    assert.equal((await writeReports(dir, m, all.slice(0, 1), (l) => logged.push(l))).written, false);
    assert.match(logged[0]!, /kept the report .*: it records 2 outcomes, these results 1/);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/pareto.json`)).counts.failed, 2);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - deno task report on a run directory with a `{}` line names it and does not crash", async () => {
  const { runs, dir, m } = await runDir(2);
  try {
    await Deno.writeTextFile(
      `${dir}/results.jsonl`,
      [JSON.stringify(outcome(m, m.trials[0]!.id)), "{}", ""].join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/report.ts`, dir],
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /results\.jsonl line 2: not a result \(missing .*\); set aside in results\.rejected\.jsonl/);
    assert.match(text, /0 done, 1 failed, 1 pending/);
    assert.equal(lines(await Deno.readTextFile(`${dir}/results.jsonl`)).length, 1);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("run dir - a second coordinator on a running sweep's directory refuses; the first completes", async () => {
  const c = await cluster(2);
  try {
    const spec = await writeSpec(c.dir, "two-coords", 6, 40);
    const dir = `${c.dir}/runs/${spec.sweepId}`;
    const args = [spec.path, "--runs", `${c.dir}/runs`];
    const first = startCoordinator(args, c.server, `${c.dir}/coord1.log`);
    await until(
      "the first coordinator's lock",
      async () => await Deno.stat(`${dir}/${LOCK_FILE}`).then(() => true, () => false),
    );
    const t0 = performance.now();
    const second = startCoordinator([...args, "--fresh"], c.server, `${c.dir}/coord2.log`);
    const st2 = await second.status;
    const secondS = (performance.now() - t0) / 1000;
    const log2 = await Deno.readTextFile(`${c.dir}/coord2.log`);
    assert.equal(st2.code, 1, log2);
    assert.match(
      log2,
      new RegExp(`error: ${dir} is held by the coordinator pid \\d+ on host .* since .*; stop it first`),
    );
    assert.ok(secondS < 15, `the second coordinator took ${secondS} s`);
    const st1 = await first.status;
    assert.equal(st1.code, 0, await Deno.readTextFile(`${c.dir}/coord1.log`));
    const rows = await recorded(dir);
    assert.deepEqual(rows.map((r) => r.trial_id).sort(), spec.trialIds);
    const pareto = JSON.parse(await Deno.readTextFile(`${dir}/pareto.json`));
    assert.equal(pareto.counts.done + pareto.counts.failed, 6);
    assert.equal(pareto.counts.pending, 0);
    await assert.rejects(Deno.stat(`${dir}/${LOCK_FILE}`), Deno.errors.NotFound);
  } finally {
    await c.close();
  }
});
