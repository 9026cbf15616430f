import type { Engine } from "../engine/engine.ts";
import { loadDataset } from "../train/data/load.ts";
import { buildNet } from "../train/nets/build.ts";
import { ticketAccuracies } from "../train/trial.ts";
import { sha256Hex } from "../util/hash.ts";
import { cutMasks, packMasks, unpackLevels, unpackMasks } from "./bits.ts";
import { contentHash, MANIFEST_FILE, readTicket, type TicketManifest } from "./format.ts";

/** One check of a verification. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** What `ticket verify` found. */
export interface Verification {
  ok: boolean;
  checks: Check[];
  manifest?: TicketManifest;
  /** The re-evaluated test accuracy, when the network could be rebuilt. */
  accuracy?: number;
}

/** Tolerance on the accuracy when re-evaluating on a different backend than the one recorded. */
export const CROSS_BACKEND_TOLERANCE = 1e-6;

/**
 * Verifies a ticket folder: the manifest's content hash, the mask's hash and size, then rebuilds the frozen
 * network from the recorded config and seed, applies the stored mask and re-evaluates the test accuracy:
 * equal to the recorded one on the same backend, within {@link CROSS_BACKEND_TOLERANCE} on another.
 * Stops before rebuilding when a hash does not match (the content cannot be trusted).
 */
export async function verifyTicket(
  dir: string,
  engine: Engine,
  opts: { cut?: number } = {},
): Promise<Verification> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const { manifest, bits } = await readTicket(dir);
  const sealed = contentHash(manifest);
  add(
    "manifest hash",
    sealed === manifest.content_sha256,
    sealed === manifest.content_sha256
      ? `content_sha256 ${sealed.slice(0, 16)}… matches`
      : `ticket.json was modified: content hash ${sealed.slice(0, 16)}… ≠ recorded ${
        manifest.content_sha256.slice(0, 16)
      }…`,
  );
  const maskHash = sha256Hex(bits);
  add(
    "mask hash",
    maskHash === manifest.mask.sha256,
    maskHash === manifest.mask.sha256
      ? `mask.bin sha256 ${maskHash.slice(0, 16)}… matches`
      : `mask.bin was modified: sha256 ${maskHash.slice(0, 16)}… ≠ recorded ${manifest.mask.sha256.slice(0, 16)}…`,
  );
  if (checks.some((c) => !c.ok)) return { ok: false, checks, manifest };

  const cfg = manifest.config;
  const { train, test, validation } = await loadDataset(cfg.dataset);
  const net = buildNet(cfg.model, train.shape, train.classes, engine);
  const layersMatch = net.maskedParams.length === manifest.layers.length &&
    net.maskedParams.every((l, i) =>
      l.name === manifest.layers[i]!.name && l.shape.join("x") === manifest.layers[i]!.shape.join("x")
    );
  add(
    "network",
    layersMatch,
    layersMatch
      ? `${cfg.model.architecture} rebuilt from weight_seed ${cfg.model.weight_seed}: ${net.maskedParams.length} masked layers`
      : `the rebuilt network's masked layers (${
        net.maskedParams.map((l) => l.name).join(", ")
      }) differ from the ticket's`,
  );
  const sizes = net.maskedParams.map((l) => l.w.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  const sizeOk = total === manifest.mask.masked_weights && bits.length === Math.ceil(total / 8);
  add("mask size", sizeOk, `${total} masked weights, ${bits.length} bytes`);
  if (!layersMatch || !sizeOk) return { ok: false, checks, manifest };

  const masks = unpackMasks(bits, sizes);
  const keptOk = masks.every((m, i) => m.reduce((s, v) => s + v, 0) === manifest.layers[i]!.kept);
  add("kept per layer", keptOk, keptOk ? "every layer keeps the recorded count" : "kept counts differ from the record");
  const got = ticketAccuracies(net, masks, train, test, validation);
  const accuracy = got.accuracy;
  const same = engine.name === manifest.result.backend;
  const close = (a: number, b: number) => same ? a === b : Math.abs(a - b) <= CROSS_BACKEND_TOLERANCE;
  const how = same ? "(same backend: must be equal)" : `(other backend: within ${CROSS_BACKEND_TOLERANCE})`;
  const recorded = manifest.result.accuracy;
  add(
    "accuracy",
    close(accuracy, recorded),
    `re-evaluated test accuracy ${accuracy} on ${engine.name}, recorded ${recorded} on ${manifest.result.backend} ${how}`,
  );
  const recVal = manifest.result.val_accuracy;
  if (recVal !== undefined) {
    const ok = recVal === null
      ? got.val_accuracy === null
      : got.val_accuracy !== null && close(got.val_accuracy, recVal);
    add(
      "validation accuracy",
      ok,
      `re-evaluated validation accuracy ${got.val_accuracy}, recorded ${recVal} ${how}`,
    );
  }
  const ladder = manifest.cuts;
  if (opts.cut !== undefined && (!ladder || opts.cut < 1 || opts.cut > ladder.points.length)) {
    add("cut", false, `no cut ${opts.cut}: the ticket has ${ladder?.points.length ?? 0} cuts (1 to N)`);
  } else if (ladder) {
    let levelsBytes: Uint8Array | null = null;
    try {
      levelsBytes = await Deno.readFile(`${dir}/${ladder.file}`);
    } catch {
      add("cuts hash", false, `no ${ladder.file} next to ${MANIFEST_FILE}`);
    }
    if (levelsBytes) {
      const h = sha256Hex(levelsBytes);
      const hashOk = h === ladder.sha256 && levelsBytes.length === Math.ceil((total * ladder.bits) / 8);
      add(
        "cuts hash",
        hashOk,
        hashOk
          ? `${ladder.file} sha256 ${h.slice(0, 16)}… matches`
          : `${ladder.file} was modified (sha256 ${h.slice(0, 16)}…, recorded ${ladder.sha256.slice(0, 16)}…)`,
      );
      if (hashOk) {
        const levels = unpackLevels(levelsBytes, total, ladder.bits);
        const which = opts.cut !== undefined ? [opts.cut] : ladder.points.map((_, i) => i + 1);
        for (const j of which) {
          const p = ladder.points[j - 1]!;
          const cm = cutMasks(levels, j, sizes);
          const maskOk = sha256Hex(packMasks(cm)) === p.sha256 &&
            cm.every((m, i) => m.reduce((s, v) => s + v, 0) === p.kept[i]);
          const a = maskOk ? ticketAccuracies(net, cm, train, test, validation) : null;
          const ok = a !== null && close(a.accuracy, p.accuracy) &&
            (p.val_accuracy === null
              ? a.val_accuracy === null
              : a.val_accuracy !== null && close(a.val_accuracy, p.val_accuracy));
          add(
            `cut ${j}`,
            ok,
            `${ladder.rule} ${p.cut}: ` +
              (!maskOk
                ? "the rebuilt mask differs from the recorded one (hash or kept counts)"
                : `sparsity ${p.sparsity.toFixed(4)}, re-evaluated test ${a!.accuracy} (recorded ${p.accuracy}), ` +
                  `validation ${a!.val_accuracy} (recorded ${p.val_accuracy})`),
          );
        }
      }
    }
  }
  return { ok: checks.every((c) => c.ok), checks, manifest, accuracy };
}
