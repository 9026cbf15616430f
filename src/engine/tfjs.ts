import type { Engine } from "./engine.ts";

/**
 * Matrix products on a TensorFlow.js backend (`wasm` or `cpu`). The data stays in typed arrays between calls;
 * each product is one tensor round trip.
 */
export async function createTfjsEngine(backend: "wasm" | "cpu"): Promise<Engine> {
  const tf = await import("@tensorflow/tfjs");
  if (backend === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const entry = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
    wasm.setWasmPaths(decodeURIComponent(entry.pathname.replace(/[^/]*$/, "")));
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialise`);
  await tf.ready();
  return {
    name: backend,
    device: `TensorFlow.js ${backend}`,
    gemm(transA, transB, m, n, k, a, b, c, beta) {
      const out = tf.tidy(() => {
        const ta = tf.tensor2d(a.subarray(0, m * k), transA ? [k, m] : [m, k]);
        const tb = tf.tensor2d(b.subarray(0, k * n), transB ? [n, k] : [k, n]);
        return tf.matMul(ta, tb, transA, transB);
      });
      const data = out.dataSync() as Float32Array;
      out.dispose();
      if (beta === 0) c.set(data);
      else for (let i = 0; i < m * n; i++) c[i]! += data[i]!;
    },
    close() {},
  };
}
