import { Rng } from "../util/rng.ts";

export type InitKind = "uniform" | "kaiming_normal" | "signed_constant";

/**
 * Seeded frozen weights for one layer (fan_in = `fanIn`):
 * - `uniform`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the gates thesis, inferred alpha);
 * - `kaiming_normal`: N(0, 2/fan_in);
 * - `signed_constant`: ±sqrt(2/fan_in) with a fair random sign (edge-popup).
 */
export function initWeights(kind: InitKind, fanIn: number, count: number, rng: Rng): Float32Array {
  const w = new Float32Array(count);
  if (kind === "uniform") {
    const a = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < count; i++) w[i] = (2 * rng.uniform() - 1) * a;
  } else if (kind === "kaiming_normal") {
    rng.fillNormal(w);
    const s = Math.sqrt(2 / fanIn);
    for (let i = 0; i < count; i++) w[i]! *= s;
  } else {
    const c = Math.sqrt(2 / fanIn);
    for (let i = 0; i < count; i++) w[i] = rng.uniform() < 0.5 ? -c : c;
  }
  return w;
}
