import assert from "node:assert/strict";
import { createJsEngine } from "../src/engine/js.ts";
import { ModelSchema, TrialTrainingSchema } from "../src/spec/schema.ts";
import { buildNet } from "../src/train/nets/build.ts";
import type { Net } from "../src/train/nets/net.ts";
import { Rng } from "../src/util/rng.ts";

/** A small net on random data for gradient checks: `model` overrides, inputs of `shape`, `b` samples. */
export function smallNet(model: Record<string, unknown>, shape: number[], classes = 3, b = 4) {
  const net = buildNet(ModelSchema.parse(model), shape, classes, createJsEngine());
  const rng = new Rng(9);
  const x = new Float32Array(b * shape.reduce((a, c) => a * c, 1));
  rng.fillNormal(x);
  const y = Uint8Array.from({ length: b }, (_, i) => i % classes);
  return { net, x, y, b };
}

/** SGD with learning rate 1 and nothing else, so one update exposes the gradient: θ_old − θ_new. */
export const UNIT_SGD = TrialTrainingSchema.parse({
  optimizer: "sgd",
  lr: 1,
  momentum: 0,
  weight_decay: 0,
  schedule: "constant",
});

/** Cross-entropy of `net` on `(x, y)` under its current effective weights (training mode). */
export function lossOf(net: Net, x: Float32Array, y: Uint8Array, b: number): number {
  net.forward(x, b, true);
  return net.crossEntropy(y, b).loss;
}

/** Central finite differences of `f` with respect to entries `idx` of `theta`. */
export function finiteDiff(theta: Float32Array, idx: number[], f: () => number, h: number): number[] {
  return idx.map((i) => {
    const v = theta[i]!;
    theta[i] = v + h;
    const up = f();
    theta[i] = v - h;
    const down = f();
    theta[i] = v;
    return (up - down) / (2 * h);
  });
}

/** Asserts two gradient vectors agree: cosine similarity and the largest error relative to the largest entry. */
export function assertClose(analytic: number[], numeric: number[], what: string, cos = 0.999, rel = 0.03): void {
  let dot = 0, na = 0, nn = 0, maxErr = 0, maxAbs = 0;
  analytic.forEach((a, i) => {
    const n = numeric[i]!;
    dot += a * n;
    na += a * a;
    nn += n * n;
    maxErr = Math.max(maxErr, Math.abs(a - n));
    maxAbs = Math.max(maxAbs, Math.abs(n));
  });
  const c = dot / Math.sqrt(na * nn);
  if (!(c >= cos && maxErr <= rel * maxAbs + 1e-6)) {
    throw new Error(
      `${what}: cosine ${c.toFixed(5)}, max error ${maxErr.toExponential(2)} of max ${maxAbs.toExponential(2)}`,
    );
  }
}

/** `count` evenly spread indices below `n`. */
export function spread(n: number, count: number): number[] {
  const step = Math.max(1, Math.floor(n / count));
  const out: number[] = [];
  for (let i = 0; i < n && out.length < count; i += step) out.push(i);
  return out;
}

/**
 * Asserts two arrays hold the same bits (signed zeros and NaN payloads too), naming the first element that differs;
 * never a whole-array diff (a failing deepEqual on a million-element array takes gigabytes to print).
 */
export function sameBits(a: Float32Array | Uint8Array, b: Float32Array | Uint8Array, what: string): void {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(x.length, y.length, `${what}: lengths`);
  const i = x.findIndex((v, j) => v !== y[j]);
  if (i >= 0) {
    const at = Math.floor(i / a.BYTES_PER_ELEMENT);
    assert.fail(`${what}: element ${at} differs (${a[at]} vs ${b[at]})`);
  }
}
