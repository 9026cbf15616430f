// The CLI as a user runs it: `deno task sweep SPEC` through the embedded defaults.
import assert from "node:assert/strict";
import { readResults, ROOT, tinySpecText } from "./_fixtures.ts";

async function sweepCli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/sweep.ts`, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("e2e - without nats-server the sweep runs in-process and says how to go multi-machine", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/s.yaml`, tinySpecText("e2e-mem", 6, "backend: js\n"));
  const { code, text } = await sweepCli([`${dir}/s.yaml`, "--runs", `${dir}/runs`], {
    NATS_SERVER_BIN: "/nonexistent/nats-server",
  });
  assert.equal(code, 0, text);
  assert.match(text, /no NATS URL and no nats-server on PATH/);
  assert.match(text, /Front: gates/);
  const [runDir] = [...Deno.readDirSync(`${dir}/runs`)].map((e) => `${dir}/runs/${e.name}`);
  assert.equal((await readResults(runDir!)).length, 6);
  for (const f of ["pareto.json", "report.md", "sweep.json", "spec.yaml"]) await Deno.stat(`${runDir}/${f}`);
  // running the same spec again records nothing twice and publishes nothing
  const again = await sweepCli([`${dir}/s.yaml`, "--runs", `${dir}/runs`], {
    NATS_SERVER_BIN: "/nonexistent/nats-server",
  });
  assert.equal(again.code, 0, again.text);
  assert.match(again.text, /6\/6 trials already recorded/);
  assert.equal((await readResults(runDir!)).length, 6);
  // --resume needs only the run directory
  const resumed = await sweepCli(["--resume", runDir!], { NATS_SERVER_BIN: "/nonexistent/nats-server" });
  assert.equal(resumed.code, 0, resumed.text);
  assert.match(resumed.text, /6\/6 trials already recorded/);
  assert.match(resumed.text, /Front: gates/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("e2e - with nats-server on PATH the sweep starts a private broker and local worker processes", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/s.yaml`, tinySpecText("e2e-nats", 6, "backend: js\n"));
  const { code, text } = await sweepCli([`${dir}/s.yaml`, "--runs", `${dir}/runs`, "--workers", "2"]);
  assert.equal(code, 0, text);
  assert.match(text, /private nats-server on nats:\/\/127\.0\.0\.1:\d+/);
  assert.match(text, /2 local worker processes/);
  const [runDir] = [...Deno.readDirSync(`${dir}/runs`)].map((e) => `${dir}/runs/${e.name}`);
  const results = await readResults(runDir!);
  assert.equal(results.length, 6);
  assert.equal(new Set(results.map((r) => r.trial_id)).size, 6);
  // --fresh starts over on a new private broker whose empty store never held the sweep: nothing to forget there
  const fresh = await sweepCli([`${dir}/s.yaml`, "--runs", `${dir}/runs`, "--workers", "1", "--fresh"]);
  assert.equal(fresh.code, 0, fresh.text);
  assert.doesNotMatch(fresh.text, /already recorded/);
  assert.equal((await readResults(runDir!)).length, 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("e2e - a bad spec exits 1 with every problem located", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.yaml`, "name: x\nmethod:\n  lamda: 1\ntraining:\n  epochs: -2\n");
  const { code, text } = await sweepCli([`${dir}/bad.yaml`]);
  assert.equal(code, 1);
  assert.match(text, /bad\.yaml:3:3 method\.lamda: unknown field 'lamda': did you mean 'lambda'\?/);
  assert.match(text, /bad\.yaml:5:11 training\.epochs/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("e2e - a SIGKILLed coordinator's private broker and workers are stopped by the next run, which completes each trial once", async () => {
  const dir = await Deno.makeTempDir();
  const running = async (runDir: string) => {
    const ps = await new Deno.Command("ps", { args: ["-eo", "pid,args"], stdout: "piped" }).output();
    return new TextDecoder().decode(ps.stdout).split("\n").filter((l) => l.includes(`${runDir}/nats/`)).length;
  };
  try {
    await Deno.writeTextFile(`${dir}/s.yaml`, tinySpecText("e2e-orphans", 2, "backend: js\n", 2000));
    const args = ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}src/cli/sweep.ts`, `${dir}/s.yaml`];
    const first = new Deno.Command(Deno.execPath(), {
      args: [...args, "--runs", `${dir}/runs`, "--workers", "1"],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let text = "";
    const reader = (async () => {
      for await (const c of first.stdout.pipeThrough(new TextDecoderStream())) text += c;
    })();
    for (let i = 0; i < 600 && !/published 2 trials/.test(text); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(text, /published 2 trials/, text);
    await new Promise((r) => setTimeout(r, 1500)); // the worker is training the first (about 5 s a trial)
    const [runDir] = [...Deno.readDirSync(`${dir}/runs`)].map((e) => `${dir}/runs/${e.name}`);
    first.kill("SIGKILL");
    await first.status;
    await reader;
    assert.equal(await running(runDir!), 1, "the killed coordinator's broker is still running"); // the orphan
    const again = await sweepCli([`${dir}/s.yaml`, "--runs", `${dir}/runs`, "--workers", "2"]);
    assert.equal(again.code, 0, again.text);
    assert.match(again.text, /stopped the private broker and local workers a killed coordinator .* left running/);
    const results = await readResults(runDir!);
    assert.equal(results.length, 2, JSON.stringify(results));
    assert.equal(new Set(results.map((r) => r.trial_id)).size, 2);
    assert.equal(await running(runDir!), 0, "a broker is left running on the store");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
