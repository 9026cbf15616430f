import type { FusedKernels } from "./native.ts";

/**
 * The numeric engine a trial trains on. The science in `src/train` is written against this interface only;
 * each backend (docs/architecture.md, "Words") implements it with its own matrix products, which are where the time
 * goes.
 */
export interface Engine {
  /** Its backend, as `--backend` names it (`blas`, `tensorflow`, `webgpu`, `wasm`, `cpu`, `js`). */
  readonly name: string;
  /** What it runs on, for reports (e.g. `OpenBLAS 1 thread`, `tfjs-wasm simd`). */
  readonly device: string;
  /**
   * Row-major `C = op(A) · op(B) + beta · C`, where `op(X)` is `X` or its transpose; `op(A)` is M×K and
   * `op(B)` is K×N.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta: 0 | 1,
  ): void;
  /** Releases native resources. */
  close(): void;
  /** Native fused per-weight kernels, when they could be built here (same numbers as the TypeScript loops). */
  kernels?: FusedKernels | null;
}
