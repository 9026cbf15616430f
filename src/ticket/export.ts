import { sha256Hex } from "../util/hash.ts";
import { TicketsweepError } from "../util/errors.ts";
import { cutMasks, unpackLevels, unpackMasks } from "./bits.ts";
import { CUTS_FILE, MASK_FILE, readTicket } from "./format.ts";

/**
 * Exports a ticket for use outside ticketsweep: `<out>/ticket.manifest.json` (the manifest with each masked
 * layer's name, shape, kept count and its byte range in the mask file) and `<out>/mask.u8` (one byte per
 * masked weight, 0 or 1, layers in order, row-major: loads as `numpy.fromfile(..., dtype=uint8)`).
 * Refuses a ticket whose mask does not match its recorded hash.
 */
export async function exportTicket(
  dir: string,
  out: string,
  cut?: number,
): Promise<{ manifest: string; mask: string }> {
  const { manifest, bits } = await readTicket(dir);
  if (sha256Hex(bits) !== manifest.mask.sha256) {
    throw new TicketsweepError(`${dir}/${MASK_FILE} does not match its recorded sha256; run \`ticket verify\``);
  }
  const sizes = manifest.layers.map((l) => l.shape.reduce((a, b) => a * b, 1));
  let masks = unpackMasks(bits, sizes);
  let layerInfo = manifest.layers;
  const ladder = manifest.cuts;
  if (cut !== undefined) {
    if (!ladder || cut < 1 || cut > ladder.points.length) {
      throw new TicketsweepError(`${dir}: no cut ${cut} (the ticket has ${ladder?.points.length ?? 0} cuts, 1 to N)`);
    }
    const levels = await Deno.readFile(`${dir}/${CUTS_FILE}`);
    if (sha256Hex(levels) !== ladder.sha256) {
      throw new TicketsweepError(`${dir}/${CUTS_FILE} does not match its recorded sha256; run \`ticket verify\``);
    }
    masks = cutMasks(unpackLevels(levels, sizes.reduce((a, b) => a + b, 0), ladder.bits), cut, sizes);
    const p = ladder.points[cut - 1]!;
    layerInfo = manifest.layers.map((l, i) => ({ ...l, kept: p.kept[i]! }));
  }
  const bytes = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let offset = 0;
  const layers = layerInfo.map((l, i) => {
    bytes.set(masks[i]!, offset);
    const entry = { ...l, offset, length: sizes[i]! };
    offset += sizes[i]!;
    return entry;
  });
  await Deno.mkdir(out, { recursive: true });
  const maskPath = `${out}/mask.u8`, manifestPath = `${out}/ticket.manifest.json`;
  await Deno.writeFile(maskPath, bytes);
  const doc = {
    format: "ticketsweep-ticket-export",
    version: 1,
    source: manifest,
    ...(cut !== undefined ? { cut: { index: cut, ...ladder!.points[cut - 1]!, rule: ladder!.rule } } : {}),
    mask: { file: "mask.u8", dtype: "uint8", values: "0 removed, 1 kept", sha256: sha256Hex(bytes), layers },
    rebuild: "weights: ticketsweep's seeded initialiser for config.model (architecture, init, weight_seed); " +
      "apply mask elementwise to each masked layer's weight tensor (shape [out, ...in])",
  };
  await Deno.writeTextFile(manifestPath, JSON.stringify(doc, null, 2) + "\n");
  return { manifest: manifestPath, mask: maskPath };
}
