import type { Backend } from "../spec/schema.ts";
import { atomicWrite } from "../util/atomic_write.ts";

/** What `auto` chose on this machine, and why. */
export interface ProbeEntry {
  engine: Exclude<Backend, "auto">;
  reason: string;
  /** ISO time of the probe. */
  at: string;
}

/**
 * The file where workers keep each machine's engine choice: `$TICKETSWEEP_CACHE_DIR/engines.json`, else
 * `$XDG_CACHE_HOME/ticketsweep/engines.json`, else `~/.cache/ticketsweep/engines.json`; undefined without a home.
 */
export function probeCacheFile(): string | undefined {
  const dir = Deno.env.get("TICKETSWEEP_CACHE_DIR") ??
    (Deno.env.get("XDG_CACHE_HOME") ? `${Deno.env.get("XDG_CACHE_HOME")}/ticketsweep` : undefined) ??
    (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache/ticketsweep` : undefined);
  return dir ? `${dir}/engines.json` : undefined;
}

/**
 * What a choice depends on: the machine, the runtime, the engines `auto` tries, the OpenBLAS threads and the
 * device the worker is pinned to. A new engine installed later is not seen until `--reprobe`.
 */
export function probeKey(o: { threads?: number; device?: number; candidates: readonly string[] }): string {
  return [
    Deno.hostname(),
    Deno.build.target,
    `deno ${Deno.version.deno}`,
    o.candidates.join(","),
    `threads ${o.threads ?? 1}`,
    `device ${o.device ?? "-"}`,
  ].join(" | ");
}

async function readAll(file: string): Promise<Record<string, ProbeEntry>> {
  try {
    const raw = JSON.parse(await Deno.readTextFile(file));
    return raw && typeof raw === "object" && !Array.isArray(raw) ? raw : {};
  } catch {
    return {}; // none yet, or unreadable: probe again
  }
}

/** The cached choice for `key`, if any. */
export async function readProbe(file: string, key: string): Promise<ProbeEntry | undefined> {
  const e = (await readAll(file))[key];
  return e && typeof e.engine === "string" && typeof e.reason === "string" && typeof e.at === "string" ? e : undefined;
}

/** Records a choice (best effort: a read-only home only means probing again next time). */
export async function writeProbe(file: string, key: string, entry: ProbeEntry): Promise<void> {
  try {
    const all = await readAll(file);
    all[key] = entry;
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    await atomicWrite(file, JSON.stringify(all, null, 1) + "\n");
  } catch { /* not cached */ }
}
