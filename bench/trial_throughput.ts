// Whole-trial throughput: trials per hour of the quickstart's trial (MNIST LeNet-300-100, gates, data load,
// training, evaluation, ticket) through ticketsweep's sweep and workers, and through the PyTorch script, one
// process per core on both sides.
import { join } from "node:path";
import { runTorch, type TorchPython } from "./torch_reference.ts";

/** One side's measurement: trials done, wall seconds of the whole command, and what the trials reached. */
export interface Throughput {
  trials: number;
  wallS: number;
  perHour: number;
  /** Mean test accuracy and sparsity of the tickets (the two sides train the same trials). */
  accuracy: number;
  sparsity: number;
  /** Σ over the trials of the seconds of their training steps. */
  trainS: number;
}

interface Row {
  accuracy: number;
  sparsity: number;
  train_s: number;
}

const ROOT = new URL("..", import.meta.url).pathname;

function summary(rows: Row[], wallS: number): Throughput {
  const sum = (k: keyof Row) => rows.reduce((s, r) => s + r[k], 0);
  const mean = (k: keyof Row) => sum(k) / rows.length;
  return {
    trials: rows.length,
    wallS,
    perHour: rows.length * 3600 / wallS,
    accuracy: mean("accuracy"),
    sparsity: mean("sparsity"),
    trainS: sum("train_s"),
  };
}

/**
 * `deno task sweep SPEC --workers N` into a fresh runs directory (a private broker when nats-server is on PATH,
 * N local worker processes), timed from the command's start to its exit.
 */
export async function ticketsweepTrials(spec: string, workers: number): Promise<Throughput> {
  const runs = await Deno.makeTempDir({ prefix: "ticketsweep-bench-runs-" });
  try {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/sweep.ts", spec, "--workers", String(workers), "--runs", runs],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wallS = (performance.now() - t0) / 1000;
    if (!out.success) throw new Error(`the sweep failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
    const rows: Row[] = [];
    for await (const e of Deno.readDir(runs)) {
      if (!e.isDirectory) continue;
      const text = await Deno.readTextFile(join(runs, e.name, "results.jsonl"));
      for (const line of text.trim().split("\n")) {
        const r = JSON.parse(line);
        if (r.status !== "done") throw new Error(`a trial ended ${r.status}: ${line.slice(0, 1000)}`);
        rows.push(r.metrics);
      }
    }
    return summary(rows, wallS);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
}

/**
 * bench/torch_methods.py trial in `processes` processes at once, each running its share of the lambdas one after
 * another (the best case for PyTorch: one interpreter start and one data load per process, not per trial).
 */
export async function torchTrials(
  py: TorchPython,
  dataDir: string,
  lambdas: number[],
  epochs: number,
  lr: number,
  processes: number,
): Promise<Throughput> {
  const out = await Deno.makeTempDir({ prefix: "ticketsweep-bench-torch-" });
  try {
    const shares = Array.from({ length: processes }, (_, p) => lambdas.filter((_, i) => i % processes === p));
    const t0 = performance.now();
    const rows = (await Promise.all(shares.map((share) =>
      runTorch(py, [
        "trial",
        "gates",
        "--data",
        dataDir,
        "--lambdas",
        share.join(","),
        "--epochs",
        String(epochs),
        "--lr",
        String(lr),
        "--out",
        out,
      ])
    ))).flat();
    const wallS = (performance.now() - t0) / 1000;
    return summary(rows.map((r) => ({ ...r }) as unknown as Row), wallS);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
