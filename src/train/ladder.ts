import type { TicketsConfig } from "../spec/schema.ts";
import { cutMasks, packLevels, packMasks } from "../ticket/bits.ts";
import { encodeBase64 } from "../util/base64.ts";
import { sha256Hex } from "../util/hash.ts";
import type { CutRule } from "./masks/method.ts";

/** Cut points of `tickets: { cuts: auto }`. */
export const AUTO_CUTS = 16;
/** The sparsest automatic cut keeps this fraction of what the trial's own ticket keeps. */
export const AUTO_MIN_KEPT_RATIO = 0.01;
/** Most bytes of packed levels a trial sends (they travel in its result message); fewer cuts beyond. */
export const LEVELS_BUDGET_BYTES = 256 * 1024;

/** Rounds to 6 significant digits (cut values in specs, ids and reports). */
const roundSig = (x: number) => Number(x.toPrecision(6));

/**
 * The cut values of a trial's ladder, sparsest last, every one sparser than the trial's own ticket.
 *
 * `auto` (16) or a count N: N target kept fractions spaced geometrically from the own ticket's kept fraction
 * `q0` down to `q0 / 100`: `q_i = q0 · 0.01^(i/N)`, i = 1..N, so the cuts crowd where fronts are decided (high
 * sparsity). Threshold rules (`test_gate`, `s`) read each target off the distribution of the per-weight values:
 * the cut is the value above which `q_i` of the weights lie (the (1 − q_i) quantile), so the sparsities follow the
 * targets; test gates stop where they saturate (gates at 1 are kept by every threshold below 1), so there the
 * targets run from `q0` down to just above the saturated fraction instead. `keep_fraction` (edge-popup) takes
 * `k' = k · 0.01^(i/N)` directly. A list is taken as given. Cuts not
 * sparser than the own ticket, outside the rule's range (test gates: [0, 1); keep fractions: (0, k]) or repeated
 * are dropped.
 */
export function cutValues(rule: CutRule, sizes: number[], spec: TicketsConfig["cuts"]): number[] {
  const admissible = (c: number) =>
    Number.isFinite(c) &&
    (rule.rule === "keep_fraction"
      ? c > 0 && c < rule.own
      : rule.rule === "test_gate"
      ? c > rule.own && c < 1
      : c > rule.own);
  let cuts: number[];
  if (Array.isArray(spec)) cuts = spec;
  else {
    const n = spec === "auto" ? AUTO_CUTS : spec;
    if (n === 0) return [];
    const targets = Array.from({ length: n }, (_, i) => AUTO_MIN_KEPT_RATIO ** ((i + 1) / n));
    if (rule.rule === "keep_fraction") cuts = targets.map((t) => roundSig(rule.own * t));
    else {
      const total = sizes.reduce((a, b) => a + b, 0);
      const all = new Float32Array(total);
      let o = 0;
      sizes.forEach((_, l) => {
        const v = rule.values!(l);
        all.set(v, o);
        o += v.length;
      });
      all.sort();
      let kept0 = 0, saturated = 0;
      for (let i = 0; i < total; i++) {
        if (all[i]! > rule.own) kept0++;
        if (rule.rule === "test_gate" && all[i]! >= 1) saturated++; // kept by every threshold below 1
      }
      // test gates: spread down to just above the saturated gates, the sparsest a threshold below 1 reaches
      const ratio = Math.max(AUTO_MIN_KEPT_RATIO, Math.min(1, (saturated + 1) / Math.max(1, kept0)));
      cuts = targets.map((_, i) => {
        const keep = Math.max(1, Math.round(kept0 * ratio ** ((i + 1) / n)));
        return all[Math.max(0, total - keep - 1)]!;
      });
    }
  }
  const sorted = [...new Set(cuts.filter(admissible))].sort((a, b) => a - b);
  return rule.rule === "keep_fraction" ? sorted.reverse() : sorted;
}

/** One cut's masks with its value, in ladder order. */
export interface LadderCut {
  cut: number;
  masks: Uint8Array[];
}

/** A ladder as built: its cuts' masks and the per-weight levels that rebuild them. */
export interface BuiltLadder {
  cuts: LadderCut[];
  bits: number;
  levels: Uint8Array;
}

/**
 * Builds a ladder: each cut's masks by the method's own rule, and each weight's level (how many cuts keep it).
 * The masks must nest (each cut keeps a subset of the one before); then cut `j` (1-based) is exactly the weights
 * of level >= j, which is checked. Fewer cuts (evenly picked) when the levels would pass
 * {@link LEVELS_BUDGET_BYTES}; none when not even 1 bit per weight fits.
 */
export function buildLadder(rule: CutRule, sizes: number[], values: number[]): BuiltLadder | null {
  const total = sizes.reduce((a, b) => a + b, 0);
  const maxBits = Math.min(8, Math.floor((LEVELS_BUDGET_BYTES * 8) / Math.max(1, total)));
  if (values.length === 0 || maxBits < 1) return null;
  const most = 2 ** maxBits - 1;
  const chosen = values.length <= most
    ? values
    : Array.from({ length: most }, (_, i) => values[Math.round(((i + 1) * values.length) / most) - 1]!);
  const bits = Math.max(1, Math.ceil(Math.log2(chosen.length + 1)));
  const levels = new Uint8Array(total);
  const cuts = chosen.map((cut) => ({ cut, masks: sizes.map((_, l) => rule.mask(l, cut)) }));
  for (const c of cuts) {
    let o = 0;
    for (const m of c.masks) {
      for (let i = 0; i < m.length; i++) levels[o + i] = levels[o + i]! + m[i]!;
      o += m.length;
    }
  }
  cuts.forEach((c, j) => {
    const rebuilt = cutMasks(levels, j + 1, sizes);
    if (!rebuilt.every((m, l) => m.every((v, i) => v === c.masks[l]![i]))) {
      throw new Error(`ticket ladder: cut ${c.cut} does not nest in the cuts before it`);
    }
  });
  return { cuts, bits, levels };
}

/** The packed levels as a result carries them. */
export function encodeLevels(l: BuiltLadder): { bits: number; b64: string; sha256: string } {
  const bytes = packLevels(l.levels, l.bits);
  return { bits: l.bits, b64: encodeBase64(bytes), sha256: sha256Hex(bytes) };
}

/** The SHA-256 of a cut's masks packed as `mask.bin`. */
export function masksSha256(masks: Uint8Array[]): string {
  return sha256Hex(packMasks(masks));
}
