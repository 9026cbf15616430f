import type { Engine } from "./engine.ts";
import { createBlasEngine } from "./blas.ts";
import { createJsEngine } from "./js.ts";
import { createTfjsEngine } from "./tfjs.ts";
import { createWebgpuEngine } from "./webgpu/engine.ts";
import type { Backend } from "../spec/schema.ts";
import { loadKernels } from "./native.ts";
import { probeCacheFile, probeKey, readProbe, writeProbe } from "./probe_cache.ts";

/** Options of {@link selectEngine}. */
export interface SelectOptions {
  /** OpenBLAS threads of the `blas` engine. */
  threads?: number;
  /** The GPU to use on a multi-GPU machine (`--device N`): the webgpu engine takes adapter N (see its docs). */
  device?: number;
  /**
   * `auto` keeps its choice per machine in {@link probeCacheFile} and, next time, creates that engine alone
   * instead of loading and timing every candidate (workers; about 25 ms instead of 0.3 to several seconds).
   */
  cache?: boolean;
  /** With `cache`: probe again and replace the cached choice (`--reprobe`, e.g. after installing an engine). */
  reprobe?: boolean;
}

/** Backends `auto` times against each other when more than one loads (native libraries or a real GPU). */
export const AUTO_FAST = ["blas", "tensorflow", "webgpu"] as const;
/** Backends `auto` falls back to, in order, when none of {@link AUTO_FAST} loads. */
export const AUTO_FALLBACK = ["wasm", "js", "cpu"] as const;

/** An engine and why it was chosen. */
export interface EngineChoice {
  engine: Engine;
  reason: string;
}

/**
 * Creates the engine for a backend name. `auto` loads every backend of {@link AUTO_FAST} it can (a WebGPU
 * software rasteriser does not count), times them on the products of one LeNet-300-100 step when more than
 * one loads, and takes the fastest; with none it takes the first of {@link AUTO_FALLBACK} that loads. The
 * reason says what was tried, what was skipped and why.
 *
 * @throws {Error} when an explicitly named backend cannot load.
 */
export async function selectEngine(backend: Backend, opts: SelectOptions = {}): Promise<EngineChoice> {
  const choice = backend === "auto" && opts.cache ? await cachedChoice(opts) : await chooseEngine(backend, opts);
  const { kernels, reason } = await loadKernels();
  choice.engine.kernels = kernels;
  return { ...choice, reason: `${choice.reason}; ${reason}` };
}

/** `auto` through the machine's cached probe: the cached engine when it still loads, else a probe (then cached). */
async function cachedChoice(opts: SelectOptions): Promise<EngineChoice> {
  const file = probeCacheFile();
  const key = probeKey({ ...opts, candidates: [...AUTO_FAST, ...AUTO_FALLBACK] });
  const hit = file && !opts.reprobe ? await readProbe(file, key) : undefined;
  if (hit) {
    try {
      const engine = await createEngine(hit.engine, opts);
      return {
        engine,
        reason: `auto: '${hit.engine}', as probed on this machine at ${hit.at} (cached in ${file}; --reprobe to ` +
          `probe again): ${hit.reason.replace(/^auto: /, "")}`,
      };
    } catch { /* it no longer loads: probe again */ }
  }
  const choice = await chooseEngine("auto", opts);
  if (file) {
    const entry = {
      engine: choice.engine.name as Exclude<Backend, "auto">,
      reason: choice.reason,
      at: new Date().toISOString(),
    };
    await writeProbe(file, key, entry);
  }
  return choice;
}

async function chooseEngine(backend: Backend, opts: SelectOptions): Promise<EngineChoice> {
  if (backend !== "auto") return { engine: await createEngine(backend, opts), reason: `asked for '${backend}'` };
  const skipped: string[] = [];
  const loaded: Engine[] = [];
  for (const name of AUTO_FAST) {
    try {
      const engine = await createEngine(name, opts);
      if ("software" in engine && engine.software) {
        engine.close();
        skipped.push(`${name}: ${engine.device} is slower than the CPU backends`);
      } else loaded.push(engine);
    } catch (e) {
      skipped.push(`${name}: ${firstLine(e)}`);
    }
  }
  const why = skipped.length ? ` (skipped ${skipped.join("; ")})` : "";
  if (loaded.length === 1) {
    return { engine: loaded[0]!, reason: `auto: '${loaded[0]!.name}' is the fastest available${why}` };
  }
  if (loaded.length > 1) {
    const timed = loaded.map((engine) => ({ engine, ms: timeStep(engine) })).sort((a, b) => a.ms - b.ms);
    for (const t of timed.slice(1)) t.engine.close();
    const times = timed.map((t) => `${t.engine.name} ${t.ms.toFixed(2)} ms`).join(", ");
    return {
      engine: timed[0]!.engine,
      reason: `auto: '${timed[0]!.engine.name}' was fastest on a LeNet step's products (${times})${why}`,
    };
  }
  for (const name of AUTO_FALLBACK) {
    try {
      const engine = await createEngine(name, opts);
      return { engine, reason: `auto: '${name}' is the fastest available${why}` };
    } catch (e) {
      skipped.push(`${name}: ${firstLine(e)}`);
    }
  }
  throw new Error(`no engine could be loaded: ${skipped.join("; ")}`);
}

const firstLine = (e: unknown) => String((e as Error).message ?? e).split("\n")[0];

/** Median milliseconds for the three products of a LeNet-300-100 first layer at batch 128 (after a warm-up). */
function timeStep(engine: Engine): number {
  const b = 128, i = 784, o = 300;
  const x = new Float32Array(b * i).fill(0.5), w = new Float32Array(o * i).fill(0.01);
  const y = new Float32Array(b * o), g = new Float32Array(o * i), dx = new Float32Array(b * i);
  const step = () => {
    engine.gemm(false, true, b, o, i, x, w, y, 0);
    engine.gemm(true, false, o, i, b, y, x, g, 0);
    engine.gemm(false, false, b, i, o, y, w, dx, 0);
  };
  step();
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[2]!;
}

async function createEngine(name: Exclude<Backend, "auto">, opts: SelectOptions): Promise<Engine> {
  switch (name) {
    case "blas":
      return createBlasEngine(opts.threads ?? 1);
    case "wasm":
    case "cpu":
    case "tensorflow":
      return await createTfjsEngine(name);
    case "webgpu":
      return await createWebgpuEngine(opts.device);
    case "js":
      return createJsEngine();
  }
}
