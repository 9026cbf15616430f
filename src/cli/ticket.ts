import { selectEngine } from "../engine/select.ts";
import { type Backend, BACKENDS } from "../spec/schema.ts";
import { EXPORT_FORMATS, type ExportFormat, exportPortable, exportTicket } from "../ticket/export.ts";
import { readTicket } from "../ticket/format.ts";
import { verifyTicket } from "../ticket/verify.ts";
import { TicketsweepError } from "../util/errors.ts";
import { printable } from "../util/clip.ts";
import { parseCli } from "./common.ts";

export const TICKET_USAGE = `Usage:
  deno task ticket verify runs/<sweep>/tickets/<trial> [--cut J] [--backend NAME]
  deno task ticket export runs/<sweep>/tickets/<trial> [--cut J] --out DIR [--format npz|safetensors|u8]

verify  checks ticket.json's content hash and mask.bin's hash, rebuilds the frozen network from the
        recorded config and seed, applies the mask and re-evaluates the test (and validation) accuracy: it
        must equal the recorded accuracy on the same backend (within 1e-6 on another). Then every cut of
        the ticket ladder (cuts.bin): its mask rebuilt from the levels must have the recorded hash and
        kept counts, and its re-evaluated accuracies the recorded ones. Exit 0 when all checks pass, 2 if not.
export  writes the ticket so that it loads without ticketsweep. npz (default) and safetensors:
        DIR/ticket.npz or DIR/ticket.safetensors with every frozen weight tensor (weight/<name>, float32),
        the binary mask of every masked one (mask/<name>, uint8 0/1, same shape), the normalised test
        data the accuracy was measured on (data/test_x, data/test_y) and, with batch norm, the training
        samples its statistics are recalibrated on (data/calibration_x); and DIR/manifest.json: layouts,
        the forward pass as ordered ops, the recorded accuracy. \`python3 tools/ticket_forward.py DIR\`
        rebuilds the masked network in NumPy and checks that accuracy. u8: DIR/ticket.manifest.json and
        DIR/mask.u8 (one byte per masked weight) only.

Options:
  --cut J         the J-th cut of the ladder only (1 = least sparse); export writes that cut's mask
  --backend NAME  engine for verify: ${BACKENDS.join(", ")} (default: the one recorded, else auto)
  --out DIR       export destination
  --format F      export format: ${EXPORT_FORMATS.join(", ")} (default: npz)
  -h, --help      this text`;

/** `deno task ticket`. */
export async function ticketMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(args, {
    backend: { type: "string" },
    out: { type: "string" },
    cut: { type: "string" },
    format: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, TICKET_USAGE);
  const [command, dir] = positionals;
  if (!command || !dir) throw new TicketsweepError(`give a command and a ticket folder\n\n${TICKET_USAGE}`);
  const cut = typeof values.cut === "string" && /^[0-9]{1,9}$/.test(values.cut) ? Number(values.cut) : undefined;
  if (values.cut !== undefined && !(cut !== undefined && cut >= 1)) {
    // decimal digits only: Number() would also take 0x2, 1e1 and ''
    throw new TicketsweepError(`--cut ${printable(String(values.cut), 40)}: expected a cut number, 1 to N`);
  }
  if (command === "export") {
    if (typeof values.out !== "string") throw new TicketsweepError(`export needs --out DIR\n\n${TICKET_USAGE}`);
    const format = (values.format ?? "npz") as ExportFormat;
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
      throw new TicketsweepError(`--format ${format}: expected one of ${EXPORT_FORMATS.join(", ")}`);
    }
    if (format === "u8") {
      const out = await exportTicket(dir, values.out, cut);
      console.log(`wrote ${out.manifest} and ${out.mask}`);
    } else {
      const out = await exportPortable(dir, values.out, format, cut);
      console.log(`wrote ${out.arrays} (${(out.bytes / 1048576).toFixed(1)} MiB) and ${out.manifest}`);
      console.log(`check it with: python3 tools/ticket_forward.py ${values.out}`);
    }
    return 0;
  }
  if (command !== "verify") throw new TicketsweepError(`unknown command '${command}'\n\n${TICKET_USAGE}`);
  let backend = values.backend as string | undefined;
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) {
    throw new TicketsweepError(`--backend ${backend}: expected one of ${BACKENDS.join(", ")}`);
  }
  if (backend === undefined) {
    const recorded = (await readTicket(dir)).manifest.result.backend;
    backend = (BACKENDS as readonly string[]).includes(recorded) ? recorded : "auto";
  }
  const { engine } = await selectEngine(backend as Backend).catch(() => selectEngine("auto"));
  try {
    const v = await verifyTicket(dir, engine, { cut });
    for (const c of v.checks) console.log(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
    console.log(v.ok ? "ticket verified" : "ticket NOT verified");
    return v.ok ? 0 : 2;
  } finally {
    engine.close();
  }
}

if (import.meta.main) {
  const { runMain } = await import("./common.ts");
  await runMain(() => ticketMain(Deno.args));
}
