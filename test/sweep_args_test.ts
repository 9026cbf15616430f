// `sweep` arguments the broker cannot take: one line, never the KV or JetStream client's stack trace.
import assert from "node:assert/strict";
import { closingLines, localWorkerAuth, outcomeCounts, sweepMain, workerJoinCommand } from "../src/cli/sweep.ts";
import { errorText, intFlag, natsFromFlags, parseCli, shown } from "../src/cli/common.ts";
import { reportMain } from "../src/cli/report.ts";
import { statusMain } from "../src/cli/status.ts";
import { ticketMain } from "../src/cli/ticket.ts";
import { brokerConfigMain } from "../src/cli/broker_config.ts";
import { maskedUrls } from "../src/util/redact.ts";
import { workerMain } from "../src/cli/worker.ts";
import { TicketsweepError } from "../src/util/errors.ts";
import { handMadeRunDir, ROOT, tinySpecText } from "./_fixtures.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { parseSpec } from "../src/spec/load.ts";

Deno.test("cancel - an empty, wildcard or spaced name is refused before any broker is asked", async () => {
  for (const arg of ["", "*", ">", "a b", "runs/*", "a.b"]) {
    await assert.rejects(
      () => sweepMain(["cancel", arg, "--nats", "nats://127.0.0.1:1"]),
      /cancel: '.*' is not a sweep name, id or run directory \(their names are letters, digits, - and _\)/,
      arg,
    );
  }
});

Deno.test("sweep - --ack-wait 0 or 10^11 s (nanoseconds past int64 on the broker) is refused with one line", async () => {
  for (const v of ["0", "99999999999"]) {
    await assert.rejects(
      () => sweepMain(["no-such-spec.yaml", "--ack-wait", v]),
      new RegExp(`--ack-wait must be a whole number from 1 to 86400 seconds: current value is '${v}'$`),
    );
  }
});

Deno.test("sweep - --workers takes 0 to 256 local workers: 100000 or 1e9 is one line, before anything starts", async () => {
  for (const v of ["257", "100000", "1e9"]) {
    await assert.rejects(
      () => sweepMain(["no-such-spec.yaml", "--workers", v]),
      new RegExp(`--workers must be a whole number from 0 to 256 local worker processes: current value is '${v}'$`),
    );
  }
});

Deno.test("sweep - number flags take decimal digits only: 2abc, 0x10, 1e400, 1.5, -1, ' 2' and '' are refused", async () => {
  for (
    const [flag, v] of [
      ["workers", "2abc"],
      ["workers", "0x10"],
      ["workers", "1 "],
      ["ack-wait", "1e400"],
      ["ack-wait", "1.5"],
      ["reconcile", "-1"],
      ["reconcile", " 2"],
      ["pack", "0b11"],
      ["pack", "0"], // was taken as 1
      ["reconcile", "0"], // was taken as 1 s
    ]
  ) {
    await assert.rejects(
      () => sweepMain(["no-such-spec.yaml", `--${flag}=${v}`]),
      new RegExp(`--${flag} must be a whole number .*: current value is '${v}'$`),
      `--${flag} ${v}`,
    );
  }
  assert.equal(intFlag("workers", "12", 1), 12);
  assert.throws(
    () => intFlag("workers", "", 1),
    /--workers must be a whole number \(digits only\): current value is ''$/,
  );
  // an empty value of any flag is one line (--runs "" would put run directories at /)
  for (const flag of ["workers", "runs", "nats", "resume"]) {
    await assert.rejects(
      () => sweepMain(["s.yaml", `--${flag}=`]),
      new RegExp(`--${flag} is empty: give it a value, or leave the flag out$`),
    );
  }
  // a bad value's control bytes are escaped, not sent to the terminal
  assert.throws(() => intFlag("threads", "2\x1b[2J", 1), /current value is '2\\x1b\[2J'$/);
});

