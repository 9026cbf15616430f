// `sweep cancel` with an argument that cannot be a sweep: one line, never the KV client's stack trace.
import assert from "node:assert/strict";
import { sweepMain } from "../src/cli/sweep.ts";

Deno.test("cancel - an empty, wildcard or spaced name is refused before any broker is asked", async () => {
  for (const arg of ["", "*", ">", "a b", "runs/*", "a.b"]) {
    await assert.rejects(
      () => sweepMain(["cancel", arg, "--nats", "nats://127.0.0.1:1"]),
      /cancel: '.*' is not a sweep name, id or run directory \(their names are letters, digits, - and _\)/,
      arg,
    );
  }
});
