// The operator's daily commands, tried as a new user would: real nats-server on a free loopback port, real processes.
import assert from "node:assert/strict";
import { freePort, startLocalServer } from "../src/broker/local_server.ts";
import { connectNats } from "../src/broker/nats.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { gatherStatus } from "../src/coordinator/status.ts";
import { parseSpec } from "../src/spec/load.ts";
import { sweepIdOf } from "../src/spec/expand.ts";
import { ROOT, tinySpecText } from "./_fixtures.ts";
import { cluster, recorded, rolesBroker, startCoordinator, until, writeSpec } from "./_cluster.ts";
import { REJECTED_FILE, ResultLog } from "../src/coordinator/record.ts";
import { SpecError, type SpecIssue } from "../src/util/errors.ts";
import { quietGpuProbe } from "../src/cli/common.ts";

/** Runs a CLI (`src/cli/NAME.ts`) as a process: exit code and stdout + stderr. */
export async function cli(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/${name}.ts`, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

/** A worker process (`workers/worker.ts`) with these arguments; its output is kept for the test to read. */
export function workerProcess(args: string[], env: Record<string, string> = {}) {
  return scriptProcess("workers/worker.ts", args, env);
}

/** A process of one of this repository's scripts; its output is kept for the test to read. */
export function scriptProcess(script: string, args: string[], env: Record<string, string> = {}) {
  return pipedProcess(Deno.execPath(), ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}${script}`, ...args], env);
}

/** A process whose stdout and stderr are kept for the test to read (`text()`). */
function pipedProcess(command: string, args: string[], env: Record<string, string> = {}) {
  const p = new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (r: ReadableStream<Uint8Array>) => {
    for await (const c of r.pipeThrough(new TextDecoderStream())) text += c;
  };
  const pumped = Promise.all([pump(p.stdout), pump(p.stderr)]);
  return {
    pid: p.pid,
    text: () => text,
    kill: (sig: Deno.Signal = "SIGTERM") => {
      try {
        p.kill(sig);
      } catch { /* gone */ }
    },
    /** Resolves with the exit code once the process exited and its output is read. */
    done: (async () => {
      const st = await p.status;
      await pumped;
      return st.code;
    })(),
  };
}

/** No stack trace, no uncaught error: what a user sees is our own lines. */
function assertNoTrace(text: string) {
  assert.doesNotMatch(text, /Uncaught|^\s+at /m, text);
}

