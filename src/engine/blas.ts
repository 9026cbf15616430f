import type { Engine } from "./engine.ts";

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** Library names tried in order; `TICKETSWEEP_OPENBLAS` overrides (an empty value hides OpenBLAS). */
export function blasCandidates(): string[] {
  const env = Deno.env.get("TICKETSWEEP_OPENBLAS");
  if (env !== undefined) return env === "" ? [] : [env];
  return ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll"];
}

/**
 * OpenBLAS `cblas_sgemm` through Deno FFI.
 *
 * @param threads OpenBLAS threads; 1 when several workers share the machine (one per core).
 * @throws {Error} when no OpenBLAS library loads; the caller falls back to another backend.
 */
export function createBlasEngine(threads = 1): Engine {
  const errors: string[] = [];
  for (const path of blasCandidates()) {
    try {
      const lib = Deno.dlopen(path, {
        cblas_sgemm: {
          parameters: [
            "i32",
            "i32",
            "i32",
            "i32",
            "i32",
            "i32",
            "f32",
            "buffer",
            "i32",
            "buffer",
            "i32",
            "f32",
            "buffer",
            "i32",
          ],
          result: "void",
        },
        openblas_set_num_threads: { parameters: ["i32"], result: "void" },
      });
      lib.symbols.openblas_set_num_threads(threads);
      const sgemm = lib.symbols.cblas_sgemm;
      return {
        name: "blas",
        device: `OpenBLAS (${path}), ${threads} thread${threads === 1 ? "" : "s"}`,
        gemm(transA, transB, m, n, k, a, b, c, beta) {
          sgemm(
            ROW_MAJOR,
            transA ? TRANS : NO_TRANS,
            transB ? TRANS : NO_TRANS,
            m,
            n,
            k,
            1,
            a,
            transA ? m : k,
            b,
            transB ? k : n,
            beta,
            c,
            n,
          );
        },
        close() {
          lib.close();
        },
      };
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  throw new Error(
    `OpenBLAS not found (${errors.join("; ") || "hidden by TICKETSWEEP_OPENBLAS"}); install it with ` +
      "`apt-get install libopenblas0`",
  );
}
