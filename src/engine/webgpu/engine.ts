import type { Engine } from "../engine.ts";
import {
  CTL_BYTES,
  DONE,
  ERROR_LEN,
  FAILED,
  type GemmMessage,
  HEADER_BYTES,
  PENDING,
  type ReadyMessage,
  type Request,
  STATE,
} from "./protocol.ts";

/** How long one product may take before the engine gives up on the device thread. */
const GEMM_TIMEOUT_MS = 120_000;

/** A WebGPU engine and what its adapter is. */
export interface WebgpuEngine extends Engine {
  /** True on a software rasteriser (Mesa llvmpipe/lavapipe, SwiftShader): correct, but slower than the CPU. */
  readonly software: boolean;
}

/**
 * Matrix products on Deno's WebGPU. The device lives on its own thread; `gemm` copies the operands into
 * shared memory, and blocks with `Atomics.wait` until the thread has run the shader and read the result back.
 *
 * @param device `--device N`: adapter N of the distinct adapters Deno offers (the high-performance one, then the
 *   low-power one); the first by default.
 * @throws {Error} when Deno has no WebGPU, or no adapter or device can be had (no Vulkan loader or driver).
 */
export async function createWebgpuEngine(device?: number): Promise<WebgpuEngine> {
  const thread = new Worker(new URL("./thread.ts", import.meta.url).href, { type: "module" });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const ready = await new Promise<ReadyMessage>((resolve) => {
    thread.onmessage = (e: MessageEvent<ReadyMessage>) => resolve(e.data);
    thread.onerror = (e) => {
      e.preventDefault();
      resolve({ ok: false, error: e.message });
    };
    thread.postMessage({ op: "init", ctl: ctl.buffer as SharedArrayBuffer, device } satisfies Request);
  });
  if (!ready.ok) throw new Error(`WebGPU unavailable: ${ready.error}`); // the thread has closed itself
  let data = new Float32Array(new SharedArrayBuffer(1 << 20));
  let grown: SharedArrayBuffer | undefined = data.buffer as SharedArrayBuffer; // the thread gets it with the first product
  let closed = false;
  return {
    name: "webgpu",
    device: `WebGPU ${ready.description}${ready.software ? " (software)" : ""}`,
    software: ready.software,
    gemm(transA, transB, m, n, k, a, b, c, beta) {
      if (closed) throw new Error("WebGPU engine is closed");
      const offB = m * k, offC = offB + k * n, need = offC + m * n;
      if (data.length < need) {
        let size = data.length;
        while (size < need) size *= 2;
        data = new Float32Array(new SharedArrayBuffer(size * 4));
        grown = data.buffer as SharedArrayBuffer;
      }
      data.set(a.subarray(0, m * k), 0);
      data.set(b.subarray(0, k * n), offB);
      if (beta) data.set(c.subarray(0, m * n), offC);
      Atomics.store(ctl, STATE, PENDING);
      const msg: GemmMessage = { op: "gemm", data: grown, transA, transB, m, n, k, beta, offA: 0, offB, offC };
      grown = undefined;
      thread.postMessage(msg satisfies Request);
      if (Atomics.wait(ctl, STATE, PENDING, GEMM_TIMEOUT_MS) === "timed-out") {
        throw new Error(`WebGPU product ${m}×${k}·${k}×${n} took over ${GEMM_TIMEOUT_MS / 1000} s`);
      }
      const state = Atomics.load(ctl, STATE);
      if (state === FAILED) {
        const text = new Uint8Array(ctl.buffer, HEADER_BYTES, Atomics.load(ctl, ERROR_LEN)).slice();
        throw new Error(`WebGPU product failed: ${new TextDecoder().decode(text)}`);
      }
      if (state !== DONE) throw new Error(`WebGPU device thread answered with state ${state}`);
      c.set(data.subarray(offC, offC + m * n));
    },
    close() {
      if (closed) return;
      closed = true;
      Atomics.store(ctl, STATE, PENDING);
      thread.postMessage({ op: "close" } satisfies Request);
      // the thread releases the device and closes itself (terminating it from here could crash at exit)
      if (Atomics.wait(ctl, STATE, PENDING, 5000) === "timed-out") thread.terminate();
    },
  };
}
