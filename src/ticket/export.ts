import { createJsEngine } from "../engine/js.ts";
import { loadDataset } from "../train/data/load.ts";
import { buildNet } from "../train/nets/build.ts";
import { CALIBRATION_SAMPLES } from "../train/nets/net.ts";
import { sha256Hex } from "../util/hash.ts";
import { TicketsweepError } from "../util/errors.ts";
import { type NamedArray, npzBytes, safetensorsBytes } from "./arrays.ts";
import { cutMasks, unpackLevels, unpackMasks } from "./bits.ts";
import { CUTS_FILE, MASK_FILE, readTicket, type TicketManifest } from "./format.ts";
import { forwardOps, hasBatchNorm, OP_SEMANTICS, opWeights } from "./graph.ts";

/** `ticket export --format`: `u8` the mask bytes and their manifest; `npz`/`safetensors` the whole network. */
export const EXPORT_FORMATS = ["npz", "safetensors", "u8"] as const;
export type ExportFormat = typeof EXPORT_FORMATS[number];

/**
 * The tolerance `tools/ticket_forward.py` allows between its accuracy and the recorded one: float32 sums in
 * another order (NumPy's BLAS, not ticketsweep's kernels) can flip a sample whose two top logits are within
 * about 1e-6, so the accuracies may differ by one sample in 10,000, no more.
 */
export const PORTABLE_TOLERANCE = 1e-4;

/** The ticket's masks (its own, or cut `cut`'s) after checking the recorded hashes. */
async function ticketMasks(dir: string, cut?: number): Promise<{
  manifest: TicketManifest;
  masks: Uint8Array[];
  sizes: number[];
  layerInfo: TicketManifest["layers"];
}> {
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
  return { manifest, masks, sizes, layerInfo };
}

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
  const { manifest, masks, sizes, layerInfo } = await ticketMasks(dir, cut);
  const ladder = manifest.cuts;
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
      "apply mask elementwise to each masked layer's weight tensor (shape [out, ...in]); " +
      "`ticket export --format npz|safetensors` writes the weights, masks, forward pass and test data themselves",
  };
  await Deno.writeTextFile(manifestPath, JSON.stringify(doc, null, 2) + "\n");
  return { manifest: manifestPath, mask: maskPath };
}

/** The file names of a portable export. */
export const PORTABLE_MANIFEST = "manifest.json";
export const portableArrays = (format: "npz" | "safetensors") => `ticket.${format}`;

/**
 * Exports a ticket so that it loads without ticketsweep: `<out>/ticket.npz` or `<out>/ticket.safetensors`
 * holding every weight tensor of the frozen network (`weight/<name>`, float32, the built network's own values,
 * unmasked), the binary mask of every masked tensor (`mask/<name>`, uint8 0/1, same shape), the test data the
 * recorded accuracy was measured on (`data/test_x` normalised float32 `[N, H, W, C]`, `data/test_y` uint8 labels)
 * and, for networks with batch norm, the training samples its statistics are recalibrated on
 * (`data/calibration_x`); and `<out>/manifest.json` with the tensors, the forward pass as ordered ops
 * (`src/ticket/graph.ts`), the calibration procedure and the recorded accuracy. `tools/ticket_forward.py`
 * rebuilds the masked network from it in NumPy.
 */
