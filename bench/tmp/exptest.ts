import { expExact, sigmoidExact } from "../../src/train/masks/math.ts";
let maxRel = 0;
for (let i = 0; i < 2_000_000; i++) {
  const x = (Math.random() - 0.5) * 1400;
  const a = expExact(x), b = Math.exp(x);
  if (b > 1e-300 && b < 1e300) maxRel = Math.max(maxRel, Math.abs(a - b) / b);
}
console.log("max rel err", maxRel, expExact(0), expExact(1), Math.E, expExact(710), expExact(-800), expExact(NaN), sigmoidExact(0));
const xs = new Float64Array(2_000_000).map(() => (Math.random() - 0.5) * 40);
let t = performance.now(), s = 0;
for (const x of xs) s += Math.exp(x);
const t1 = performance.now() - t; t = performance.now();
for (const x of xs) s += expExact(x);
console.log("Math.exp", (t1 / 2e6 * 1e6).toFixed(2), "ns; expExact", ((performance.now() - t) / 2e6 * 1e6).toFixed(2), "ns", s > 0);
