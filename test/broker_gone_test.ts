// A broker that goes away under a worker: its pull in flight must end, so that a stopping worker exits.
import assert from "node:assert/strict";
import { connectNats, type NatsTransport } from "../src/broker/nats.ts";
import { type LocalServer, startLocalServer } from "../src/broker/local_server.ts";
import { unknownSweepState } from "../src/broker/messages.ts";
import { expandTrials } from "../src/spec/expand.ts";
import { trialMessage } from "../src/coordinator/sweep.ts";
import { ROOT, tinySpec } from "./_fixtures.ts";
import { until } from "./_cluster.ts";

/** A broker with a running sweep whose one trial is already acknowledged: its queue exists and is empty. */
async function emptySweep(dir: string): Promise<{ server: LocalServer; t: NatsTransport }> {
  const server = await startLocalServer(dir);
  const t = await connectNats({ servers: server.url, token: server.token, name: "broker-gone-test" });
  await t.setup();
  const [m] = expandTrials(tinySpec("broker-gone", 1)).map((x) => trialMessage(x, 3, "test-secret"));
  await t.putSweepState(unknownSweepState(m!.sweep_id));
  await t.publishTrial(m!);
  const d = await t.pullTrial(10_000);
  assert.equal(d?.trial.trial_id, m!.trial_id);
  await d!.ack();
  return { server, t };
}

/** Settles with `p`, or with "hung" after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), ms)))]).finally(() =>
    clearTimeout(timer)
  );
}

Deno.test("a pull in flight when the broker dies ends (null) instead of waiting through the reconnects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "broker-gone-" });
  const { server, t } = await emptySweep(dir);
  try {
    const pending = t.pullTrial(5000); // a long poll on the empty queue
    await new Promise((r) => setTimeout(r, 500));
    server.process.kill("SIGKILL");
    await server.process.status;
    // generous: the pull expires 3 s after it began, then a grace; never, before the fix
    assert.equal(await within(pending, 30_000), null);
  } finally {
    await t.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker process told to stop (SIGTERM) after its broker died exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "broker-gone-" });
  const { server, t } = await emptySweep(dir);
  await t.close();
  const worker = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}workers/worker.ts`, "--nats", server.url],
    env: { NATS_TOKEN: server.token, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const read = (async () => {
    for await (const chunk of worker.stderr.pipeThrough(new TextDecoderStream())) lines.push(chunk);
  })();
  try {
    await until("the worker to connect", () => lines.join("").includes("connected to"), 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // idle: long-polling the empty queue
    server.process.kill("SIGKILL");
    await server.process.status;
    worker.kill("SIGTERM");
    const st = await within(worker.status, 30_000);
    assert.notEqual(st, "hung", `the worker did not exit 30 s after SIGTERM; its log:\n${lines.join("")}`);
  } finally {
    try {
      worker.kill("SIGKILL");
    } catch { /* exited */ }
    await worker.status;
    await read;
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
