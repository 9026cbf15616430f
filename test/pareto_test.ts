import assert from "node:assert/strict";
import { nonDominated, type Point2 } from "../src/pareto/front.ts";
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
  }
});

Deno.test("pareto - duplicates of a front point are all on the front; a tie in one objective is dominated", () => {
  assert.deepEqual(
    nonDominated([{ x: 1, y: 1 }, { x: 1, y: 1 }, { x: 0.5, y: 1 }, { x: 1, y: 0.5 }, { x: 0, y: 2 }]),
    [true, true, false, false, true],
  );
  assert.deepEqual(nonDominated([]), []);
});
