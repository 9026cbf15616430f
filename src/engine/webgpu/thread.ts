/// <reference lib="deno.worker" />
/**
 * The WebGPU engine's device thread: owns the adapter, the device and the GPU buffers, and answers the main
 * thread's products through shared memory (see `protocol.ts`).
 */
import {
  CTL_BYTES,
  DONE,
  ERROR_LEN,
  FAILED,
  type GemmMessage,
  HEADER_BYTES,
  type ReadyMessage,
  type Request,
  STATE,
} from "./protocol.ts";
import { GEMM_WGSL, TILE } from "./shader.ts";

let ctl: Int32Array;
let data: Float32Array<ArrayBufferLike> = new Float32Array(0);
let gpu: DeviceState | null = null;

interface DeviceState {
  device: GPUDevice;
  pipeline: GPUComputePipeline;
  params: GPUBuffer;
  a: GPUBuffer | null;
  b: GPUBuffer | null;
  c: GPUBuffer | null;
  read: GPUBuffer | null;
  bindGroup: GPUBindGroup | null;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software/i;

self.onmessage = async (e: MessageEvent<Request>) => {
  const msg = e.data;
  if (msg.op === "init") {
    ctl = new Int32Array(msg.ctl);
    const ready = await init(msg.device);
    self.postMessage(ready);
    if (!ready.ok) self.close(); // nothing to serve; the thread ends itself
    return;
  }
  try {
    if (msg.op === "close") release();
    else await gemm(msg);
    Atomics.store(ctl, STATE, DONE);
  } catch (err) {
    const text = new TextEncoder().encode(String((err as Error).message ?? err)).subarray(0, CTL_BYTES - HEADER_BYTES);
    new Uint8Array(ctl.buffer, HEADER_BYTES).set(text);
    Atomics.store(ctl, ERROR_LEN, text.length);
    Atomics.store(ctl, STATE, FAILED);
  }
  Atomics.notify(ctl, STATE);
  if (msg.op === "close") self.close();
};

async function init(pick?: number): Promise<ReadyMessage> {
  try {
    if (!("gpu" in navigator) || !navigator.gpu) return { ok: false, error: "this Deno has no navigator.gpu" };
    const first = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!first) {
      return { ok: false, error: "no WebGPU adapter (a Vulkan loader and driver are needed: libvulkan1 + a GPU ICD)" };
    }
    // WebGPU lists no adapters: Deno offers the high-performance one and the low-power one, which differ on a
    // machine with two kinds of GPU; `--device N` picks among those distinct adapters, in that order
    const adapters = [first];
    if (pick !== undefined && pick > 0) {
      const low = await navigator.gpu.requestAdapter({ powerPreference: "low-power" });
      const name = (a: GPUAdapter) => `${a.info.vendor}/${a.info.device}/${a.info.description}`;
      if (low && name(low) !== name(first)) adapters.push(low);
    }
    const adapter = adapters[pick ?? 0];
    if (!adapter) {
      return {
        ok: false,
        error:
          `--device ${pick}: WebGPU offers ${adapters.length} distinct adapter${adapters.length === 1 ? "" : "s"} ` +
          `here (${adapters.map((a, i) => `${i}: ${a.info.description || a.info.device}`).join(", ")})`,
      };
    }
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
      },
    });
    const module = device.createShaderModule({ code: GEMM_WGSL });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const params = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    gpu = { device, pipeline, params, a: null, b: null, c: null, read: null, bindGroup: null };
    const info = adapter.info;
    const description = info.description || info.device || "unknown adapter";
    // deno-lint-ignore no-explicit-any
    const fallback = Boolean((info as any).isFallbackAdapter ?? (adapter as any).isFallbackAdapter);
    return {
      ok: true,
      description,
      vendor: info.vendor,
      architecture: info.architecture,
      software: fallback || SOFTWARE.test(description),
    };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Destroys the buffers and the device before the thread goes (terminating a thread that holds a Vulkan device
 * could crash the process at exit). */
function release(): void {
  if (!gpu) return;
  for (const b of [gpu.a, gpu.b, gpu.c, gpu.read, gpu.params]) b?.destroy();
  gpu.device.destroy();
  gpu = null;
}

/** Returns `buf` if it holds `bytes`, else a new buffer of the next power of two (the old one destroyed). */
function ensure(buf: GPUBuffer | null, bytes: number, usage: number): GPUBuffer {
  if (buf && buf.size >= bytes) return buf;
  buf?.destroy();
  let size = 256;
  while (size < bytes) size *= 2;
  gpu!.bindGroup = null;
  return gpu!.device.createBuffer({ size, usage });
}

async function gemm(r: GemmMessage): Promise<void> {
  if (!gpu) throw new Error("WebGPU device thread was not initialised");
  if (r.data) data = new Float32Array(r.data);
  const g = gpu, { m, n, k } = r;
  if (data.length < r.offC + m * n) {
    throw new Error(`shared data holds ${data.length} floats, the product needs ${r.offC + m * n}`);
  }
  const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  g.a = ensure(g.a, m * k * 4, S);
  g.b = ensure(g.b, k * n * 4, S);
  g.c = ensure(g.c, m * n * 4, S | GPUBufferUsage.COPY_SRC);
  g.read = ensure(g.read, m * n * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  if (!g.bindGroup) {
    g.bindGroup = g.device.createBindGroup({
      layout: g.pipeline.getBindGroupLayout(0),
      entries: [g.a, g.b, g.c, g.params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }
  const q = g.device.queue;
  q.writeBuffer(g.a, 0, data.slice(r.offA, r.offA + m * k));
  q.writeBuffer(g.b, 0, data.slice(r.offB, r.offB + k * n));
  if (r.beta) q.writeBuffer(g.c, 0, data.slice(r.offC, r.offC + m * n));
  const params = new ArrayBuffer(32);
  new Uint32Array(params, 0, 5).set([m, n, k, r.transA ? 1 : 0, r.transB ? 1 : 0]);
  new Float32Array(params, 20, 1)[0] = r.beta;
  q.writeBuffer(g.params, 0, new Uint8Array(params));
  const enc = g.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(g.pipeline);
  pass.setBindGroup(0, g.bindGroup);
  pass.dispatchWorkgroups(Math.ceil(n / TILE), Math.ceil(m / TILE));
  pass.end();
  enc.copyBufferToBuffer(g.c, 0, g.read, 0, m * n * 4);
  q.submit([enc.finish()]);
  await g.read.mapAsync(GPUMapMode.READ, 0, m * n * 4);
  data.set(new Float32Array(g.read.getMappedRange(0, m * n * 4)), r.offC);
  g.read.unmap();
}
