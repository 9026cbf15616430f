import assert from "node:assert/strict";
import { sweepInProcess } from "./_fixtures.ts";
import { createJsEngine } from "../src/engine/js.ts";
import { TrialConfigSchema } from "../src/spec/schema.ts";
import { buildNet } from "../src/train/nets/build.ts";
import { createMethod } from "../src/train/masks/registry.ts";
import { Rng } from "../src/util/rng.ts";
import { buildLadder, cutValues } from "../src/train/ladder.ts";
import { BernoulliGates } from "../src/train/masks/gates.ts";
import { HardConcreteGates } from "../src/train/masks/hard_concrete.ts";
import { ContinuousSparsification } from "../src/train/masks/continuous_sparsification.ts";
import { EdgePopup } from "../src/train/masks/edge_popup.ts";
import { cutMasks } from "../src/ticket/bits.ts";
import { verifyTicket } from "../src/ticket/verify.ts";
import { contentHash, readTicket } from "../src/ticket/format.ts";
import { exportTicket } from "../src/ticket/export.ts";
import { readManifest, reportDataOf } from "../src/coordinator/run_dir.ts";
import { ResultLog } from "../src/coordinator/record.ts";
import { sha256Hex } from "../src/util/hash.ts";

/** A method over a small MLP with its mask parameters spread at random (as training would leave them). */
function spreadMethod(name: string, granularity = "weight") {
  const cfg = TrialConfigSchema.parse({
    dataset: { name: "synthetic" },
    model: { widths: [24, 12] },
    method: { name, granularity, k: 0.6 },
    training: {
      epochs: 1,
      batch_size: 8,
      optimizer: "adam",
      lr: 0.01,
      momentum: 0.9,
      weight_decay: 0,
      schedule: "constant",
    },
    backend: "js",
    seed: 1,
  });
  const net = buildNet(cfg.model, [8, 8, 1], 4, createJsEngine());
  const m = createMethod(cfg, net, new Rng(1, 2));
  const rng = new Rng(5, 1);
  const spread = (arrs: Float32Array[], lo: number, hi: number) =>
    arrs.forEach((a) => {
      for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.uniform();
    });
  if (m instanceof BernoulliGates) spread(m.mu, -0.5, 1.5);
  if (m instanceof HardConcreteGates) spread(m.logAlpha, -4, 4);
  if (m instanceof ContinuousSparsification) spread(m.s, -1, 1);
  if (m instanceof EdgePopup) spread(m.scores, -1, 1);
  return { net, m, sizes: net.maskedParams.map((l) => l.w.length) };
}

/** The method's rule at cut `c`, written out here from the README, per weight of layer `l`. */
function ruleMask(m: unknown, net: ReturnType<typeof spreadMethod>["net"], l: number, c: number): Uint8Array {
  const n = net.maskedParams[l]!.w.length;
  const out = new Uint8Array(n);
  if (m instanceof BernoulliGates) {
    const mu = m.mu[l]!, span = n / mu.length;
    for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(mu[Math.floor(i / span)]!, 0), 1) > c ? 1 : 0;
  } else if (m instanceof HardConcreteGates) {
    const la = m.logAlpha[l]!, span = n / la.length;
    for (let i = 0; i < n; i++) out[i] = m.testGate(la[Math.floor(i / span)]!) > c ? 1 : 0;
  } else if (m instanceof ContinuousSparsification) {
    for (let i = 0; i < n; i++) out[i] = m.s[l]![i]! > c ? 1 : 0;
  } else if (m instanceof EdgePopup) {
    const s = m.scores[l]!;
    const keep = n - Math.floor((1 - c) * n);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(s[b]!) - Math.abs(s[a]!) || a - b);
    for (let r = 0; r < keep; r++) out[order[r]!] = 1;
  }
  return out;
}

Deno.test("ladder - every method: auto cuts give monotone sparsities, and each cut is the mask of the method's rule at that cut", () => {
  for (
    const [name, gran] of [["gates", "weight"], ["gates", "neuron"], ["hard-concrete", "weight"], ["cs", "weight"], [
      "edge-popup",
      "weight",
    ]] as const
  ) {
    const { net, m, sizes } = spreadMethod(name, gran);
    const rule = m.cuts!;
    const values = cutValues(rule, sizes, "auto");
    assert.ok(values.length >= (gran === "neuron" ? 5 : 12), `${name}/${gran}: ${values.length} cuts`);
    const ladder = buildLadder(rule, sizes, values)!;
    const total = sizes.reduce((a, b) => a + b, 0);
    const own = sizes.reduce((s, _, l) => s + m.binaryMask(l).reduce((a, v) => a + v, 0), 0);
    let prev = 1 - own / total;
    const ownSparsity = prev;
    ladder.cuts.forEach((c, j) => {
      const kept = c.masks.reduce((s, mk) => s + mk.reduce((a, v) => a + v, 0), 0);
      const sparsity = 1 - kept / total;
      assert.ok(sparsity > prev, `${name}: cut ${j + 1} (${c.cut}) sparsity ${sparsity} after ${prev}`);
      prev = sparsity;
      const rebuilt = cutMasks(ladder.levels, j + 1, sizes);
      c.masks.forEach((mk, l) => {
        assert.deepEqual(mk, ruleMask(m, net, l, c.cut), `${name}: cut ${c.cut} layer ${l} follows the rule`);
        assert.deepEqual(rebuilt[l], mk, `${name}: cut ${j + 1} rebuilt from the levels`);
      });
    });
    // spread: the sparsest auto cut is far sparser than the own ticket (test gates stop where they saturate at 1)
    assert.ok(prev > ownSparsity + 0.3, `${name}: the sparsest auto cut reaches ${prev} from ${ownSparsity}`);
    // a list is taken as given (inadmissible values dropped), a count gives that many at most
    assert.ok(cutValues(rule, sizes, 4).length <= 4);
    // the own ticket is the rule at its own cut
    sizes.forEach((_, l) => assert.deepEqual(m.binaryMask(l), ruleMask(m, net, l, rule.own)));
  }
  const { m, sizes } = spreadMethod("gates");
  assert.deepEqual(cutValues(m.cuts!, sizes, [0.5, 0.2, 1.2, 0.2, -1]), [0.2, 0.5]);
  const ep = spreadMethod("edge-popup");
  assert.deepEqual(cutValues(ep.m.cuts!, ep.sizes, [0.1, 0.5, 0.9]), [0.5, 0.1]);
});

