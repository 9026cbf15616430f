// Worker side of the dispatch benchmark: N broker connections in one process, each a worker whose trainer
// does nothing, so that only the queue, the wire and the recording are measured.
import { parseArgs } from "node:util";
import { connectNats } from "../src/broker/nats.ts";
import type { TrialMetrics } from "../src/train/result.ts";
import { runWorker } from "../src/worker/worker.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { nats: { type: "string" }, connections: { type: "string" }, "idle-exit": { type: "string" } },
});
const n = Number(values.connections ?? 64);

/** A no-op trial: reports when it was pulled (in `data`) and a made-up point so fronts have work to do. */
function noop(lambda: number): TrialMetrics {
  return {
    accuracy: 0.99 - 0.5 * lambda,
    soft_accuracy: null,
    sparsity: lambda,
    layers: [],
    masked_layers: [],
    loss_curve: [],
    steps: 0,
    steps_per_s: 0,
    train_s: 0,
    wall_s: 0,
    backend: "none",
    device: "none",
    data: String(Date.now()),
    ticket: null,
  };
}

const transports = await Promise.all(
  Array.from({ length: n }, () => connectNats({ servers: values.nats!, token: Deno.env.get("NATS_TOKEN") })),
);
await Promise.all(transports.map((transport, i) =>
  runWorker({
    transport,
    backend: "js",
    id: `bench-${i}`,
    idleExitMs: Number(values["idle-exit"] ?? 5) * 1000,
    presenceMs: 60_000,
    runTrial: (t) => Promise.resolve(noop(Number(t.params["lambda"] ?? 0))),
  })
));
await Promise.all(transports.map((t) => t.close()));
