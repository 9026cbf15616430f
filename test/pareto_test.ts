import assert from "node:assert/strict";
import { nonDominated, nonDominatedOf, type Point2 } from "../src/pareto/front.ts";
import { Rng } from "../src/util/rng.ts";

function bruteForce(ps: Point2[]): boolean[] {
  return ps.map((p) => !ps.some((q) => q.x >= p.x && q.y >= p.y && (q.x > p.x || q.y > p.y)));
}

Deno.test("pareto - matches the O(n²) definition on random sets with ties and duplicates", () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + rng.int(40);
    // coarse coordinates force ties and exact duplicates
    const ps = Array.from({ length: n }, () => ({ x: rng.int(6) / 5, y: rng.int(6) / 5 }));
    assert.deepEqual(nonDominated(ps), bruteForce(ps), JSON.stringify(ps));
    const columns = nonDominatedOf(ps.map((p) => p.x), ps.map((p) => p.y));
    assert.deepEqual([...columns].map((v) => v === 1), bruteForce(ps), JSON.stringify(ps));
  }
});

Deno.test("pareto - duplicates of a front point are all on the front; a tie in one objective is dominated", () => {
  assert.deepEqual(
    nonDominated([{ x: 1, y: 1 }, { x: 1, y: 1 }, { x: 0.5, y: 1 }, { x: 1, y: 0.5 }, { x: 0, y: 2 }]),
    [true, true, false, false, true],
  );
  assert.deepEqual(nonDominated([]), []);
});

/** The area dominated by `ps` above (0, 0), strip by strip between their distinct sparsities: O(n²), by definition. */
function areaByStrips(ps: Point2[]): number {
  const xs = [0, ...new Set(ps.filter((p) => p.x > 0 && p.y > 0).map((p) => p.x))].sort((a, b) => a - b);
  let area = 0;
  for (let i = 1; i < xs.length; i++) {
    area += (xs[i]! - xs[i - 1]!) * Math.max(0, ...ps.filter((p) => p.x >= xs[i]!).map((p) => p.y));
  }
  return area;
}

Deno.test("pareto - hypervolume is the dominated area, pooled and per seed (ties, duplicates, points at the reference)", async () => {
  const { bootstrapHypervolume, bootstrapHypervolumeOf, hypervolume, hypervolumeOf } = await import(
    "../src/pareto/hypervolume.ts"
  );
  const rng = new Rng(11);
  for (let trial = 0; trial < 200; trial++) {
    const n = rng.int(50), seeds = 1 + rng.int(4);
    // coarse and fine coordinates, some outside the reference (x or y 0): ties, duplicates and points left out
    const c = (v: number) => (trial % 2 ? rng.int(6) / 5 : v);
    const ps = Array.from({ length: n }, () => ({ x: c(rng.uniform()), y: c(rng.uniform()), seed: rng.int(seeds) }));
    const xs = ps.map((p) => p.x), ys = ps.map((p) => p.y);
    assert.ok(Math.abs(hypervolumeOf(xs, ys) - areaByStrips(ps)) < 1e-12, JSON.stringify(ps));
    assert.equal(Object.is(hypervolume(ps), hypervolumeOf(xs, ys)), true);
    const got = bootstrapHypervolumeOf(xs, ys, ps.map((p) => p.seed), { resamples: 50, seed: trial });
    assert.deepEqual(bootstrapHypervolume(ps, { resamples: 50, seed: trial }), got);
    const own = [...new Set(ps.map((p) => p.seed))].map((s) => areaByStrips(ps.filter((p) => p.seed === s)));
    assert.equal(got.seeds, own.length);
    if (own.length) assert.ok(Math.abs(got.mean - own.reduce((a, b) => a + b, 0) / own.length) < 1e-12);
  }
});
