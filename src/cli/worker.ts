import { connectNats, type NatsTransport } from "../broker/nats.ts";
import { type Backend, BACKENDS } from "../spec/schema.ts";
import { TicketsweepError } from "../util/errors.ts";
import { runWorker } from "../worker/worker.ts";
import { DEFAULT_LIMITS } from "../worker/limits.ts";
import { maskedUrls } from "../util/redact.ts";
import { DEFAULT_ORPHAN_GRACE_S, ORPHAN_EXIT_MS, watchCoordinator } from "../util/orphans.ts";
import {
  intFlag,
  logLine,
  NATS_FLAGS,
  NATS_FLAGS_HELP,
  natsFromFlags,
  packFlag,
  parseCli,
  quietGpuProbe,
} from "./common.ts";

export const WORKER_USAGE = `Usage: deno task worker --nats nats://HOST:4222 [options]

Pulls trials from a ticketsweep broker and runs them, one at a time (or K packed), until stopped
(Ctrl-C gives the running trials back to the queue).

Options:
${NATS_FLAGS_HELP}
  --backend B         backend (which engine): ${BACKENDS.join("|")} (default: auto, or the trial's spec)
  --threads N         OpenBLAS threads for the blas engine (default 1: run one worker per core)
  --device N          the GPU to use on a multi-GPU machine, from 0 (or TICKETSWEEP_DEVICE): sets
                      CUDA_VISIBLE_DEVICES=N for the tensorflow engine; the webgpu engine takes adapter N of
                      the distinct ones Deno's WebGPU offers (0 high-performance, 1 low-power where it differs)
  --reprobe           time the engines again for --backend auto (the choice is cached per machine in
                      ~/.cache/ticketsweep/engines.json, so later starts skip the probe)
  --wait              retry connecting until the broker is up (back-off from 1 s to 30 s), for service
                      managers starting workers before the broker; wrong credentials still fail at once
  --pack K|auto       train up to K (1-1024) compatible trials together (same network, data, seed and batch size;
                      any method settings): one copy of the frozen weights and of each batch. auto (default)
                      doubles K from 1 while the steps/s of a pack improve by 5%, within half the free memory
  --result-retry S    seconds a finished trial's result is retried while the broker is unreachable before
                      the trial is given back to the queue (default 120)
  --max-weights N     refuse trials whose network has more than N weights (default 200000000)
  --max-steps N       refuse trials of more than N training steps (default 1000000000); trials whose
                      estimated memory is over 80% of the free memory are refused too (failed: refused,
                      not retried)
  --max-trials N      exit after N trials
  --idle-exit S       exit after S seconds with an empty queue
  --id NAME           worker name shown in status (default host-pid)
  --coordinator PID   the coordinator that started this worker (its parent process): once that process is gone,
                      finish the running trial (its result waits on the broker for --resume), take no new one
                      and exit; a trial still running --orphan-grace seconds later (default 600) is given back
                      first. A sweep's local workers get it
  --orphan-grace S    see --coordinator
  --run-dir DIR       give the running trial back and exit as soon as DIR is deleted and the --coordinator
                      process is gone (a sweep's local workers get their run directory)
  -h, --help          this text`;