Deno.test("operator - status lists idle workers, shows the running step at once, works under the worker role; a permission error is one line", async () => {
  const { dir, server } = await rolesBroker("c-secret", "w-secret");
  const url = server.url;
  const asCoord = ["--nats", url, "--user", "coordinator", "--password", "c-secret"];
  const asWorker = ["--nats", url, "--user", "worker", "--password", "w-secret"];
  const coord = await connectNats({ servers: url, user: "coordinator", pass: "c-secret" });
  let worker: ReturnType<typeof workerProcess> | undefined;
  try {
    // a worker role cannot create streams: sweeping with its credentials is one clear line, not a stack trace
    await Deno.writeTextFile(`${dir}/s.yaml`, tinySpecText("op-status", 2, "backend: js\n", 40));
    const denied = await cli("sweep", [`${dir}/s.yaml`, "--runs", `${dir}/runs`, ...asWorker]);
    assert.equal(denied.code, 1, denied.text);
    assert.match(denied.text, /error: the broker refused this: these credentials may not publish to \$JS\.API\./);
    assertNoTrace(denied.text);
    // a password in the URL is not printed back
    const inUrl = await cli("status", ["--nats", url.replace("://", "://coordinator:wr0ng-pw@")]);
    assert.equal(inUrl.code, 1, inUrl.text);
    // (the URL's user and password are the credentials, taken out of the URL)
    assert.match(inUrl.text, /error: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: Authorization Violation/);
    assert.doesNotMatch(inUrl.text, /wr0ng-pw/);
    // the right one in the URL connects (the client ignored a URL's credentials: Authorization Violation)
    const rightInUrl = await cli("status", ["--nats", url.replace("://", "://coordinator:c-secret@")]);
    assert.equal(rightInUrl.code, 0, rightInUrl.text);

    await coord.setup();
    worker = workerProcess([...asWorker, "--backend", "js", "--pack", "1", "--id", "op-idle-worker"]);
    await until("the worker's presence", async () => (await coord.listPresence()).length > 0);
    // an idle worker and no sweep yet: listed without --json
    const idle = await cli("status", asCoord);
    assert.equal(idle.code, 0, idle.text);
    assert.match(idle.text, /idle workers: .*op-idle-worker/);

    // a running trial's step shows in status within a couple of seconds of its start (not after the next 5 s beat)
    // long enough (about 10 s alone) that the trial still runs when the worker's cancel below is refused: at 600
    // epochs (about 2 s) it finished first once in CI, and the cancel said "already finished"
    const text = tinySpecText("op-status", 1, "backend: js\n", 3000);
    const spec = parseSpec(text);
    const sweep = runSweep({
      spec,
      specText: text,
      specFile: "s.yaml",
      runsDir: `${dir}/runs`,
      transport: coord,
      log() {},
    });
    let startedAt = 0;
    await until("a running trial", async () => {
      const s = await gatherStatus(coord);
      startedAt = Date.now();
      return s.sweeps.some((sw) => sw.workers.some((w) => w.trial_id));
    });
    await until("the step in status", async () => {
      const s = await gatherStatus(coord);
      return s.sweeps.some((sw) => sw.workers.some((w) => w.trial_id && w.total_steps > 0));
    }, 20_000);
    assert.ok(Date.now() - startedAt < 3000, `the step showed ${Date.now() - startedAt} ms after the trial started`);
    // cancelling with worker credentials: refused in one line (the sweep goes on to complete)
    const cancel = await cli("sweep", ["cancel", sweepIdOf(spec), ...asWorker]);
    assert.equal(cancel.code, 1, cancel.text);
    assert.match(cancel.text, /the broker refused this|may not|permission/i);
    assertNoTrace(cancel.text);
    const outcome = await sweep;
    assert.ok(outcome.complete);

    // cancelling a finished sweep changes nothing (status below still says complete)
    const late = await cli("sweep", ["cancel", sweepIdOf(spec), ...asCoord]);
    assert.equal(late.code, 0, late.text);
    assert.match(
      late.text,
      new RegExp(`^${sweepIdOf(spec)} has already finished: nothing to cancel, nothing changed$`, "m"),
    );
    // the worker role: sweeps shown, the worker list refused in one line, exit 0
    const asW = await cli("status", asWorker);
    assert.equal(asW.code, 0, asW.text);
    assert.match(asW.text, new RegExp(`${sweepIdOf(spec)} \\(op-status\\): complete`));
    assert.match(asW.text, /workers not shown: these credentials may not read the worker list/);
    assertNoTrace(asW.text);
  } finally {
    worker?.kill();
    await worker?.done;
    await coord.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - --retry-failed runs refused and cancelled trials again with new claims, keeping the finished ones; cancel takes the sweep's name", async () => {
  const c = await cluster(0);
  const runs = `${c.dir}/runs`;
  const tok = { NATS_TOKEN: c.server.token };
  const coord = await connectNats({ servers: c.server.url, token: c.server.token });
  try {
    const spec = await writeSpec(c.dir, "op-retry", 3, 20, "backend: js\n");
    const runDir = `${runs}/${spec.sweepId}`;
    const run = (args: string[], name: string) => {
      const co = startCoordinator([spec.path, "--runs", runs, ...args], c.server, `${c.dir}/${name}.log`);
      return { co, log: () => Deno.readTextFile(`${c.dir}/${name}.log`).catch(() => "") };
    };
    // 1. a worker that refuses every trial: 3 failed (refused), their results stored on the broker
    await c.addWorkers(1, ["--max-steps", "1"]);
    const first = run([], "first");
    assert.equal((await first.co.status).code, 0, await first.log());
    // the coordinator says how a remote worker joins, credentials included
    assert.match(
      await first.log(),
      /workers join with deno task worker --nats nats:\/\/127\.0\.0\.1:\d+ --token TOKEN \(the token this/,
    );
    assert.deepEqual((await recorded(runDir)).map((r) => r.failure), ["refused", "refused", "refused"]);
    await c.workers.pop()!.stop();
    // 2. re-running says how to retry them
    const again = run([], "again");
    await again.co.status;
    assert.match(await again.log(), /3\/3 trials already recorded \(3 failed or cancelled: add --retry-failed/);
    // 3. --retry-failed with no worker: the 3 trials are queued again (new publish keys: not swallowed as
    //    duplicates), the refused results replayed from the broker are not recorded again; then cancel by name
    const retry = run(["--retry-failed", "--reconcile", "600"], "retry");
    await until("the retried trials queued", async () => (await coord.queueInfo(spec.sweepId)).queued === 3, 30_000);
    assert.equal((await recorded(runDir)).length, 0, "the superseded refused results must not come back");
    const cancel = await cli(
      "sweep",
      ["cancel", "op-retry", "--runs", `${c.dir}/elsewhere`, "--nats", c.server.url],
      tok,
    );
    assert.equal(cancel.code, 0, cancel.text);
    assert.match(cancel.text, new RegExp(`cancelled ${spec.sweepId}`));
    await retry.co.status;
    assert.match(await retry.log(), /--retry-failed: 3 failed trials .* run again \(3 refused\)/);
    assert.deepEqual((await recorded(runDir)).map((r) => r.failure), ["cancelled", "cancelled", "cancelled"]);
    // status of the run directory says how to retry them
    const st = await cli("status", [runDir]);
    assert.match(
      st.text,
      new RegExp(`run the 3 failed trials again: deno task sweep --resume ${runDir} --retry-failed`),
    );
    // 4. --retry-failed after the cancel: the sweep runs again (not cancelled at once) and completes
    const last = run(["--retry-failed", "--workers", "2", "--reconcile", "600"], "last");
    assert.equal((await last.co.status).code, 0, await last.log());
    const rows = await recorded(runDir);
    assert.equal(rows.length, 3);
    assert.ok(rows.every((r) => r.status === "done"), JSON.stringify(rows));
    assert.deepEqual(rows.map((r) => r.trial_id).sort(), spec.trialIds);
    // the superseded lines are kept aside with their reason, and the log validates as it is
    const aside = (await Deno.readTextFile(`${runDir}/${REJECTED_FILE}`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(aside.filter((a) => /superseded: retried with --retry-failed/.test(a.reason)).length, 6);
    const log = await ResultLog.open(runDir, { planned: spec.trialIds, readOnly: true });
    assert.equal(log.setAside.length, 0);
  } finally {
    await coord.close();
    await c.close();
  }
});

Deno.test("operator - Ctrl-C in a terminal (SIGINT to the process group) stops quietly and says how to resume", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // trials far longer than the test (a finished trial would rightly print its front)
    const spec = await writeSpec(dir, "op-int", 2, 20_000, "backend: js\n");
    // as a user runs it (deno task passes the terminal's SIGINT on to the coordinator, which gets it too), in a
    // process group of its own (setsid), as a shell's foreground job is
    const p = pipedProcess("setsid", [
      ...[Deno.execPath(), "task", "--config", `${ROOT}deno.json`, "sweep", spec.path, "--runs", `${dir}/runs`],
      ...["--workers", "1"],
    ]);
    await until("the trials published", () => /published 2 trials/.test(p.text()), 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // a trial is running
    Deno.kill(-p.pid, "SIGINT"); // the whole group: coordinator, and whatever shares its group
    const code = await p.done;
    const text = p.text();
    assert.equal(code, 130, text);
    assert.doesNotMatch(text, /could not publish the sweep state|cleanup:|nats: disconnect/, text);
    assert.doesNotMatch(text, /Front:/, "no empty front tables");
    assert.match(text, new RegExp(`continue it with: deno task sweep --resume ${dir}/runs/${spec.sweepId}`));
    assert.doesNotMatch(text, /interrupted again/, "one Ctrl-C is one interruption");
    // nothing of the sweep's left running: its private broker and worker stopped with it
    const ps = await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output();
    assert.doesNotMatch(new TextDecoder().decode(ps.stdout), new RegExp(`${dir}/runs`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - --dry-run lists the trials, the compute estimate and the problems, and starts nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spec = await writeSpec(dir, "op-dry", 3, 5, "backend: js\n");
    const { code, text } = await cli("sweep", [spec.path, "--runs", `${dir}/runs`, "--dry-run"]);
    assert.equal(code, 0, text);
    assert.match(text, new RegExp(`${spec.sweepId} \\(op-dry\\): 3 trials`));
    for (const id of spec.trialIds) assert.match(text, new RegExp(`  ${id}  gates  lambda=`));
    // 512 samples less the validation split, batch 64: 7 steps an epoch, 5 epochs, 3 trials
    assert.match(text, /compute: 105 training steps, 15 trial-epochs, about [\d.]+ [MGT]FLOP/);
    assert.match(text, /problems: none found/);
    assert.doesNotMatch(text, /private nats-server|published/);
    await assert.rejects(() => Deno.stat(`${dir}/runs`), Deno.errors.NotFound, "a dry run writes nothing");
    // a damaged run directory: the problems a run would find, the bad bytes escaped, nothing changed; exit 1
    const runDir = `${dir}/runs/${spec.sweepId}`;
    await Deno.mkdir(runDir, { recursive: true });
    await Deno.writeTextFile(`${runDir}/results.jsonl`, '\x00\x1b[2J\n{"trial_id": "cut');
    await Deno.writeTextFile(`${runDir}/broker.json`, '{"url": 1}');
    const damaged = await cli("sweep", [spec.path, "--runs", `${dir}/runs`, "--dry-run"]);
    assert.equal(damaged.code, 1, damaged.text);
    assert.match(damaged.text, /results\.jsonl line 1: not JSON \(.*"\\x00\\x1b\[2J".*a run sets it aside/);
    assert.match(damaged.text, /results\.jsonl line 2: torn .*a run sets it aside in results\.rejected\.jsonl/);
    assert.match(damaged.text, /broker\.json: not a broker file \(url: Expected string, received number\)/);
    assert.ok(!damaged.text.includes("\x1b"), "no raw control byte reaches the terminal");
    assert.deepEqual([...Deno.readDirSync(runDir)].map((e) => e.name).sort(), ["broker.json", "results.jsonl"]);
    assert.equal(await Deno.readTextFile(`${runDir}/results.jsonl`), '\x00\x1b[2J\n{"trial_id": "cut');
    // a spec with problems: all of them, exit 1
    await Deno.writeTextFile(`${dir}/bad.yaml`, "name: x\nmethod: bayes\ntraining:\n  epochs: -2\n");
    const bad = await cli("sweep", [`${dir}/bad.yaml`, "--dry-run"]);
    assert.equal(bad.code, 1, bad.text);
    assert.match(bad.text, /problems? in the sweep spec/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - the spec check reports the problems of every stage at once; W&B's method: bayes points to search.strategy", () => {
  const text = `version: 1
name: x
method: bayes
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  lambda: {min: 1.0e-4, max: 3.0e-2, scale: log, count: 4}
  lr: {values: [0.05, -1]}
training: {epochs: 3, batch_size: .inf, lr: 0.05, bogus: 1}
`;
  let issues: SpecIssue[] = [];
  try {
    parseSpec(text, "s.yaml");
  } catch (err) {
    assert.ok(err instanceof SpecError, String(err));
    issues = err.issues;
  }
  {
    // a non-finite number, an unknown field, a W&B-style method and a bad swept value: one round
    assert.deepEqual(issues.map((i) => i.path), [
      "method",
      "parameters.lr.values.1",
      "training.batch_size",
      "training.bogus",
    ]);
    assert.match(issues[0]!.message, /W&B Sweeps' search method; here it is `search: \{strategy: adaptive\}`/);
  }
});

Deno.test("operator - worker --wait connects once the broker is up; the engine probe is cached per machine; no XDG noise; an idle worker stops quietly", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const token = "op-wait-token";
  const url = `nats://127.0.0.1:${port}`;
  const env = { NATS_TOKEN: token, TICKETSWEEP_CACHE_DIR: `${dir}/cache`, XDG_RUNTIME_DIR: `${dir}/no-such-dir` };
  const args = ["--nats", url, "--backend", "auto", "--pack", "1"];
  let server: Awaited<ReturnType<typeof startLocalServer>> | undefined;
  const first = workerProcess([...args, "--wait", "--max-trials", "1"], env);
  let second: ReturnType<typeof workerProcess> | undefined;
  try {
    // the broker is not up yet: the worker waits instead of exiting
    await until(
      "a retry",
      () => /not reachable yet \(attempt 1\); retrying in 1 s \(--wait\)/.test(first.text()),
      30_000,
    );
    server = await startLocalServer(`${dir}/nats`, { port, token });
    const coord = await connectNats({ servers: url, token });
    try {
      const text = tinySpecText("op-wait", 1, "", 2);
      const spec = parseSpec(text);
      const out = await runSweep({
        spec,
        specText: text,
        specFile: "s.yaml",
        runsDir: `${dir}/runs`,
        transport: coord,
        log() {},
      });
      assert.ok(out.complete);
      assert.equal(await first.done, 0, first.text());
      assert.match(first.text(), /engine \w+ .*auto: '\w+' (is the fastest|was fastest)/);
      assert.doesNotMatch(first.text(), /XDG_RUNTIME_DIR/);
      const cached = JSON.parse(await Deno.readTextFile(`${dir}/cache/engines.json`));
      assert.equal(Object.keys(cached).length, 1);
      // the next worker on this machine takes the cached choice at once, and an idle one stops without a word
      // about giving a trial back
      second = workerProcess(args, env);
      await until(
        "the cached engine",
        () => /as probed on this machine at .* \(cached in /.test(second!.text()),
        30_000,
      );
      second.kill("SIGTERM");
      assert.equal(await second.done, 0, second.text());
      assert.match(second.text(), /stopping/);
      assert.doesNotMatch(second.text(), /goes back to the queue|XDG_RUNTIME_DIR/);
    } finally {
      await coord.close();
    }
  } finally {
    first.kill("SIGKILL");
    second?.kill("SIGKILL");
    await first.done;
    await second?.done;
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - --device N on the webgpu engine takes adapter N of the distinct ones, and names them when N is too large", async () => {
  const { selectEngine } = await import("../src/engine/select.ts");
  quietGpuProbe(); // as the worker does before probing
  const one = await selectEngine("webgpu", { device: 0 }).catch(() => null);
  if (!one) return; // no WebGPU here at all (no Vulkan loader): nothing to pick from
  one.engine.close();
  await assert.rejects(
    () => selectEngine("webgpu", { device: 7 }),
    /--device 7: WebGPU offers [12] distinct adapters? here \(0: /,
  );
});

Deno.test("operator - the README's remote-worker quickstart works: its nats-server line, then the worker command the coordinator logs", async () => {
  const dir = await Deno.makeTempDir();
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const line = readme.split("\n").find((l) => l.startsWith("nats-server -js"));
  assert.ok(line, "the quickstart shows how to start a broker remote workers reach");
  const port = freePort(), token = "readme-token";
  const args = line.replace(/\s*&\s*(#.*)?$/, "").split(/\s+/).slice(1).map((a) =>
    a === "4222" ? String(port) : a === '"$TOKEN"' ? token : a.replace("~/ticketsweep-nats", `${dir}/nats`)
  );
  const broker = new Deno.Command("nats-server", { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
  let worker: ReturnType<typeof workerProcess> | undefined;
  try {
    const url = `nats://127.0.0.1:${port}`;
    await until("the broker", async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return true;
      } catch {
        return false;
      }
    }, 10_000);
    const spec = await writeSpec(dir, "op-readme", 2, 2, "backend: js\n");
    const co = startCoordinator([spec.path, "--runs", `${dir}/runs`], { url, token }, `${dir}/coord.log`);
    let hint = "";
    await until("the join hint", async () => {
      const log = await Deno.readTextFile(`${dir}/coord.log`).catch(() => ""); // not written yet on a loaded machine
      hint = /workers join with deno task worker (\S.*?) \(/.exec(log)?.[1] ?? "";
      return hint !== "";
    }, 30_000);
    // what a user types on the other machine: the logged command with their token
    worker = workerProcess([...hint.replace("TOKEN", token).split(" "), "--max-trials", "2"]);
    assert.equal((await co.status).code, 0, await Deno.readTextFile(`${dir}/coord.log`));
    assert.equal((await recorded(`${dir}/runs/${spec.sweepId}`)).filter((r) => r.status === "done").length, 2);
  } finally {
    worker?.kill("SIGKILL");
    await worker?.done;
    broker.kill("SIGTERM");
    await broker.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - a fresh clone installs its npm dependencies without a build-script warning box, and quietly with -q", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const f of ["deno.json", "deno.lock"]) await Deno.copyFile(`${ROOT}${f}`, `${dir}/${f}`);
    const install = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    };
    assert.doesNotMatch(await install(["install"]), /Ignored build scripts|Warning/);
    await Deno.remove(`${dir}/node_modules`, { recursive: true });
    assert.equal((await install(["install", "-q"])).trim(), "", "the README's `deno install -q` prints nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - in-process mode prints each trial's outcome once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spec = await writeSpec(dir, "op-once", 3, 2, "backend: js\n");
    const { code, text } = await cli("sweep", [spec.path, "--runs", `${dir}/runs`], {
      NATS_SERVER_BIN: "/nonexistent/nats-server",
    });
    assert.equal(code, 0, text);
    for (const id of spec.trialIds) {
      assert.equal(text.split("\n").filter((l) => l.includes(`trial ${id}`) && /accuracy/.test(l)).length, 1, text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - credential files written into a checkout are git-ignored", async () => {
  const paths = ["worker.env", "broker/coordinator.env", "broker/worker-2.env", "broker/nats-server.conf", "me.creds"];
  // the checkout's .gitignore in a scratch repository (the tests may run from a copy without .git)
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(`${ROOT}.gitignore`, `${dir}/.gitignore`);
    await new Deno.Command("git", { args: ["init", "-q"], cwd: dir }).output();
    const out = await new Deno.Command("git", {
      args: ["check-ignore", "--no-index", ...paths],
      cwd: dir,
      stdout: "piped",
    })
      .output();
    assert.deepEqual(new TextDecoder().decode(out.stdout).trim().split("\n"), paths);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("operator - sweep cancel NAME finds a private-broker sweep by its name in the run directories", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spec = await writeSpec(dir, "op-local", 2, 400, "backend: js\n");
    const co = scriptProcess("src/cli/sweep.ts", [spec.path, "--runs", `${dir}/runs`, "--workers", "1"]);
    await until("the trials published", () => /published 2 trials/.test(co.text()));
    const cancel = await cli("sweep", ["cancel", "op-local", "--runs", `${dir}/runs`]);
    assert.equal(cancel.code, 0, cancel.text);
    assert.match(cancel.text, new RegExp(`cancelled ${spec.sweepId}`));
    await co.done;
    assert.match(co.text(), /sweep op-local-\w+ was cancelled/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
