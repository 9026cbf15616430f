import type { ResultMessage } from "../broker/messages.ts";
import type { ParamSet } from "../spec/expand.ts";
import { TrialConfigSchema } from "../spec/schema.ts";
import { canonicalJson, sha256Hex } from "../util/hash.ts";
import { TicketsweepError } from "../util/errors.ts";
import { z } from "zod";

/**
 * The on-disk ticket, format version 2: a folder holding
 * - `mask.bin`: the binary mask, one bit per masked weight, least significant bit first, layers in the order
 *   of `layers`, each row-major (output unit first);
 * - `ticket.json`: this manifest: the trial's full configuration (everything needed to rebuild the frozen
 *   network and its data: architecture, initialiser, weight seed, dataset and split), the masked layers,
 *   the SHA-256 of `mask.bin`, the recorded result, and `content_sha256`, the SHA-256 of the canonical JSON
 *   of every other field, so that an edited seed, config or mask hash is detected.
 */
export const TICKET_FORMAT = "ticketsweep-ticket";
export const TICKET_VERSION = 3;
export const MASK_FILE = "mask.bin";
/** The ticket ladder's per-weight levels (version 3): cut `j` (1-based) keeps the weights of level >= j. */
export const CUTS_FILE = "cuts.bin" as const;
export const MANIFEST_FILE = "ticket.json";

export const TicketManifestSchema = z.object({
  format: z.literal(TICKET_FORMAT),
  /** 2: one ticket; 3: adds `result.val_accuracy` and the ticket ladder `cuts` (written since). */
  version: z.union([z.literal(2), z.literal(TICKET_VERSION)]),
  sweep_id: z.string(),
  trial_id: z.string(),
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  seed: z.number().int(),
  config: TrialConfigSchema,
  layers: z.array(z.object({ name: z.string(), shape: z.array(z.number().int()), kept: z.number().int() })),
  mask: z.object({
    file: z.literal(MASK_FILE),
    encoding: z.string(),
    sha256: z.string().length(64),
    masked_weights: z.number().int(),
  }),
  result: z.object({
    accuracy: z.number(),
    /** Validation accuracy (null: no validation split; absent in tickets written before it existed). */
    val_accuracy: z.number().nullable().optional(),
    soft_accuracy: z.number().nullable(),
    sparsity: z.number(),
    backend: z.string(),
    device: z.string(),
  }),
  /**
   * The ticket ladder: `cuts.bin` holds each masked weight's level packed `bits` per weight (least significant
   * bit first, layers in order); cut `j` (1-based, `points[j - 1]`) keeps exactly the weights of level >= j.
   */
  cuts: z.object({
    file: z.literal(CUTS_FILE),
    rule: z.enum(["test_gate", "s", "keep_fraction"]),
    bits: z.number().int().min(1).max(8),
    sha256: z.string().length(64),
    points: z.array(z.object({
      cut: z.number(),
      sparsity: z.number(),
      kept: z.array(z.number().int()),
      accuracy: z.number(),
      val_accuracy: z.number().nullable(),
      sha256: z.string().length(64),
    })),
  }).optional(),
  content_sha256: z.string().length(64),
});
export type TicketManifest = z.infer<typeof TicketManifestSchema>;

/** The hash that seals a manifest: SHA-256 of the canonical JSON of every field but itself. */
export function contentHash(m: Omit<TicketManifest, "content_sha256"> | TicketManifest): string {
  const { content_sha256: _, ...rest } = m as TicketManifest;
  return sha256Hex(canonicalJson(rest));
}

/** The manifest of a finished trial's ticket. */
export function ticketManifest(
  r: ResultMessage,
  trial: { params: ParamSet; seed: number; config: unknown },
): TicketManifest {
  const m = r.metrics!;
  if (!m.ticket) throw new TicketsweepError(`trial ${r.trial_id} has no ticket`);
  const body = {
    format: TICKET_FORMAT,
    version: TICKET_VERSION,
    sweep_id: r.sweep_id,
    trial_id: r.trial_id,
    params: trial.params,
    seed: trial.seed,
    config: TrialConfigSchema.parse(trial.config),
    layers: m.layers.map((l) => ({ name: l.layer, shape: l.shape, kept: l.kept })),
    mask: {
      file: MASK_FILE,
      encoding: "bits, least significant first, layers in order, each row-major",
      sha256: m.ticket.sha256,
      masked_weights: m.ticket.masked_weights,
    },
    result: {
      accuracy: m.accuracy,
      ...(m.val_accuracy !== undefined ? { val_accuracy: m.val_accuracy } : {}),
      soft_accuracy: m.soft_accuracy,
      sparsity: m.sparsity,
      backend: m.backend,
      device: m.device,
    },
    ...(m.cuts
      ? {
        cuts: {
          file: CUTS_FILE as typeof CUTS_FILE,
          rule: m.cuts.rule,
          bits: m.cuts.levels.bits,
          sha256: m.cuts.levels.sha256,
          points: m.cuts.points,
        },
      }
      : {}),
  } as const;
  return { ...body, content_sha256: contentHash(body) };
}

/** Writes a ticket folder: the mask bits (and the ladder's levels), then the manifest. */
export async function writeTicket(
  dir: string,
  manifest: TicketManifest,
  bits: Uint8Array,
  levels?: Uint8Array,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/${MASK_FILE}`, bits);
  if (levels) await Deno.writeFile(`${dir}/${CUTS_FILE}`, levels);
  await Deno.writeTextFile(`${dir}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 2) + "\n");
}

/** Reads a ticket folder, validating the manifest's shape (not yet its hashes: see `verifyTicket`). */
export async function readTicket(dir: string): Promise<{ manifest: TicketManifest; bits: Uint8Array }> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch {
    throw new TicketsweepError(
      `${dir}: no ${MANIFEST_FILE}; expected a ticket folder like runs/<sweep>/tickets/<trial>`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TicketsweepError(`${dir}/${MANIFEST_FILE}: not JSON (${(e as Error).message})`);
  }
  const parsed = TicketManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new TicketsweepError(`${dir}/${MANIFEST_FILE}: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  let bits: Uint8Array;
  try {
    bits = await Deno.readFile(`${dir}/${MASK_FILE}`);
  } catch {
    throw new TicketsweepError(`${dir}: no ${MASK_FILE} next to ${MANIFEST_FILE}`);
  }
  return { manifest: parsed.data, bits };
}