/** `deno task worker`: connects, then runs trials until SIGINT/SIGTERM. */
export async function workerMain(args: string[]): Promise<number> {
  const { values } = parseCli(args, {
    ...NATS_FLAGS,
    backend: { type: "string" },
    threads: { type: "string" },
    device: { type: "string" },
    reprobe: { type: "boolean" },
    wait: { type: "boolean" },
    pack: { type: "string" },
    "max-trials": { type: "string" },
    "max-weights": { type: "string" },
    "max-steps": { type: "string" },
    "result-retry": { type: "string" },
    "idle-exit": { type: "string" },
    id: { type: "string" },
    coordinator: { type: "string" },
    "orphan-grace": { type: "string" },
    "run-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, WORKER_USAGE);
  const nats = natsFromFlags(values);
  if (!nats.servers) throw new TicketsweepError(`--nats (or NATS_URL) is required\n\n${WORKER_USAGE}`);
  const backend = (values.backend ?? "auto") as Backend;
  if (!BACKENDS.includes(backend)) {
    throw new TicketsweepError(`--backend must be one of ${BACKENDS.join(", ")}: current value is '${backend}'`);
  }
  const deviceFlag = values.device ?? Deno.env.get("TICKETSWEEP_DEVICE");
  const device = deviceFlag === undefined ? undefined : intFlag("device (or TICKETSWEEP_DEVICE)", deviceFlag, 0);
  // before any engine loads: CUDA (tfjs-node-gpu) sees only this GPU
  if (device !== undefined && !Deno.env.get("CUDA_VISIBLE_DEVICES")) {
    Deno.env.set("CUDA_VISIBLE_DEVICES", String(device));
  }
  // every number flag before connecting: with --wait, a typo would show only once the broker is up
  const idle = intFlag("idle-exit", values["idle-exit"], -1);
  const maxTrials = intFlag("max-trials", values["max-trials"], -1);
  const threads = intFlag("threads", values.threads, 1);
  const resultRetryMs = 1000 * intFlag("result-retry", values["result-retry"], 120);
  const limits = {
    maxWeights: intFlag("max-weights", values["max-weights"], DEFAULT_LIMITS.maxWeights),
    maxSteps: intFlag("max-steps", values["max-steps"], DEFAULT_LIMITS.maxSteps),
  };
  const pack = packFlag(values.pack);
  const coordinatorPid = values.coordinator === undefined
    ? undefined
    : intFlag("coordinator", values.coordinator, 0, { min: 1 });
  const orphanGraceS = intFlag("orphan-grace", values["orphan-grace"], DEFAULT_ORPHAN_GRACE_S);
  const runDir = typeof values["run-dir"] === "string" ? values["run-dir"] : undefined;
  quietGpuProbe();
  const ac = new AbortController();
  const stop = () => ac.abort(); // the worker says what stopping means (a trial given back, or nothing running)
  const drain = new AbortController(); // its coordinator gone: finish the running trial, take no new one
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  // a worker a killed coordinator left: it stops by itself (the run's broker keeps what it finished)
  const unwatch = coordinatorPid === undefined && runDir === undefined ? () => {} : await watchCoordinator({
    coordinatorPid,
    graceMs: orphanGraceS * 1000,
    runDir,
    onGone: (line) => {
      logLine(`worker: ${line}`);
      drain.abort();
    },
    onOrphaned: (why) => {
      logLine(`worker stops: ${why}`);
      stop();
      // a finished result is not retried for --result-retry against a broker that went with the run directory, or
      // that its watchdog stops (no coordinator for twice the grace): its trial, not acknowledged, is delivered
      // again after --ack-wait by the broker a --resume starts, and recorded once
      const t = setTimeout(() => {
        logLine(`worker exits now: ${why}`);
        Deno.exit(0);
      }, ORPHAN_EXIT_MS);
      Deno.unrefTimer(t);
    },
  });
  const connect = () => connectNats({ ...nats, servers: nats.servers!, name: "ticketsweep-worker", log: logLine });
  const transport = values.wait ? await connectPatiently(connect, nats.servers, ac.signal) : await connect();
  if (!transport) return 0; // stopped while waiting for the broker
  const id = typeof values.id === "string" ? values.id : `${Deno.hostname()}-${Deno.pid}`;
  logLine(`worker ${id} connected to ${maskedUrls(nats.servers)}`);
  const summary = await runWorker({
    transport,
    backend,
    threads,
    device,
    engineCache: values.reprobe ? "reprobe" : true,
    pack,
    resultRetryMs,
    limits,
    id,
    log: logLine,
    signal: ac.signal,
    drain: drain.signal,
    ...(idle >= 0 ? { idleExitMs: idle * 1000 } : {}),
    ...(maxTrials >= 0 ? { maxTrials } : {}),
  });
  unwatch();
  await transport.close();
  logLine(
    `worker ${id} exits: ${summary.done} done, ${summary.failed} failed, ${summary.released} given back, ` +
      `${summary.cancelled} dropped (cancelled sweeps)`,
  );
  return 0;
}

/**
 * `--wait`: connects, retrying with back-off (1 s, doubling up to 30 s) while the broker is unreachable; a refusal
 * of the credentials is final. Undefined when `signal` stops it first.
 */
async function connectPatiently(
  connect: () => Promise<NatsTransport>,
  url: string,
  signal: AbortSignal,
): Promise<NatsTransport | undefined> {
  for (let wait = 1000, attempt = 1;; wait = Math.min(2 * wait, 30_000), attempt++) {
    try {
      return await connect();
    } catch (e) {
      if (/authori[sz]ation|authentication|permission/i.test(String((e as Error).message))) throw e;
      logLine(
        `broker ${maskedUrls(url)} not reachable yet (attempt ${attempt}); retrying in ${wait / 1000} s (--wait)`,
      );
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, wait);
      signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
    });
    if (signal.aborted) return undefined;
  }
}
