// The README's CLI reference is each command's own --help text, word for word.
import assert from "node:assert/strict";
import { BROKER_CONFIG_USAGE } from "../src/cli/broker_config.ts";
import { REPORT_USAGE } from "../src/cli/report.ts";
import { STATUS_USAGE } from "../src/cli/status.ts";
import { SWEEP_USAGE } from "../src/cli/sweep.ts";
import { TICKET_USAGE } from "../src/cli/ticket.ts";
import { WORKER_USAGE } from "../src/cli/worker.ts";
import { ROOT } from "./_fixtures.ts";

Deno.test("readme - every CLI reference block is the command's --help", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const usages: Record<string, string> = {
    sweep: SWEEP_USAGE,
    worker: WORKER_USAGE,
    status: STATUS_USAGE,
    "broker-config": BROKER_CONFIG_USAGE,
    report: REPORT_USAGE,
    ticket: TICKET_USAGE,
  };
  // the core count in `--workers` differs between machines
  const normal = (s: string) => s.replace(/one per core, \d+ here/, "one per core, N here").trimEnd();
  for (const [name, usage] of Object.entries(usages)) {
    const m = readme.match(new RegExp("### `deno task " + name + "`\\n\\n```\\n([\\s\\S]*?)\\n```"));
    assert.ok(m, `README has no CLI block for deno task ${name}`);
    assert.equal(normal(m[1]!), normal(usage), `README block of deno task ${name} differs from its --help`);
  }
});
