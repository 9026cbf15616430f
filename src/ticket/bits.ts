import { encodeBase64 } from "../util/base64.ts";
import { sha256Hex } from "../util/hash.ts";

/** Packs 0/1 masks (layer after layer) into bits, least significant bit first. */
export function packMasks(masks: Uint8Array[]): Uint8Array {
  const total = masks.reduce((s, m) => s + m.length, 0);
  const out = new Uint8Array(Math.ceil(total / 8));
  let bit = 0;
  for (const m of masks) {
    for (let i = 0; i < m.length; i++, bit++) if (m[i]) out[bit >> 3]! |= 1 << (bit & 7);
  }
  return out;
}

/** Unpacks bits into 0/1 masks of the given sizes. */
export function unpackMasks(bits: Uint8Array, sizes: number[]): Uint8Array[] {
  let bit = 0;
  return sizes.map((n) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++, bit++) m[i] = (bits[bit >> 3]! >> (bit & 7)) & 1;
    return m;
  });
}

/** A binary ticket as it travels and is stored: packed bits (base64) and their SHA-256. */
export interface PackedTicket {
  bits_b64: string;
  sha256: string;
  masked_weights: number;
}

export function encodeTicket(masks: Uint8Array[]): PackedTicket {
  const bits = packMasks(masks);
  return {
    bits_b64: encodeBase64(bits),
    sha256: sha256Hex(bits),
    masked_weights: masks.reduce((s, m) => s + m.length, 0),
  };
}

/** Packs levels (each < 2^bits, bits 1-8) `bits` per value, least significant bit first. */
export function packLevels(levels: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((levels.length * bits) / 8));
  let bit = 0;
  for (let i = 0; i < levels.length; i++) {
    const v = levels[i]!;
    for (let b = 0; b < bits; b++, bit++) if ((v >> b) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  }
  return out;
}

/** Unpacks `n` levels of `bits` bits each. */
export function unpackLevels(bytes: Uint8Array, n: number, bits: number): Uint8Array {
  const out = new Uint8Array(n);
  let bit = 0;
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let b = 0; b < bits; b++, bit++) v |= ((bytes[bit >> 3]! >> (bit & 7)) & 1) << b;
    out[i] = v;
  }
  return out;
}

/** The masks of cut `j` (1-based) of a ladder: the weights of level >= j, split into layers of the given sizes. */
export function cutMasks(levels: Uint8Array, j: number, sizes: number[]): Uint8Array[] {
  let o = 0;
  return sizes.map((n) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++) m[i] = levels[o + i]! >= j ? 1 : 0;
    o += n;
    return m;
  });
}
