import { logExact } from "../../src/train/masks/math.ts";
let maxRel = 0, maxAbs = 0;
for (let i = 0; i < 2_000_000; i++) {
  const x = Math.exp((Math.random() - 0.5) * 60);
  const a = logExact(x), b = Math.log(x);
  maxAbs = Math.max(maxAbs, Math.abs(a - b));
  if (Math.abs(b) > 1e-3) maxRel = Math.max(maxRel, Math.abs(a - b) / Math.abs(b));
}
console.log("max rel", maxRel, "max abs", maxAbs, logExact(1), logExact(2), logExact(0.5), logExact(1e-6 / (1 - 1e-6)));
