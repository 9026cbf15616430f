// `ticket export --format npz|safetensors` and tools/ticket_forward.py: a ticket rebuilt in NumPy alone (Debian's
// python3-numpy, which tools/test_setup.ts installs) reproduces the recorded accuracy; a tampered mask does not.
import assert from "node:assert/strict";
import { ROOT, sweepInProcess } from "./_fixtures.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { exportPortable, PORTABLE_TOLERANCE } from "../src/ticket/export.ts";
import { readTicket } from "../src/ticket/format.ts";
import { unpackMasks } from "../src/ticket/bits.ts";
import { loadDataset } from "../src/train/data/load.ts";
import { buildNet } from "../src/train/nets/build.ts";

const SCRIPT = `${ROOT}tools/ticket_forward.py`;

function specText(name: string, model: string, data: string, epochs: number, cuts: number): string {
  return `version: 1
name: ${name}
dataset: {name: synthetic, ${data}}
model: ${model}
parameters:
  lambda: {values: [3.0e-3]}
training: {epochs: ${epochs}, batch_size: 64, lr: 0.05}
tickets: {cuts: ${cuts}}
`;
}

/** The one ticket of a one-trial sweep. */
async function oneTicket(dir: string, text: string): Promise<string> {
  const run = await sweepInProcess(text, dir);
  const tickets = [...Deno.readDirSync(`${run}/tickets`)].map((e) => `${run}/tickets/${e.name}`);
  assert.equal(tickets.length, 1);
  return tickets[0]!;
}

