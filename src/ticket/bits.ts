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
