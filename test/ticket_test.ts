import assert from "node:assert/strict";
import { ROOT, sweepInProcess, tinySpecText } from "./_fixtures.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { exportTicket } from "../src/ticket/export.ts";
import { contentHash, readTicket } from "../src/ticket/format.ts";
import { verifyTicket } from "../src/ticket/verify.ts";
import { packMasks, unpackMasks } from "../src/ticket/bits.ts";

/** Runs a small sweep in-process and returns its run dir. */
function sweepWithTickets(dir: string, extra = ""): Promise<string> {
  return sweepInProcess(tinySpecText("tickets", 2, extra, 2), dir);
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
}

Deno.test("tickets - bits pack least significant first and unpack to the same masks", () => {
  const masks = [Uint8Array.from([1, 0, 1, 1, 0, 0, 0, 0, 1]), Uint8Array.from([0, 1, 1])];
  const bits = packMasks(masks);
  assert.deepEqual([...bits], [0b00001101, 0b00001101]);
  assert.deepEqual(unpackMasks(bits, [9, 3]), masks);
});

Deno.test("tickets - store → verify reproduces the recorded accuracy exactly; a flipped bit or an edited seed is detected", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await sweepWithTickets(dir);
    const tickets = [...Deno.readDirSync(`${run}/tickets`)].map((e) => `${run}/tickets/${e.name}`);
    assert.equal(tickets.length, 2);
    const ticket = tickets[0]!;
    const ok = await verifyTicket(ticket, createJsEngine());
    assert.ok(ok.ok, JSON.stringify(ok.checks));
    assert.equal(ok.accuracy, ok.manifest!.result.accuracy);
    // then the ticket ladder: its levels' hash and every cut (test/ladder_test.ts)
    const cuts = ok.manifest!.cuts!.points.length;
    assert.deepEqual(
      ok.checks.slice(7).map((c) => c.name),
      ["cuts hash", ...Array.from({ length: cuts }, (_, j) => `cut ${j + 1}`)],
    );
    assert.deepEqual(ok.checks.slice(0, 7).map((c) => c.name), [
      "manifest hash",
      "mask hash",
      "network",
      "mask size",
      "kept per layer",
      "accuracy",
      "validation accuracy",
    ]);

    const flipped = `${dir}/flipped`;
    await copyDir(ticket, flipped);
    const bits = await Deno.readFile(`${flipped}/mask.bin`);
    bits[17]! ^= 0b100;
    await Deno.writeFile(`${flipped}/mask.bin`, bits);
    const bad = await verifyTicket(flipped, createJsEngine());
    assert.equal(bad.ok, false);
    assert.match(bad.checks.find((c) => c.name === "mask hash")!.detail, /mask.bin was modified/);

    const reseeded = `${dir}/reseeded`;
    await copyDir(ticket, reseeded);
    const manifest = JSON.parse(await Deno.readTextFile(`${reseeded}/ticket.json`));
    manifest.config.model.weight_seed += 1;
    await Deno.writeTextFile(`${reseeded}/ticket.json`, JSON.stringify(manifest));
    const bad2 = await verifyTicket(reseeded, createJsEngine());
    assert.equal(bad2.ok, false);
    assert.match(bad2.checks[0]!.detail, /ticket.json was modified/);

    // a forger who also re-seals the manifest is caught by re-evaluation: other weights, other accuracy
    manifest.content_sha256 = contentHash(manifest);
    await Deno.writeTextFile(`${reseeded}/ticket.json`, JSON.stringify(manifest));
    const bad3 = await verifyTicket(reseeded, createJsEngine());
    assert.equal(bad3.checks[0]!.ok, true);
    assert.equal(bad3.ok, false, "accuracy of a mask over other weights should differ");

    // the CLI: exit 0 verified, 2 not; export writes one byte per masked weight
    const cli = (args: string[]) =>
      new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}src/cli/ticket.ts`, ...args], stdout: "piped" })
        .output();
    const good = await cli(["verify", ticket, "--backend", "js"]);
    assert.equal(good.code, 0, new TextDecoder().decode(good.stdout));
    assert.match(new TextDecoder().decode(good.stdout), /ticket verified/);
    assert.equal((await cli(["verify", flipped, "--backend", "js"])).code, 2);
    const out = await exportTicket(ticket, `${dir}/export`);
    const u8 = await Deno.readFile(out.mask);
    const { manifest: m } = await readTicket(ticket);
    assert.equal(u8.length, m.mask.masked_weights);
    assert.equal(u8.reduce((s, v) => s + v, 0), m.layers.reduce((s, l) => s + l.kept, 0));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