Deno.test("every command - a flag that takes a value, given twice, is one line naming it (the last one won)", async () => {
  const mains: [string, (a: string[]) => Promise<number>, string[]][] = [
    ["sweep", sweepMain, ["s.yaml", "--nats", "nats://a:1", "--nats", "nats://b:1"]],
    ["sweep", sweepMain, ["s.yaml", "--pack", "2", "--pack=3"]],
    ["worker", workerMain, ["--password", "s3cret-1", "--nats", "nats://a:1", "--password", "s3cret-2"]],
    ["report", reportMain, ["runs/x", "--at-accuracy", "0.9", "--at-accuracy", "0.8"]],
    ["status", statusMain, ["--token", "t1", "--token", "t2"]],
    ["ticket", ticketMain, ["verify", "t", "--backend", "js", "--backend", "cpu"]],
    ["broker-config", brokerConfigMain, ["--out", "a", "--port", "4222", "--out", "b"]],
  ];
  for (const [name, main, args] of mains) {
    const flag = args.filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]).find((a, i, all) =>
      all.indexOf(a) !== i
    )!;
    await assert.rejects(() => main(args), (e: Error) => {
      assert.ok(e instanceof TicketsweepError, name);
      assert.equal(e.message, `${flag} is given more than once: give it once`, name);
      return true;
    });
  }
  // a switch given twice means the same thing once
  assert.equal(parseCli(["--fresh", "--fresh"], { fresh: { type: "boolean" } }, "").values.fresh, true);
});

Deno.test("sweep - without a broker (in-process), --workers N is not silently ignored: the log says why", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.yaml`, tinySpecText("inproc-workers", 2, "backend: js\n", 1));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}src/cli/sweep.ts`,
        `${dir}/s.yaml`,
        "--runs",
        dir,
        "--workers",
        "3",
      ],
      env: { NO_COLOR: "1", NATS_SERVER_BIN: "/nonexistent/nats-server", NATS_URL: "" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(
      text,
      /\] --workers 3 is ignored: without a broker one worker runs the trials in this process \(--pack trains several together\); for worker processes, install nats-server or pass --nats\n/,
    );
    assert.match(text, /2 done, 0 failed, 0 pending/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep - the last lines print the run directory escaped: a newline in --runs cannot forge a line", () => {
  const runDir = "runs\nReport: /tmp/evil\x1b[2J/s-1";
  const counts = { done: 1, failed: 0, pending: 1 };
  const lines = closingLines({ sweepId: "s-1", runDir, wallS: 1, complete: false, cancelled: false, data: { counts } });
  assert.deepEqual(lines, [
    "1 done, 0 failed, 1 pending in 1.0 s. Report: runs\\x0aReport: /tmp/evil\\x1b[2J/s-1/report.html (also " +
    "report.md, fronts.json, trials.csv; results in results.jsonl)",
    "stopped before the end; continue it with: deno task sweep --resume runs\\x0aReport: /tmp/evil\\x1b[2J/s-1",
  ]);
});

Deno.test("sweep - a spec file with --resume is refused in one line: the run directory keeps its own spec", async () => {
  await assert.rejects(
    () => sweepMain(["other.yaml", "--resume", "runs/s-1234/"]),
    /--resume runs\/s-1234 continues the sweep of that run directory's own spec: give either a spec file or --resume DIR, not both \(to run other\.yaml, leave out --resume\)$/,
  );
  // --fresh with --resume was ignored: the sweep continued instead of starting over
  await assert.rejects(
    () => sweepMain(["--resume", "runs/s-1234", "--fresh", "--dry-run"]),
    /--fresh starts a spec's sweep over, --resume runs\/s-1234 continues it: give one/,
  );
});

