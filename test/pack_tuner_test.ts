import assert from "node:assert/strict";
import { PackTuner } from "../src/worker/pack_tuner.ts";

const GB = 2 ** 30;
const sample = (k: number, rate: number) => ({ k, steps: rate * 10, trainS: 10, weights: 266_200 });
/** A tuner past its warm-up pack. */
function warmed(t: PackTuner): PackTuner {
  assert.equal(t.record(sample(1, 1)), null, "the warm-up pack is not compared");
  return t;
}

Deno.test("pack tuner - doubles K while throughput improves, then keeps the best", () => {
  const t = warmed(new PackTuner(16, () => 16 * GB));
  assert.equal(t.k, 1);
  assert.match(t.record(sample(1, 300))!, /trying 2/);
  assert.equal(t.k, 2);
  assert.match(t.record(sample(2, 600))!, /2\.00× .* trying 4/);
  assert.match(t.record(sample(4, 610))!, /staying at 2/); // 2% better is not enough
  assert.equal(t.k, 2);
  assert.equal(t.record(sample(2, 100)), null, "settled");
  assert.equal(t.k, 2);
});

Deno.test("pack tuner - a slower K = 2 (CPU caches) goes back to 1", () => {
  const t = warmed(new PackTuner());
  t.record(sample(1, 300));
  assert.match(t.record(sample(2, 280))!, /0\.93× .* staying at 1/);
  assert.equal(t.k, 1);
});

Deno.test("pack tuner - K stays within --pack and half the free memory", () => {
  const t = warmed(new PackTuner(4, () => 16 * GB));
  t.record(sample(1, 100));
  t.record(sample(2, 200));
  assert.match(t.record(sample(4, 400))!, /bound stops there/);
  assert.equal(t.k, 4);
  // 100 MB free: half of it holds 5 trials of 266,200 weights at 32 bytes each
  const small = warmed(new PackTuner(16, () => 100e6));
  small.record(sample(1, 100));
  assert.ok(small.k <= 5);
});
