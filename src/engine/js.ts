import type { Engine } from "./engine.ts";

/** Plain TypeScript matrix products: always available, the reference the other backends are tested against. */
export function createJsEngine(): Engine {
  return { name: "js", device: "TypeScript loops", gemm: jsGemm, close() {} };
}

/** Row-major GEMM in loops ordered so that the innermost loop runs over contiguous memory. */
export function jsGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  beta: 0 | 1,
): void {
  if (beta === 0) c.fill(0, 0, m * n);
  if (!transA && transB) {
    // C[i,j] += sum_p A[i,p] B[j,p]: dot products of rows.
    for (let i = 0; i < m; i++) {
      const ai = i * k;
      for (let j = 0; j < n; j++) {
        const bj = j * k;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ai + p]! * b[bj + p]!;
        c[i * n + j]! += s;
      }
    }
    return;
  }
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = transA ? a[p * m + i]! : a[i * k + p]!;
      if (aip === 0) continue;
      if (!transB) {
        const bp = p * n;
        for (let j = 0; j < n; j++) c[ci + j]! += aip * b[bp + j]!;
      } else {
        for (let j = 0; j < n; j++) c[ci + j]! += aip * b[j * k + p]!;
      }
    }
  }
}
