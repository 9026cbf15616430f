// Worker entrypoint: one process per device. `deno task worker --help` for options.
import { runMain } from "../src/cli/common.ts";
import { workerMain } from "../src/cli/worker.ts";

if (import.meta.main) await runMain(() => workerMain(Deno.args));
