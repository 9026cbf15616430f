// `sweep` arguments the broker cannot take: one line, never the KV or JetStream client's stack trace.
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

Deno.test("sweep - --ack-wait 0 or 10^11 s (nanoseconds past int64 on the broker) is refused with one line", async () => {
  for (const v of ["0", "99999999999"]) {
    await assert.rejects(
      () => sweepMain(["no-such-spec.yaml", "--ack-wait", v]),
      new RegExp(`--ack-wait must be from 1 to 86400 seconds: current value is ${v}`),
    );
  }
});