export async function exportPortable(
  dir: string,
  out: string,
  format: "npz" | "safetensors",
  cut?: number,
): Promise<{ manifest: string; arrays: string; bytes: number }> {
  const { manifest, masks, layerInfo } = await ticketMasks(dir, cut);
  const cfg = manifest.config;
  const { train, test } = await loadDataset(cfg.dataset);
  const engine = createJsEngine();
  const net = buildNet(cfg.model, train.shape, train.classes, engine);
  const same = net.maskedParams.length === manifest.layers.length &&
    net.maskedParams.every((l, i) =>
      l.name === layerInfo[i]!.name && l.shape.join("x") === layerInfo[i]!.shape.join("x")
    );
  if (!same) {
    throw new TicketsweepError(
      `${dir}: the rebuilt network's masked layers (${net.maskedParams.map((l) => l.name).join(", ")}) differ from ` +
        `the ticket's; run \`ticket verify\``,
    );
  }
  const ops = forwardOps(cfg.model, train.shape, train.classes);
  const read = opWeights(ops), names = net.params.map((p) => p.name);
  if (read.join("\n") !== names.join("\n")) {
    throw new TicketsweepError(
      `ticket export: the forward-pass description of ${cfg.model.architecture} reads ${read.join(", ")} but the ` +
        `network holds ${names.join(", ")} (src/ticket/graph.ts is out of step with src/train/nets/build.ts)`,
    );
  }
  const bn = hasBatchNorm(ops);
  const kept = new Map(layerInfo.map((l, i) => [l.name, { kept: l.kept, mask: masks[i]! }]));
  const arrays: NamedArray[] = [];
  for (const p of net.params) arrays.push({ name: `weight/${p.name}`, shape: p.shape, data: p.w });
  for (const p of net.maskedParams) {
    arrays.push({ name: `mask/${p.name}`, shape: p.shape, data: kept.get(p.name)!.mask });
  }
  arrays.push({ name: "data/test_x", shape: [test.n, ...test.shape], data: test.x.subarray(0, test.n * test.dim) });
  arrays.push({ name: "data/test_y", shape: [test.n], data: test.y.subarray(0, test.n) });
  const calN = Math.min(CALIBRATION_SAMPLES, train.n);
  if (bn) {
    arrays.push({
      name: "data/calibration_x",
      shape: [calN, ...train.shape],
      data: train.x.subarray(0, calN * train.dim),
    });
  }

  const point = cut !== undefined ? manifest.cuts!.points[cut - 1]! : null;
  const doc = {
    format: "ticketsweep-ticket-portable",
    version: 1,
    arrays: { file: portableArrays(format), format },
    architecture: cfg.model.architecture,
    input_shape: test.shape,
    classes: test.classes,
    layout:
      "activations channels last: images [N, H, W, C], tokens [N, T, D]; linear weights [out, in] (y = x @ W.T), " +
      "conv weights [out, k, k, in]; every array row-major, little-endian",
    tensors: net.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      weight: `weight/${p.name}`,
      mask: p.masked ? `mask/${p.name}` : null,
      kept: p.masked ? kept.get(p.name)!.kept : null,
    })),
    masking: "effective weight = weight * mask for every tensor with a mask (mask 1 kept, 0 removed); " +
      "tensors without a mask keep their frozen values",
    ops,
    op_semantics: Object.fromEntries(
      Object.entries(OP_SEMANTICS).filter(([k]) => JSON.stringify(ops).includes(`"op":"${k}"`)),
    ),
    data: {
      test_x: "data/test_x",
      test_y: "data/test_y",
      samples: test.n,
      normalisation: "already applied: data/test_x holds exactly the float32 inputs ticketsweep evaluates",
      dataset: cfg.dataset,
    },
    ...(bn
      ? {
        batch_norm_calibration: {
          samples: "data/calibration_x",
          count: calN,
          chunk: 500,
          procedure: "the first min(2048, N) training samples (after the validation split), in order, forwarded " +
            "in chunks of `chunk`; in that pass each batch_norm normalises its input with the chunk's own " +
            "per-channel mean and biased variance and accumulates per-channel sum and sum of squares (over " +
            "samples and pixels); its evaluation statistics are mean = sum / count, var = sumsq / count - mean^2 " +
            "(clamped at 0). Then evaluate with those statistics.",
        },
      }
      : {}),
    recorded: {
      accuracy: point ? point.accuracy : manifest.result.accuracy,
      val_accuracy: point ? point.val_accuracy : manifest.result.val_accuracy ?? null,
      sparsity: point ? point.sparsity : manifest.result.sparsity,
      backend: manifest.result.backend,
      cut: point ? { index: cut, value: point.cut, rule: manifest.cuts!.rule } : null,
      prediction: "argmax of the logits (the first maximum); accuracy = correct / samples",
      tolerance: PORTABLE_TOLERANCE,
      tolerance_why: "float32 sums in another order (another BLAS) can flip a sample whose top two logits are " +
        "within about 1e-6; 1e-4 allows one such sample in 10,000",
    },
    source: {
      sweep_id: manifest.sweep_id,
      trial_id: manifest.trial_id,
      content_sha256: manifest.content_sha256,
      mask_sha256: manifest.mask.sha256,
      config: cfg,
    },
  };
  await Deno.mkdir(out, { recursive: true });
  const arraysPath = `${out}/${portableArrays(format)}`, manifestPath = `${out}/${PORTABLE_MANIFEST}`;
  const text = JSON.stringify(doc, null, 2) + "\n";
  const bytes = format === "npz" ? npzBytes(arrays) : safetensorsBytes(arrays, { ticketsweep_manifest: text });
  await Deno.writeFile(arraysPath, bytes);
  await Deno.writeTextFile(manifestPath, text);
  return { manifest: manifestPath, arrays: arraysPath, bytes: bytes.length };
}
