// The dispatch benchmark: a coordinator in this process, N worker connections with a no-op trainer in a
// child process, a private nats-server on loopback, T trials. Prints throughput, latency percentiles and the
// coordinator's peak memory (the kernel's high-water mark of this process: VmHWM, Linux), once when the last
// result is recorded and once after the reports are written.
import { startLocalServer } from "../src/broker/local_server.ts";
import { connectNats } from "../src/broker/nats.ts";
import { runSweep } from "../src/coordinator/sweep.ts";
import { parseSpec } from "../src/spec/load.ts";
import { trialCount } from "../src/spec/expand.ts";

export interface DispatchResult {
  trials: number;
  connections: number;
  recorded: number;
  duplicates: number;
  lost: number;
  publishS: number;
  dispatchS: number;
  perS: number;
  queueLatencyMs: { p50: number; p90: number; p99: number; max: number };
  serviceLatencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Peak RSS of this process (the coordinator) until the last result was recorded, and until the end. */
  peakRssMb: number;
  dispatchPeakRssMb: number;
  /** Seconds from the last record to runSweep's return (restoring the log, writing the reports). */
  reportS: number;
  /** Resident memory of this process right before the sweep started (broker connection open). */
  startRssMb: number;
  /** Seconds from runSweep's call to its first trial published (planning, sweep.json, opening the logs). */
  startS: number;
  /**
   * CPU seconds (user + system) each process spent from the first publish to the last record: the coordinator
   * (this process), the workers' process and nats-server; null where /proc does not tell (not Linux).
   */
  cpuS: { coordinator: number | null; workers: number | null; broker: number | null };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null where it cannot be read. */
export function cpuSeconds(pid: number | "self"): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd (state) on
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ: 100 on Linux)
  } catch {
    return null;
  }
}

/**
 * The peak resident memory of this process so far in MB: VmHWM from /proc/self/status, which sees peaks no timer
 * can sample (a synchronous report build); the sampled maximum of Deno.memoryUsage().rss elsewhere.
 */
export function peakRss(sampled: number): number {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+) kB/m);
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return sampled / 2 ** 20;
}

const pct = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

export async function dispatchBench(trials: number, connections: number): Promise<DispatchResult> {
  const dir = await Deno.makeTempDir();
  const server = await startLocalServer(`${dir}/nats`);
  const text = `name: dispatch
dataset: {name: synthetic}
parameters:
  lambda: {min: 0, max: 1, count: ${trials}}
`;
  const spec = parseSpec(text);
  const planned = trialCount(spec).trials; // a grid: exact, and no second plan in this process
  const transport = await connectNats({ servers: server.url, token: server.token });
  let firstTrialAt = 0;
  const publishTrial = transport.publishTrial.bind(transport);
  transport.publishTrial = (...a) => {
    firstTrialAt ||= performance.now();
    return publishTrial(...a);
  };
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 50);
  const recordedAt = new Map<string, number>();
  let publishedAt = 0, firstPublish = 0, dispatchPeak = 0, lastRecordAt = 0, recordedCount = 0;
  const startRssMb = Deno.memoryUsage().rss / 2 ** 20;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("dispatch_workers.ts", import.meta.url).pathname,
      "--nats",
      server.url,
      "--connections",
      String(connections),
      "--idle-exit",
      "4",
    ],
    env: { NATS_TOKEN: server.token },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const pids = { coordinator: "self" as const, workers: child.pid, broker: server.process.pid };
  const cpu = () => Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const cpuStart = cpu();
  let cpuEnd = cpuStart;
  const t0 = performance.now();
  firstPublish = Date.now();
  const outcome = await runSweep({
    spec,
    specText: text,
    specFile: "dispatch.yaml",
    runsDir: dir,
    transport,
    log: (line) => {
      const m = line.match(/trial ([0-9a-f]{12})/);
      if (m && line.startsWith("[")) {
        recordedAt.set(m[1]!, Date.now());
        if (++recordedCount === planned) {
          lastRecordAt = performance.now();
          dispatchPeak = peakRss(peak);
          cpuEnd = cpu();
        }
      }
      if (line.startsWith("published")) publishedAt = Date.now();
    },
  });
  const wall = (performance.now() - t0) / 1000;
  const endPeak = peakRss(peak);
  const reportS = lastRecordAt ? (performance.now() - lastRecordAt) / 1000 : NaN;
  clearInterval(sampler);
  const lines = (await Deno.readTextFile(`${outcome.runDir}/results.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const ids = lines.map((l) => l.trial_id as string);
  const lastRecord = [...recordedAt.values()].reduce((a, b) => Math.max(a, b), 0); // not Math.max(...): 100,000
  const queue = [...recordedAt.values()].map((t) => t - firstPublish).sort((a, b) => a - b);
  const service = lines.map((l) => recordedAt.get(l.trial_id)! - Number(l.metrics.data)).sort((a, b) => a - b);
  await child.status;
  await transport.close();
  await server.stop();
  await Deno.remove(dir, { recursive: true });
  void wall;
  return {
    trials: planned,
    connections,
    recorded: ids.length,
    duplicates: ids.length - new Set(ids).size,
    lost: planned - new Set(ids).size,
    publishS: (publishedAt - firstPublish) / 1000,
    dispatchS: (lastRecord - firstPublish) / 1000,
    perS: ids.length / ((lastRecord - firstPublish) / 1000),
    queueLatencyMs: { p50: pct(queue, 0.5), p90: pct(queue, 0.9), p99: pct(queue, 0.99), max: queue.at(-1)! },
    serviceLatencyMs: { p50: pct(service, 0.5), p90: pct(service, 0.9), p99: pct(service, 0.99), max: service.at(-1)! },
    peakRssMb: endPeak,
    dispatchPeakRssMb: dispatchPeak || endPeak,
    reportS,
    startRssMb,
    startS: (firstTrialAt - t0) / 1000,
    cpuS: Object.fromEntries(
      Object.keys(pids).map((k) => {
        const a = cpuStart[k], b = cpuEnd[k];
        return [k, a === null || b === null || b === undefined || a === undefined ? null : b - a];
      }),
    ) as DispatchResult["cpuS"],
  };
}

if (import.meta.main) {
  const trials = Number(Deno.args[0] ?? 10000), connections = Number(Deno.args[1] ?? 64);
  console.log(JSON.stringify(await dispatchBench(trials, connections), null, 2));
}
