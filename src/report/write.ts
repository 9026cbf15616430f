import { atomicWrite } from "../util/atomic_write.ts";
import { analyse } from "./analysis.ts";
import type { ReportData } from "./data.ts";
import { paretoJson } from "./data.ts";
import { JsonRows } from "./json_rows.ts";
import { frontsJson, trialsCsvLines } from "./export.ts";
import { renderHtmlPieces } from "./html.ts";
import { renderMarkdown } from "./markdown.ts";

/** The report files written into a folder. */
export const REPORT_FILES = ["report.html", "report.md", "pareto.json", "fronts.json", "trials.csv"];

/** Analyses report data and writes every report file into `dir` (each atomically). */
export async function writeReportFiles(
  dir: string,
  d: ReportData,
  opts: { atAccuracy?: number[] } = {},
): Promise<void> {
  const a = analyse(d, { atAccuracy: opts.atAccuracy });
  await Deno.mkdir(dir, { recursive: true });
  await writeChunks(`${dir}/report.html`, await renderHtmlPieces(d, a));
  await atomicWrite(`${dir}/report.md`, renderMarkdown(d, a));
  await writeJson(`${dir}/pareto.json`, paretoJson(d));
  await writeJson(`${dir}/fronts.json`, frontsJson(d, a));
  await writeChunks(`${dir}/trials.csv`, trialsCsvLines(d));
}

/**
 * Writes `JSON.stringify(value, null, 2)` and a newline to `path` atomically (a temporary file renamed into place),
 * in pieces of about a megabyte: the `pareto.json` of a 100,000-trial sweep is ~90 MB as one string. A
 * {@link JsonRows} in `value` is written element by element as it makes them.
 */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeChunks(
    path,
    (function* () {
      yield* prettyJsonChunks(value, "");
      yield "\n";
    })(),
  );
}

/**
 * Writes the concatenation of `chunks` to `path` atomically (a temporary file renamed into place), a megabyte at a
 * time: a large report file is never one string in memory.
 */
export async function writeChunks(path: string, chunks: Iterable<string>): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const enc = new TextEncoder();
    // each piece encoded straight into one reused buffer: pieces joined into a megabyte string first made one
    // string per megabyte in V8's large-object space (old generation), ~90 of them for a 100,000-trial sweep's
    // pareto.json, garbage that held the heap up; a new buffer per megabyte would be memory outside the JS heap, freed
    // only when a collection finds it unused
    let bytes = new Uint8Array(FLUSH_BYTES + (1 << 20)), used = 0;
    const flush = async () => {
      for (let off = 0; off < used;) off += await f.write(bytes.subarray(off, used));
      used = 0;
    };
    for (const chunk of chunks) {
      if (bytes.length - used < 3 * chunk.length) { // UTF-8 is at most 3 bytes per UTF-16 unit
        await flush();
        if (bytes.length < 3 * chunk.length) bytes = new Uint8Array(3 * chunk.length);
      }
      used += enc.encodeInto(chunk, bytes.subarray(used)).written;
      if (used >= FLUSH_BYTES) await flush();
    }
    await flush();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

/** How many encoded bytes {@link writeChunks} gathers before it writes them. */
const FLUSH_BYTES = 1 << 20;

/**
 * `JSON.stringify(value, null, 2)` in pieces, byte for byte: a large array is given element by element, and the
 * plain objects and arrays around one key by key (each piece indented as where it stands).
 */
export function* prettyJsonChunks(value: unknown, indent: string): Generator<string> {
  const whole = (v: unknown) => JSON.stringify(v, null, 2).replaceAll("\n", `\n${indent}`);
  const inner = indent + "  ";
  if (Array.isArray(value) || value instanceof JsonRows) {
    let i = 0;
    for (const v of value as Iterable<unknown>) { // an array's holes are undefined, written null as stringify does
      const skip = v === undefined || typeof v === "function" || typeof v === "symbol";
      yield (i++ ? "," : "[") + "\n" + inner;
      if (skip) yield "null";
      else yield* prettyJsonChunks(v, inner);
    }
    return yield i ? `\n${indent}]` : "[]";
  }
  const plain = value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype &&
    !("toJSON" in value);
  if (!plain || !hasLargeArray(value, 3)) return yield whole(value);
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) =>
    v !== undefined && typeof v !== "function" && typeof v !== "symbol"
  );
  if (entries.length === 0) return yield "{}";
  yield "{";
  for (const [i, [k, v]] of entries.entries()) {
    yield `${i ? "," : ""}\n${inner}${JSON.stringify(k)}: `;
    yield* prettyJsonChunks(v, inner);
  }
  yield `\n${indent}}`;
}

/** Whether a plain value holds an array of over 1,000 elements within `depth` levels. */
function hasLargeArray(v: unknown, depth: number): boolean {
  if (v instanceof JsonRows) return true;
  if (Array.isArray(v)) return v.length > 1000 || (depth > 0 && v.some((x) => hasLargeArray(x, depth - 1)));
  if (v === null || typeof v !== "object" || depth <= 0) return false;
  return Object.values(v).some((x) => hasLargeArray(x, depth - 1));
}
