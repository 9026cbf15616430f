import type { Engine } from "./engine.ts";

/** The TensorFlow.js backends this engine can run on. */
export type TfjsBackend = "wasm" | "cpu" | "tensorflow";

/** Packages tried for the `tensorflow` backend: the CUDA build first, then the CPU one. */
const TFJS_NODE = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

/** How to make the optional `tensorflow` backend available; its install script downloads libtensorflow. */
export const TFJS_NODE_HINT = "optional: `deno add npm:@tensorflow/tfjs-node@4.22.0 && " +
  "deno install --allow-scripts=npm:@tensorflow/tfjs-node` (its install script downloads libtensorflow)";

/**
 * Matrix products on a TensorFlow.js backend (`wasm`, `cpu`, or `tensorflow` = tfjs-node's native
 * libtensorflow when it is installed and its binding loads). The data stays in typed arrays between calls;
 * each product is one tensor round trip.
 *
 * @throws {Error} when the backend cannot load (for `tensorflow`: package absent or binding missing).
 */
export async function createTfjsEngine(backend: TfjsBackend): Promise<Engine> {
  const tf = await import("@tensorflow/tfjs");
  if (backend === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const entry = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
    wasm.setWasmPaths(decodeURIComponent(entry.pathname.replace(/[^/]*$/, "")));
  }
  let device = `TensorFlow.js ${backend}`;
  if (backend === "tensorflow") device = `TensorFlow.js ${await loadTfjsNode()}`;
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialise`);
  await tf.ready();
  return {
    name: backend,
    device,
    gemm(transA, transB, m, n, k, a, b, c, beta) {
      // the backend is global to tfjs: switch back if another engine switched it (synchronous once initialised)
      if (tf.getBackend() !== backend) void tf.setBackend(backend);
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

/** Imports tfjs-node (which registers the `tensorflow` backend); returns the package that loaded. */
async function loadTfjsNode(): Promise<string> {
  const errors: string[] = [];
  for (const spec of TFJS_NODE) {
    try {
      await import(spec); // a variable specifier: resolved at run time, so the package stays optional
      return spec.replace("@tensorflow/", "");
    } catch (e) {
      const msg = (e as Error).message.split("\n")[0]!;
      errors.push(`${spec}: ${/not a dependency|Cannot find module/.test(msg) ? "not installed" : msg}`);
    }
  }
  throw new Error(`tfjs-node not loadable (${errors.join("; ")}); ${TFJS_NODE_HINT}`);
}
