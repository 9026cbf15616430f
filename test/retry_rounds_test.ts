// retries.json, as a hostile or careless edit leaves it: refused with one line, never a coordinator that hangs.
import assert from "node:assert/strict";
import { readRetryRounds } from "../src/coordinator/record.ts";

Deno.test("retries.json - a round beyond the bound (1e300, 2^53) is refused, not checked claim by claim for ever", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const n of ["1e300", "9007199254740993", "10001"]) {
      await Deno.writeTextFile(`${dir}/retries.json`, `{"a76bf72c0b3e": ${n}}`);
      await assert.rejects(
        () => readRetryRounds(dir),
        /retries\.json: expected \{"<trial id>": round, \.\.\.\} with rounds from 1 to 10,000; restore it/,
        n,
      );
    }
    await Deno.writeTextFile(`${dir}/retries.json`, `{"a76bf72c0b3e": 10000, "c671819c395f": 2}`);
    assert.deepEqual([...await readRetryRounds(dir)], [["a76bf72c0b3e", 10000], ["c671819c395f", 2]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
