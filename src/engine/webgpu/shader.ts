/** Tile edge of the GEMM shader: each workgroup computes a TILE×TILE block of C. */
export const TILE = 16;

/**
 * Row-major `C = op(A)·op(B) + beta·C` in WGSL. Each workgroup stages TILE×TILE tiles of `op(A)` and `op(B)` in
 * workgroup memory; transposes are read through index arithmetic, so no transposed copies are made.
 */
export const GEMM_WGSL = /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, ta: u32, tb: u32, beta: f32 }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> As: array<array<f32, ${TILE}>, ${TILE}>;
var<workgroup> Bs: array<array<f32, ${TILE}>, ${TILE}>;

fn opA(i: u32, q: u32) -> f32 {
  if (i >= p.m || q >= p.k) { return 0.0; }
  if (p.ta == 1u) { return A[q * p.m + i]; }
  return A[i * p.k + q];
}

fn opB(q: u32, j: u32) -> f32 {
  if (q >= p.k || j >= p.n) { return 0.0; }
  if (p.tb == 1u) { return B[j * p.k + q]; }
  return B[q * p.n + j];
}

@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
  let row = w.y * ${TILE}u + l.y;
  let col = w.x * ${TILE}u + l.x;
  var acc = 0.0;
  let tiles = (p.k + ${TILE - 1}u) / ${TILE}u;
  for (var t = 0u; t < tiles; t++) {
    As[l.y][l.x] = opA(row, t * ${TILE}u + l.x);
    Bs[l.y][l.x] = opB(t * ${TILE}u + l.y, col);
    workgroupBarrier();
    for (var q = 0u; q < ${TILE}u; q++) {
      acc += As[l.y][q] * Bs[q][l.x];
    }
    workgroupBarrier();
  }
  if (row < p.m && col < p.n) {
    let i = row * p.n + col;
    if (p.beta != 0.0) {
      C[i] = acc + C[i];
    } else {
      C[i] = acc;
    }
  }
}
`;
