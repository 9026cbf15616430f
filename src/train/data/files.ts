import { DataError } from "../../util/errors.ts";

/** Reads `dir/name`, or `dir/name.gz` decompressed; a clear error naming both when neither exists. */
export async function readMaybeGzipped(dir: string, name: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(`${dir}/${name}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    const gz = await Deno.readFile(`${dir}/${name}.gz`);
    const stream = new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new DataError(`${what}: expected ${dir}/${name} (or ${name}.gz) — not found; check dataset.path`);
  }
}