Deno.test("ladder - every cut of a trial verifies with ticket verify; a tampered cut does not; cuts enter the fronts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await sweepInProcess(
      `name: ladder
dataset: {name: synthetic, train: 512, test: 256}
model: {widths: [32], init: kaiming_normal}
parameters:
  method: {values: [gates, edge-popup]}
  lambda: {values: [0.003]}
  k: {values: [0.5]}
training: {epochs: 2, batch_size: 64}
tickets: {cuts: 6}
`,
      dir,
    );
    const tickets = [...Deno.readDirSync(`${run}/tickets`)].map((e) => `${run}/tickets/${e.name}`);
    assert.equal(tickets.length, 2);
    for (const t of tickets) {
      const v = await verifyTicket(t, createJsEngine());
      assert.ok(v.ok, JSON.stringify(v.checks));
      const n = v.manifest!.cuts!.points.length;
      assert.ok(n >= 3 && n <= 6, `${n} cuts`);
      assert.equal(v.checks.filter((c) => c.name.startsWith("cut ")).length, n);
      const one = await verifyTicket(t, createJsEngine(), { cut: n });
      assert.ok(one.ok);
      const out = await exportTicket(t, `${dir}/export`, n);
      const u8 = await Deno.readFile(out.mask);
      assert.equal(u8.reduce((s, x) => s + x, 0), v.manifest!.cuts!.points[n - 1]!.kept.reduce((a, b) => a + b, 0));
    }
    const t = tickets[0]!;
    const { manifest } = await readTicket(t);
    const levels = await Deno.readFile(`${t}/cuts.bin`);
    const tamper = async (name: string, levelBytes: Uint8Array, edit: (m: typeof manifest) => void) => {
      const d = `${dir}/${name}`;
      await Deno.mkdir(d);
      await Deno.copyFile(`${t}/mask.bin`, `${d}/mask.bin`);
      await Deno.writeFile(`${d}/cuts.bin`, levelBytes);
      const m = structuredClone(manifest);
      edit(m);
      await Deno.writeTextFile(`${d}/ticket.json`, JSON.stringify(m));
      return await verifyTicket(d, createJsEngine());
    };
    // a byte of the levels changed: the levels' hash fails
    const flipped = levels.slice();
    flipped[3]! ^= 1;
    const a = await tamper("flipped", flipped, () => {});
    assert.equal(a.ok, false);
    assert.equal(a.checks.find((c) => c.name === "cuts hash")!.ok, false);
    // the same, re-sealed (hash of the new levels recorded): the rebuilt cut masks differ from the recorded ones
    const b = await tamper("resealed", flipped, (m) => {
      m.cuts!.sha256 = sha256Hex(flipped);
      m.content_sha256 = contentHash(m);
    });
    assert.equal(b.ok, false);
    assert.ok(b.checks.some((c) => c.name.startsWith("cut ") && !c.ok));
    // a cut's recorded accuracy raised and re-sealed: re-evaluation disagrees
    const c = await tamper("boasting", levels, (m) => {
      const p = m.cuts!.points.at(-1)!;
      p.val_accuracy = Math.min(1, (p.val_accuracy ?? 0) + 0.05);
      m.content_sha256 = contentHash(m);
    });
    assert.equal(c.ok, false);
    assert.equal(c.checks.find((x) => x.name === `cut ${manifest.cuts!.points.length}`)!.ok, false);
    // a cut's value edited without re-sealing: the manifest hash fails
    const d = await tamper("edited", levels, (m) => (m.cuts!.points[0]!.cut += 0.01));
    assert.equal(d.checks[0]!.ok, false);

    // every cut is a ticket of the fronts, marked with its cut; results.jsonl does not carry the levels
    const data = reportDataOf(await readManifest(run), (await ResultLog.open(run)).all());
    assert.equal(data.selection, "validation");
    assert.ok(data.trials.every((r) => r.cuts && r.cuts.levels.b64 === ""));
    const cuts = data.tickets.filter((r) => r.cut !== undefined);
    assert.equal(cuts.length, data.trials.reduce((s, r) => s + (r.cuts?.points.length ?? 0), 0));
    const sparsest = Math.max(...data.fronts.flatMap((f) => f.points.map((p) => p.sparsity!)));
    assert.ok(data.fronts.some((f) => f.points.some((p) => p.cut !== undefined)), "cut tickets reach the fronts");
    assert.ok(sparsest > Math.max(...data.trials.map((r) => r.sparsity!)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