/** Runs the NumPy script; its exit code, output and the accuracy it printed. */
async function forward(out: string, ...extra: string[]) {
  let res: Deno.CommandOutput;
  try {
    res = await new Deno.Command("python3", { args: [SCRIPT, out, ...extra], stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new Error(`python3 is needed (with numpy: apt-get install python3-numpy): ${(e as Error).message}`);
  }
  const text = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
  const m = text.match(/^accuracy (\S+) on (\d+) test samples .*; recorded (\S+) on/m);
  return { code: res.code, text, accuracy: m ? Number(m[1]) : NaN, recorded: m ? Number(m[3]) : NaN };
}

/** ticketsweep's own test logits for a ticket (js engine, calibrated as trials evaluate). */
async function ticketsweepLogits(ticket: string): Promise<{ logits: Float32Array; classes: number }> {
  const { manifest, bits } = await readTicket(ticket);
  const { train, test } = await loadDataset(manifest.config.dataset);
  const net = buildNet(manifest.config.model, train.shape, train.classes, createJsEngine());
  const masks = unpackMasks(bits, net.maskedParams.map((l) => l.w.length));
  net.useEffectiveWeights(net.maskedParams.map((l, i) => l.w.map((v, j) => v * masks[i]![j]!)));
  net.calibrate(train);
  return { logits: net.forward(test.x, test.n, false).slice(), classes: test.classes };
}

/** Reads a .npy of float32 (what `--logits=` writes). */
async function readNpyF32(path: string): Promise<Float32Array> {
  const b = await Deno.readFile(path);
  const headerLen = new DataView(b.buffer).getUint16(8, true);
  return new Float32Array(b.slice(10 + headerLen).buffer);
}

Deno.test("ticket export - an MLP gates ticket in npz and safetensors reproduces its accuracy in NumPy; a cut too; a tampered mask does not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsweep-export-" });
  try {
    const ticket = await oneTicket(
      dir,
      specText("export-mlp", "{widths: [32], init: kaiming_normal}", "train: 512, test: 256", 3, 2),
    );
    const { manifest } = await readTicket(ticket);
    assert.ok(manifest.result.accuracy > 0.5, `a ticket worth checking: accuracy ${manifest.result.accuracy}`);
    assert.ok(manifest.result.sparsity > 0.05, `some weights removed: sparsity ${manifest.result.sparsity}`);
    for (const format of ["npz", "safetensors"] as const) {
      const out = `${dir}/${format}`;
      await exportPortable(ticket, out, format);
      const r = await forward(out);
      assert.equal(r.code, 0, r.text);
      assert.equal(r.recorded, Number(manifest.result.accuracy.toFixed(6)), r.text);
      assert.ok(Math.abs(r.accuracy - manifest.result.accuracy) <= PORTABLE_TOLERANCE, r.text);
      assert.match(r.text, /^reproduced$/m);
    }

    // the CLI's default format is npz; --cut J exports that cut with its own recorded accuracy
    const cut = manifest.cuts!.points[1]!;
    const cli = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}src/cli/ticket.ts`, "export", ticket, "--cut", "2", "--out", `${dir}/cut`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    const rc = await forward(`${dir}/cut`);
    assert.equal(rc.code, 0, rc.text);
    assert.equal(rc.recorded, Number(cut.accuracy.toFixed(6)));
    assert.ok(Math.abs(rc.accuracy - cut.accuracy) <= PORTABLE_TOLERANCE, rc.text);

    // a tampered mask (fc1's bits inverted in the safetensors file) gives another accuracy: exit 1
    const path = `${dir}/safetensors/ticket.safetensors`;
    const bytes = await Deno.readFile(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const [a, b] = header["mask/fc1"].data_offsets as [number, number];
    for (let i = 8 + n + a; i < 8 + n + b; i++) bytes[i] = 1 - bytes[i]!;
    await Deno.writeFile(path, bytes);
    const bad = await forward(`${dir}/safetensors`);
    assert.equal(bad.code, 1, bad.text);
    assert.match(bad.text, /^NOT reproduced$/m);
    assert.ok(Math.abs(bad.accuracy - manifest.result.accuracy) > PORTABLE_TOLERANCE, bad.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ticket export - conv2, resnet20 (batch norm recalibrated) and vit tickets on synthetic 8×8 images: NumPy's logits are ticketsweep's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsweep-export-" });
  try {
    const cases = [
      { arch: "conv2", model: "{architecture: conv2, init: kaiming_normal}", data: "train: 64, test: 64" },
      { arch: "resnet20", model: "{architecture: resnet20, init: kaiming_normal}", data: "train: 48, test: 32" },
      {
        arch: "vit",
        model: "{architecture: vit, patch_size: 4, dim: 16, depth: 1, heads: 2, init: kaiming_normal}",
        data: "train: 128, test: 128",
      },
    ];
    for (const c of cases) {
      const ticket = await oneTicket(`${dir}/${c.arch}`, specText(`export-${c.arch}`, c.model, c.data, 1, 0));
      const out = `${dir}/${c.arch}/out`;
      const written = await exportPortable(ticket, out, c.arch === "vit" ? "safetensors" : "npz");
      const doc = JSON.parse(await Deno.readTextFile(written.manifest));
      assert.equal(doc.batch_norm_calibration !== undefined, c.arch === "resnet20", c.arch);
      const r = await forward(out, `--logits=${out}/logits.npy`);
      assert.equal(r.code, 0, r.text);
      const mine = await ticketsweepLogits(ticket), theirs = await readNpyF32(`${out}/logits.npy`);
      assert.equal(theirs.length, mine.logits.length);
      let worst = 0;
      for (let i = 0; i < theirs.length; i++) {
        worst = Math.max(worst, Math.abs(theirs[i]! - mine.logits[i]!) / Math.max(1, Math.abs(mine.logits[i]!)));
      }
      assert.ok(worst <= 1e-4, `${c.arch}: NumPy's logits differ from ticketsweep's by up to ${worst}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ticket export - --cut takes decimal digits only: 0x2, 1e1, 2.0, '' and 0 are one line", async () => {
  const { ticketMain } = await import("../src/cli/ticket.ts");
  for (const v of ["0x2", "1e1", "2.0", "0"]) {
    await assert.rejects(
      () => ticketMain(["export", "no-such-ticket", `--cut=${v}`, "--out", "unused"]),
      new RegExp(`--cut ${v.replace(".", "\\.")}: expected a cut number, 1 to N$`),
      v,
    );
  }
  // an empty value is refused before any flag is read, as for every command
  await assert.rejects(
    () => ticketMain(["export", "no-such-ticket", "--cut=", "--out", "unused"]),
    /^.*--cut is empty: give it a value, or leave the flag out$/,
  );
});
