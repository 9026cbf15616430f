import { ResultLog } from "../coordinator/record.ts";
import { readManifest, writeReports } from "../coordinator/run_dir.ts";
import { frontTables } from "../report/markdown.ts";
import { TicketsweepError } from "../util/errors.ts";
import { parseCli } from "./common.ts";

export const REPORT_USAGE = `Usage: deno task report runs/A [runs/B ...] [--out DIR]

Rebuilds pareto.json and report.md of each run directory from its results.jsonl and prints the fronts.
With --out, also writes DIR/comparison.md with the fronts of all the given sweeps side by side.

Options:
  --out DIR     where the comparison goes
  -h, --help    this text`;

/** `deno task report`. */
export async function reportMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, REPORT_USAGE);
  if (positionals.length === 0) throw new TicketsweepError(`give at least one run directory\n\n${REPORT_USAGE}`);
  const sections: string[] = [];
  for (const dir of positionals.map((p) => p.replace(/\/+$/, ""))) {
    let manifest;
    try {
      manifest = await readManifest(dir);
    } catch (e) {
      throw new TicketsweepError(
        `${dir} is not a sweep run directory (no readable sweep.json: ${(e as Error).message})`,
      );
    }
    const log = await ResultLog.open(dir);
    const data = await writeReports(dir, manifest, log.all());
    const text = `## ${data.name} (${data.sweep_id})\n\n${data.counts.done} done, ${data.counts.failed} failed, ` +
      `${data.counts.pending} pending.\n\n${frontTables(data)}\n`;
    sections.push(text);
    console.log(text);
    console.log(`wrote ${dir}/pareto.json and ${dir}/report.md\n`);
  }
  if (typeof values.out === "string") {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(`${values.out}/comparison.md`, `# Sweep comparison\n\n${sections.join("\n")}`);
    console.log(`wrote ${values.out}/comparison.md`);
  }
  return 0;
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => reportMain(Deno.args));
}
