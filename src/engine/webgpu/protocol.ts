/**
 * Messages between the WebGPU engine (main thread) and its device thread. GEMM operands and results travel in
 * a shared `Float32Array`; the main thread blocks on `ctl[STATE]` with `Atomics.wait` while the device thread
 * runs the product, so the engine keeps the synchronous `gemm` of every other backend.
 */

/** Index in the control `Int32Array`: request state (PENDING, DONE or FAILED). */
export const STATE = 0;
/** Index in the control `Int32Array`: byte length of the UTF-8 error text that follows the header. */
export const ERROR_LEN = 1;
/** Bytes before the error text in the control buffer. */
export const HEADER_BYTES = 8;
/** Size of the control buffer (header plus room for an error text). */
export const CTL_BYTES = 4096;

export const PENDING = 0, DONE = 1, FAILED = 2;

/** Starts the device thread: it requests an adapter and a device and answers with a {@link ReadyMessage}. */
export interface InitMessage {
  op: "init";
  ctl: SharedArrayBuffer;
  /** `--device N`: the adapter to take, in the order high-performance, then low-power when it differs. */
  device?: number;
}

/** What the device thread found, posted back once after {@link InitMessage}. */
export type ReadyMessage =
  | { ok: true; description: string; vendor: string; architecture: string; software: boolean }
  | { ok: false; error: string };

/** One product; operands at the given float offsets of the shared data, the result written at `offC`. */
export interface GemmMessage {
  op: "gemm";
  /** A new (larger) shared data buffer, sent when the main thread had to grow it. */
  data?: SharedArrayBuffer;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  beta: 0 | 1;
  offA: number;
  offB: number;
  offC: number;
}

/** Releases the GPU buffers and the device, then answers DONE; the thread is terminated after that. */
export interface CloseMessage {
  op: "close";
}

export type Request = InitMessage | GemmMessage | CloseMessage;
