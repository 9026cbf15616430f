// Worker start-up: from spawning `deno task worker` to its first trial's start, on a private broker with trials
// waiting. The first start on a machine probes the engines (`--backend auto`); later ones take the cached choice.
//   deno run -A bench/worker_startup.ts [STARTS] [BACKEND]     (default 4 starts, auto)
import { startLocalServer } from "../src/broker/local_server.ts";
import { connectNats } from "../src/broker/nats.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { parseSpec } from "../src/spec/load.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const starts = Number(Deno.args[0] ?? 4);
const backend = Deno.args[1] ?? "auto";
const dir = await Deno.makeTempDir();
const server = await startLocalServer(`${dir}/nats`);
const coord = await connectNats({ servers: server.url, token: server.token });
const text = `version: 1
name: startup
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  lambda: {min: 1.0e-4, max: 3.0e-2, scale: log, count: ${starts}}
training: {epochs: 2, batch_size: 64, lr: 0.05}
`;
const sweep = runSweep({
  spec: parseSpec(text),
  specText: text,
  specFile: "s.yaml",
  runsDir: `${dir}/runs`,
  transport: coord,
  log() {},
});
await new Promise((r) => setTimeout(r, 1500)); // the trials are queued
for (let i = 0; i < starts; i++) {
  const t0 = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}workers/worker.ts`, "--nats", server.url, "--backend"]
      .concat([backend, "--max-trials", "1", "--pack", "1"]),
    // a cache of its own: the first start probes, as on a new machine
    env: { NATS_TOKEN: server.token, NO_COLOR: "1", TICKETSWEEP_CACHE_DIR: `${dir}/cache` },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let connected = 0, started = 0, log = "";
  for await (const chunk of p.stderr.pipeThrough(new TextDecoderStream())) {
    log += chunk;
    if (!connected && /connected to/.test(log)) connected = performance.now() - t0;
    if (!started && /: start \(attempt/.test(log)) started = performance.now() - t0;
  }
  await p.status;
  console.log(
    `start ${i + 1}: connected after ${connected.toFixed(0)} ms, first trial started after ${started.toFixed(0)} ms ` +
      `(${(started - connected).toFixed(0)} ms after connecting)`,
  );
}
await sweep;
await coord.close();
await server.stop();
await Deno.remove(dir, { recursive: true });
