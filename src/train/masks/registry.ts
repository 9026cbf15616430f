import { z } from "zod";
import type { FusedKernels } from "../../engine/native.ts";
import type { TrialConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import type { MaskMethod, MethodDefinition } from "./method.ts";

async function discover(): Promise<MethodDefinition[]> {
  const dir = new URL("./", import.meta.url);
  const self = new URL(import.meta.url).pathname.split("/").at(-1);
  const files = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") && e.name !== self)
    .map((e) => e.name)
    .sort();
  const found: MethodDefinition[] = [];
  for (const file of files) {
    const mod = await import(new URL(file, dir).href);
    if (mod.method === undefined) continue;
    const def = mod.method as MethodDefinition;
    if (typeof def.name !== "string" || typeof def.create !== "function" || typeof def.fields !== "object") {
      throw new Error(`src/train/masks/${file}: its \`method\` export is not a method definition (use defineMethod)`);
    }
    found.push(def);
  }
  checkDefinitions(found);
  return found;
}

/** Setting names that are not method fields (the method's name, and the training parameters). */
const RESERVED = ["name", "method", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule"];

/**
 * Unique names; a field several methods read is one declaration (the same schema object, from SHARED_FIELDS),
 * so that a flat spec field means one thing.
 *
 * @throws {Error} naming the methods and the fix.
 */
export function checkDefinitions(defs: readonly MethodDefinition[]): void {
  const names = new Set<string>();
  const owner = new Map<string, { method: string; schema: z.ZodTypeAny }>();
  for (const d of defs) {
    if (!/^[a-z][a-z0-9-]*$/.test(d.name)) {
      throw new Error(`method '${d.name}': expected a name of lower-case letters, digits and '-'`);
    }
    if (names.has(d.name)) throw new Error(`two modules register the method '${d.name}'; rename one`);
    names.add(d.name);
    for (const [field, schema] of Object.entries(d.fields)) {
      if (RESERVED.includes(field)) {
        throw new Error(`method '${d.name}': '${field}' is reserved; name the field otherwise`);
      }
      const had = owner.get(field);
      if (had && had.schema !== schema) {
        throw new Error(
          `methods '${had.method}' and '${d.name}' both declare '${field}' differently; share one declaration ` +
            `(SHARED_FIELDS in src/train/masks/method.ts) or give one a prefixed name`,
        );
      }
      owner.set(field, { method: d.name, schema });
    }
  }
}

/** The definition of a registered method, or undefined. */
export function methodDefinition(name: string): MethodDefinition | undefined {
  return METHOD_DEFINITIONS.find((d) => d.name === name);
}

/** A method's own settings out of a trial's flat `method` block: its fields, typed, defaults filled. */
export function ownSettings(def: MethodDefinition, method: Record<string, unknown>): Record<string, unknown> {
  return z.object(def.fields).parse(method);
}

/**
 * The method a trial names, over its frozen network, its random draws from `rng`; `kernels` (native per-weight
 * loops) speed every method up.
 *
 * @throws {Error} when no module registers the name.
 */
export function createMethod(cfg: TrialConfig, net: FrozenNet, rng: Rng, kernels?: FusedKernels | null): MaskMethod {
  const def = methodDefinition(cfg.method.name);
  if (!def) {
    throw new Error(`unknown method '${cfg.method.name}' (registered: ${METHOD_DEFINITIONS.map((d) => d.name)})`);
  }
  return def.create({
    net,
    config: ownSettings(def, cfg.method),
    training: cfg.training,
    rng,
    kernels: kernels ?? null,
  });
}

/**
 * The registry of mask methods: every module in this folder that exports a `method` ({@link MethodDefinition},
 * made with `defineMethod`) is one, found when this module loads (in file-name order), so that adding a method
 * is adding its module. The spec schema, the sweepable parameters, the optimiser defaults, the worker's memory
 * estimate and the conformance tests (test/method_conformance_test.ts) all read this list.
 *
 * A method module must not import this module or the spec schema at run time (type imports are fine): this
 * module is loading them while the schema waits for it.
 */
export const METHOD_DEFINITIONS: readonly MethodDefinition[] = await discover();
