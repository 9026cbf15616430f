import type { Engine } from "./engine.ts";
import { createBlasEngine } from "./blas.ts";
import { createJsEngine } from "./js.ts";
import { createTfjsEngine } from "./tfjs.ts";
import type { Backend } from "../spec/schema.ts";
import { loadKernels } from "./native.ts";

/** Order `auto` tries: fastest first, as measured by `deno task bench`. */
export const AUTO_ORDER = ["blas", "wasm", "js", "cpu"] as const;

/** An engine and why it was chosen. */
export interface EngineChoice {
  engine: Engine;
  reason: string;
}

/**
 * Creates the engine for a backend name; `auto` takes the first of {@link AUTO_ORDER} that loads and says why.
 *
 * @throws {Error} when an explicitly named backend cannot load.
 */
export async function selectEngine(backend: Backend, opts: { threads?: number } = {}): Promise<EngineChoice> {
  const choice = await chooseEngine(backend, opts);
  const { kernels, reason } = await loadKernels();
  choice.engine.kernels = kernels;
  return { ...choice, reason: `${choice.reason}; ${reason}` };
}

async function chooseEngine(backend: Backend, opts: { threads?: number }): Promise<EngineChoice> {
  if (backend !== "auto") return { engine: await createEngine(backend, opts), reason: `asked for '${backend}'` };
  const skipped: string[] = [];
  for (const name of AUTO_ORDER) {
    try {
      const engine = await createEngine(name, opts);
      return {
        engine,
        reason: `auto: '${name}' is the fastest available` + (skipped.length ? ` (skipped ${skipped.join("; ")})` : ""),
      };
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`no engine could be loaded: ${skipped.join("; ")}`);
}

async function createEngine(name: Exclude<Backend, "auto">, opts: { threads?: number }): Promise<Engine> {
  switch (name) {
    case "blas":
      return createBlasEngine(opts.threads ?? 1);
    case "wasm":
    case "cpu":
      return await createTfjsEngine(name);
    case "js":
      return createJsEngine();
  }
}