Deno.test("sweep - a password or token in a broker URL is never printed", () => {
  const nats = natsFromFlags({ nats: "nats://alice:s3cret@10.0.0.5:4222,nats://10.0.0.6:4222" });
  const join = workerJoinCommand(nats);
  assert.match(
    join,
    /^deno task worker --nats nats:\/\/10\.0\.0\.5:4222,nats:\/\/10\.0\.0\.6:4222 --user USER --password/,
  );
  const tokenJoin = workerJoinCommand(natsFromFlags({ nats: "tok3n@10.0.0.7:4222" }));
  assert.match(tokenJoin, /^deno task worker --nats 10\.0\.0\.7:4222 --token TOKEN \(the token/);
  assert.equal(
    shown(`broker ${nats.servers}: cannot connect to alice:pw2@h:1`),
    "broker nats://10.0.0.5:4222,nats://10.0.0.6:4222: cannot connect to alice:***@h:1",
  );
});

Deno.test("sweep - a URL's user and password (or token) are the credentials: the NATS client ignored them", () => {
  // it answered Authorization Violation to nats://coord:RIGHT@host; now they leave the URL for user and pass
  const nats = natsFromFlags({ nats: "nats://coord:p%40ss@h:4222,nats://coord:p%40ss@h2:4222" });
  assert.deepEqual([nats.servers, nats.user, nats.pass], ["nats://h:4222,nats://h2:4222", "coord", "p@ss"]);
  assert.equal(natsFromFlags({ nats: "tls://t0k@h" }).token, "t0k");
  assert.equal(natsFromFlags({ nats: "nats://a:b@h", user: "flag", password: "wins" }).pass, "wins");
  assert.throws(() => natsFromFlags({ nats: "a:b@h1,c:d@h2" }), /carry different credentials; give one set/);
  assert.throws(() => natsFromFlags({ nats: "a:%zz@h1" }), /bad percent-encoding/);
});

Deno.test("sweep - a token without a scheme, a password with ' or @, or a refused URL's password is not printed", async () => {
  // the log line and connect error print the URL list; a bad URL's refusal echoes it
  assert.equal(shown(`broker ${maskedUrls("tok3n@10.0.0.7:4222")}`), "broker ***@10.0.0.7:4222");
  assert.equal(shown("at nats://u:it'shunter2@h:1: refused"), "at nats://u:***@h:1: refused");
  assert.equal(maskedUrls("nats://u:p@ss@h,tok@h2:1"), "nats://u:***@h,***@h2:1");
  for (const url of ["http://u:hunter2@h", "nats://u:hun/ter2@h", "nats://u:hun ter2@h", "nats://u:hun,ter2@h"]) {
    await assert.rejects(() => sweepMain(["s.yaml", "--nats", url]), (e: Error) => {
      assert.match(e.message, /^--nats \(or NATS_URL\): .* is not a broker URL; .*percent-encode/);
      assert.doesNotMatch(shown(e.message), /hun|ter2/, url);
      return true;
    });
  }
});

Deno.test("sweep - --workers with --nats gives local workers the coordinator's user, password, creds and TLS files", () => {
  // they failed with Authorization Violation and the sweep waited forever
  const auth = localWorkerAuth(natsFromFlags({
    nats: "nats://h:4222",
    user: "coord",
    password: "pw",
    creds: "c.creds",
    "tls-ca": "ca.pem",
    "tls-cert": "c.pem",
    "tls-key": "k.pem",
  }));
  assert.deepEqual(auth.args, [
    "--creds",
    "c.creds",
    "--tls-ca",
    "ca.pem",
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
  ]);
  assert.deepEqual(auth.env, { NATS_USER: "coord", NATS_PASSWORD: "pw" }); // not on a command line ps shows
});

Deno.test("sweep - a run directory (or --runs) that is a file is one line, with --dry-run a problem (exit 1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/runs`, "a file");
    for (const runs of [`${dir}/runs`, `${dir}/runs/`, `${dir}/runs/sub`]) {
      // it was mkdir's AlreadyExists stack trace
      await assert.rejects(
        () => sweepMain(["sweeps/quickstart.yaml", "--runs", runs, "--workers", "0"]),
        TicketsweepError,
        `${dir}/runs`,
      );
      const lines: string[] = [];
      const log = console.log;
      console.log = (l: string) => lines.push(l);
      try {
        assert.equal(await sweepMain(["sweeps/quickstart.yaml", "--runs", runs, "--dry-run"]), 1);
      } finally {
        console.log = log;
      }
      await assert.rejects(
        () => sweepMain(["--resume", `${runs}/quickstart-1`, "--dry-run"]),
        /^TicketsweepError: --resume: \S*runs\/?(\/sub)?(: a directory on this path is a file| is a file, not a directory); give a run directory \(runs\/SWEEP_ID\)$/,
      );
      const problems = lines.join("\n").split("problems:\n")[1]!;
      assert.match(
        problems,
        /^ {2}\S*runs(\/sub: a directory on this path is a file| is a file, not a directory): .*--runs DIR\n/,
      );
      assert.doesNotMatch(problems, /Not a directory \(os error/, "one line, not one per file");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cancel - a sweep whose private broker is gone (finished or stopped) is not running: exit 0", async () => {
  const root = await Deno.makeTempDir();
  try {
    const text = tinySpecText("gone", 2);
    const dir = await handMadeRunDir(root, text, expandTrials(parseSpec(text)), []);
    const lines: string[] = [];
    const log = console.log;
    console.log = (l: string) => lines.push(l);
    try {
      // it was 'error: no broker for ...: pass --nats URL', exit 1, for a sweep that had finished
      assert.equal(await sweepMain(["cancel", dir]), 0);
      assert.equal(await sweepMain(["cancel", "gone", "--runs", root]), 0);
    } finally {
      console.log = log;
    }
    assert.match(lines[0]!, /^gone-\w+ is not running \(no coordinator holds .*\): nothing to cancel, nothing changed/);
    assert.equal(lines[1], lines[0]);
    // a name with no run directory under --runs: the hint named runs/<name>/broker.json, a path that never exists
    await assert.rejects(
      () => sweepMain(["cancel", "gone", "--runs", `${root}/elsewhere`]),
      (e: Error) =>
        e.message.endsWith(`no run directory ${root}/elsewhere/gone (--runs DIR names the folder that holds it)`),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("sweep --dry-run - a results.jsonl that links to nowhere is a problem (a run logged each result forever)", async () => {
  const root = await Deno.makeTempDir();
  try {
    const text = tinySpecText("linked", 2);
    const dir = await handMadeRunDir(root, text, expandTrials(parseSpec(text)), []);
    await Deno.writeTextFile(`${root}/s.yaml`, text);
    await Deno.remove(`${dir}/results.jsonl`);
    await Deno.symlink(`${root}/gone/results.jsonl`, `${dir}/results.jsonl`);
    const lines: string[] = [];
    const log = console.log;
    console.log = (l: string) => lines.push(l);
    try {
      assert.equal(await sweepMain([`${root}/s.yaml`, "--runs", root, "--dry-run"]), 1);
    } finally {
      console.log = log;
    }
    assert.match(lines.join("\n"), /results\.jsonl is a link to .*\/gone\/results\.jsonl, which does not exist: a run/);
    // and a run refuses it before it starts anything
    await assert.rejects(
      () => sweepMain([`${root}/s.yaml`, "--runs", root, "--workers", "0"]),
      /results\.jsonl is a link to .*, which does not exist/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("worker - a bad number flag is refused before connecting (with --wait it showed once the broker was up)", async () => {
  await assert.rejects(
    () => workerMain(["--nats", "nats://127.0.0.1:1", "--max-steps", "1e9"]),
    /--max-steps must be a whole number \(digits only\): current value is '1e9'$/,
  );
  // a bad TICKETSWEEP_DEVICE is named (the line said --device, which was not given)
  Deno.env.set("TICKETSWEEP_DEVICE", "gpu0");
  try {
    await assert.rejects(
      () => workerMain(["--nats", "nats://127.0.0.1:1"]),
      /--device \(or TICKETSWEEP_DEVICE\) must be a whole number \(digits only\): current value is 'gpu0'$/,
    );
  } finally {
    Deno.env.delete("TICKETSWEEP_DEVICE");
  }
});

Deno.test("CLI - an error line echoing a huge value is cut; its other lines stay", () => {
  const text = errorText(`s.yaml: 1 problem\n  s.yaml:2:7 name: found "${"a".repeat(200_000)}"\nnats://u:pw@h`);
  const lines = text.split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[0], "error: s.yaml: 1 problem");
  assert.ok(lines[1]!.length <= 1000 && lines[1]!.endsWith(" ... (200027 characters in all)"), lines[1]);
  assert.equal(lines[2], "nats://u:***@h");
});

Deno.test("sweep - the last line counts trials stopped early", () => {
  assert.equal(
    outcomeCounts({ done: 20, stopped: 4, failed: 1, pending: 0 }),
    "25 recorded: 20 done, 4 stopped early, 1 failed, 0 pending",
  );
  assert.equal(outcomeCounts({ done: 3, stopped: 0, failed: 1, pending: 2 }), "3 done, 1 failed, 2 pending");
});
