import { parseSpec } from "../src/spec/load.ts";
import { MemoryTransport } from "../src/broker/memory.ts";
import { runSweep, type SweepOptions, type SweepOutcome } from "../src/coordinator/sweep.ts";
import { runWorker } from "../src/worker/worker.ts";
import type { SweepSpec } from "../src/spec/schema.ts";
import { type ResultMessage, WIRE_VERSION, type WorkerPresence } from "../src/broker/messages.ts";
import { writeManifest } from "../src/coordinator/run_dir.ts";
import { sweepIdOf, type Trial } from "../src/spec/expand.ts";

/** A small, fast sweep on the synthetic task: `n` lambdas, one seed, about a second a trial. */
export function tinySpecText(name: string, n = 8, extra = "", epochs = 3): string {
  return `version: 1
name: ${name}
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  lambda: {min: 1.0e-4, max: 3.0e-2, scale: log, count: ${n}}
training: {epochs: ${epochs}, batch_size: 64, lr: 0.05}
${extra}`;
}

export function tinySpec(name: string, n = 8, extra = ""): SweepSpec {
  return parseSpec(tinySpecText(name, n, extra));
}

export const ROOT = new URL("../", import.meta.url).pathname;

/** The outcomes recorded in a run directory's results.jsonl (none when it does not exist yet). */
export async function readResults(
  dir: string,
): Promise<{ trial_id: string; status: string; error?: string; failure?: string; attempt?: number }[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/results.jsonl`);
  } catch {
    return []; // nothing recorded yet
  }
  return text.split("\n").filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return []; // a line cut by a kill (the result log drops it too)
    }
  });
}

/**
 * Runs a sweep to the end in this process (in-memory broker, one worker on the `js` engine): its outcome and the
 * coordinator's log lines. `setup` runs on the transport before the worker starts; `options` go to runSweep.
 */
export async function runInProcess(
  text: string,
  runsDir: string,
  setup?: (transport: MemoryTransport) => Promise<void>,
  options: Partial<SweepOptions> = {},
): Promise<{ outcome: SweepOutcome; lines: string[] }> {
  const transport = new MemoryTransport();
  await setup?.(transport);
  const ac = new AbortController();
  const worker = runWorker({ transport, backend: "js", signal: ac.signal });
  const lines: string[] = [];
  try {
    const outcome = await runSweep({
      spec: parseSpec(text),
      specText: text,
      specFile: "s.yaml",
      runsDir,
      transport,
      log: (l) => lines.push(l),
      ...options,
    });
    return { outcome, lines };
  } finally {
    ac.abort();
    await worker;
    await transport.close();
  }
}

/** {@link runInProcess}'s run directory. */
export async function sweepInProcess(text: string, runsDir: string): Promise<string> {
  return (await runInProcess(text, runsDir)).outcome.runDir;
}

/**
 * A run directory `root/SWEEP_ID` of a spec with hand-made outcomes: its sweep.json (version 1, these `trials`,
 * created at `createdAt`) and results.jsonl (`results`, one a line). Returns its path.
 */
export async function handMadeRunDir(
  root: string,
  text: string,
  trials: Trial[],
  results: unknown[],
  createdAt = "2025-01-01T00:00:00Z",
): Promise<string> {
  const spec = parseSpec(text);
  const sweepId = sweepIdOf(spec), dir = `${root}/${sweepId}`;
  await writeManifest(dir, {
    format: "ticketsweep-sweep",
    version: 1,
    sweep_id: sweepId,
    name: spec.name,
    spec_file: "s.yaml",
    spec_text: text,
    spec,
    trials,
    created_at: createdAt,
  });
  await Deno.writeTextFile(`${dir}/results.jsonl`, results.map((r) => JSON.stringify(r) + "\n").join(""));
  return dir;
}

/** A failed result for a trial, from a client that was never given it (a wrong claim). */
export function forgedResult(sweepId: string, trialId: string): ResultMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: sweepId,
    trial_id: trialId,
    status: "failed",
    attempt: 1,
    error: "forged",
    worker: { id: "mallory", host: "x", backend: "none", device: "none", deno: "0" },
    finished_at: new Date().toISOString(),
    claim: "0".repeat(32),
  };
}

/**
 * Metrics of a done trial for hand-made results: one masked layer `fc1` at `sparsity`, a one-point loss curve,
 * no ticket; `extra` overrides any field (val_accuracy is left out unless given: a result recorded before
 * validation existed).
 */
export function fakeMetrics(sparsity: number, accuracy: number, extra: Record<string, unknown> = {}) {
  return {
    accuracy,
    soft_accuracy: null,
    sparsity,
    layers: [{ layer: "fc1", shape: [4, 4], total: 16, kept: Math.round(16 * (1 - sparsity)), sparsity }],
    masked_layers: ["fc1"],
    loss_curve: [{ epoch: 1, step: 1, loss: 1, task_loss: 1, train_accuracy: 0.5 }],
    steps: 1,
    steps_per_s: 1,
    train_s: 1,
    wall_s: 1,
    backend: "js",
    device: "cpu",
    data: "synthetic",
    ticket: null,
    ...extra,
  };
}

/**
 * A hand-made recorded outcome of `trial`: done or stopped early (1.5 of 4 epochs) with the given sparsity, test
 * and validation accuracy, or failed.
 */
export function madeResult(
  trial: { id: string; sweepId: string },
  status: "done" | "stopped" | "failed",
  sparsity: number,
  accuracy: number,
  val: number,
): ResultMessage {
  return {
    v: WIRE_VERSION,
    sweep_id: trial.sweepId,
    trial_id: trial.id,
    status,
    attempt: 1,
    worker: { id: "w", host: "h", backend: "js", device: "cpu", deno: "2" },
    finished_at: "2026-01-01T00:00:00Z",
    claim: "c",
    ...(status === "failed" ? { error: "boom", failure: "error" as const } : {
      metrics: {
        ...fakeMetrics(sparsity, accuracy, { val_accuracy: val, steps: 8 }),
        ...(status === "stopped" ? { stopped: { epochs: 1.5, planned_epochs: 4, rung_epoch: 1 } } : {}),
      },
    }),
  };
}

/** An idle worker's presence heartbeat, as a worker on `host` named `worker` would put it. */
export function presenceOf(host: string, worker: string): WorkerPresence {
  return {
    v: WIRE_VERSION,
    worker,
    host,
    backend: "js",
    device: "cpu",
    deno: "2.0.0",
    sweep_id: null,
    trial_id: null,
    step: 0,
    total_steps: 0,
    steps_per_s: null,
    done: 0,
    failed: 0,
    rejected: {},
    updated_at: new Date().toISOString(),
  };
}
