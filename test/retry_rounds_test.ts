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

Deno.test("retries.json - deleted, its rounds come back from the superseded lines of results.rejected.jsonl", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const aside = (id: string, round: number) =>
      JSON.stringify({
        v: 1,
        file: "results.jsonl",
        line: 1,
        reason: `superseded: retried with --retry-failed (round ${round})`,
        raw: JSON.stringify({ v: 1, trial_id: id, status: "failed" }),
        set_aside_at: "2026-12-01T00:00:00.000Z",
      }) + "\n";
    await Deno.writeTextFile(
      `${dir}/results.rejected.jsonl`,
      aside("a76bf72c0b3e", 1) + aside("a76bf72c0b3e", 2) + aside("c671819c395f", 1) + '{"v":1,"file":"res',
    );
    // no retries.json: round 1 again would reuse round 1's claims, and its failed results on the broker answer it
    assert.deepEqual([...await readRetryRounds(dir)], [["a76bf72c0b3e", 2], ["c671819c395f", 1]]);
    await Deno.writeTextFile(`${dir}/retries.json`, `{"a76bf72c0b3e": 3}`);
    assert.deepEqual([...await readRetryRounds(dir)], [["a76bf72c0b3e", 3], ["c671819c395f", 1]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
