import { GAUSS_TABLE, POW2F } from "../train/masks/math.ts";
import { sha256Hex } from "../util/hash.ts";
import { ZIGGURAT } from "../util/rng.ts";

/**
 * Native kernels: native/kernels.c, compiled on first use with the system C compiler and loaded through FFI
 * ({@link loadKernels}). They are an optional faster path for the per-weight loops the mask methods and the
 * network layers otherwise run in TypeScript, giving the same numbers bit for bit (test/kernels_test.ts compares
 * them): the per-weight loops of gates, hard-concrete, continuous sparsification and edge-popup (each fusing
 * noise, effective weights, penalty gradient and optimiser step where it can), the Adam and SGD steps, ReLU and
 * the convolution's im2col / col2im. The matrix products are not here: they are the engine's
 * (src/engine/engine.ts). When no C compiler is found, every caller runs its TypeScript loop instead.
 *
 * @module
 */

/** The native kernels by purpose; each mirrors one TypeScript loop, named in its comment or in kernels.c. */
export interface FusedKernels {
  readonly description: string;
  gatesForward(
    mu: Float32Array,
    w: Float32Array,
    u: Float32Array,
    weff: Float32Array,
    sigma: number,
    rngState: Uint32Array,
  ): void;
  gatesAdam(
    mu: Float32Array,
    u: Float32Array,
    g: Float32Array,
    w: Float32Array,
    m1: Float32Array,
    m2: Float32Array,
    k: number,
    invS: number,
    lr: number,
    ic2: number,
  ): void;
  /** Hard-concrete's forward per weight in float32: uniform draws (state advanced), `s`, `z` and `weff = w·z`. */
  hcForward(
    s: Float32Array,
    z: Float32Array,
    logAlpha: Float32Array,
    w: Float32Array,
    weff: Float32Array,
    beta: number,
    gamma: number,
    span: number,
    rngState: Uint32Array,
  ): void;
  /** Hard-concrete's gradient on log_alpha per weight in float32 (before the optimiser), into `dz`. */
  hcGrad(
    dz: Float32Array,
    g: Float32Array,
    w: Float32Array,
    s: Float32Array,
    logAlpha: Float32Array,
    beta: number,
    gamma: number,
    span: number,
    shift: number,
    coef: number,
  ): void;
  /** One Adam step in float32 over a buffer, as `createOptimizer`'s (c1, c2: this step's bias corrections). */
  adamStep(
    p: Float32Array,
    g: Float32Array,
    m1: Float32Array,
    m2: Float32Array,
    lr: number,
    wd: number,
    c1: number,
    c2: number,
  ): void;
  /** One SGD step in float32 with momentum and weight decay over a buffer, as `createOptimizer`'s. */
  sgdStep(p: Float32Array, g: Float32Array, mom: Float32Array, lr: number, momentum: number, wd: number): void;
  /** ReLU in place (`y < 0` becomes 0). */
  relu(y: Float32Array): void;
  /** ReLU's backward in place: `dy` zeroed where `y <= 0`. */
  reluGrad(dy: Float32Array, y: Float32Array): void;
  /** Continuous sparsification's forward in float32: `sig = sigmoid(beta·s)`, `weff = w·c·sig`. */
  csForward(s: Float32Array, w: Float32Array, sig: Float32Array, weff: Float32Array, beta: number, c: number): void;
  /** Continuous sparsification's gradient on the scores in float32: `(g·w + coef)·k·sig·(1 − sig)`. */
  csGrad(grad: Float32Array, g: Float32Array, w: Float32Array, sig: Float32Array, coef: number, k: number): void;
  /** The same gradient and an SGD step on the scores in one pass (as `csGrad` then `sgdStep`). */
  csSgd(
    s: Float32Array,
    g: Float32Array,
    w: Float32Array,
    sig: Float32Array,
    mom: Float32Array,
    coef: number,
    k: number,
    lr: number,
    momentum: number,
    wd: number,
  ): void;
  /** edge-popup's forward: exact top-`keep` mask by |score| (ties in index order) and `weff = w ⊙ mask`. */
  popupForward(
    scores: Float32Array,
    w: Float32Array,
    mask: Uint8Array,
    weff: Float32Array,
    scratch: Float32Array,
    keep: number,
  ): void;
  /** edge-popup's backward: straight-through gradient and an SGD step (momentum, weight decay) on the scores. */
  popupSgd(
    s: Float32Array,
    g: Float32Array,
    w: Float32Array,
    mom: Float32Array,
    momentum: number,
    wd: number,
    lr: number,
  ): void;
  /** Conv2d's im2col (`dir` "cols") and col2im (`dir` "image", accumulating) for samples [n0, n0 + nb). */
  patches(
    dir: "cols" | "image",
    image: Float32Array,
    cols: Float32Array,
    n0: number,
    nb: number,
    geo: ConvGeometry,
  ): void;
}

/** The shape of one convolution: input H×W×C, kernel k, stride, padding, output ho×wo. */
export interface ConvGeometry {
  h: number;
  w: number;
  c: number;
  k: number;
  stride: number;
  pad: number;
  ho: number;
  wo: number;
}

const SOURCE = new URL("../../native/kernels.c", import.meta.url);
const CACHE = new URL("../../.native/", import.meta.url);
/**
 * No FMA contraction and no fast-math, so every operation rounds as V8's does; vectorisation is fine (IEEE
 * operations give the same result in a vector lane as in a scalar register).
 */
const CFLAGS = ["-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno"];
/** Tried first: the vector units of this CPU (the library is cached per CPU model, see {@link cpuTag}). */
const NATIVE_ARCH = ["-march=native", "-mprefer-vector-width=512"];

/** This CPU's model and feature flags, so that a `.native/` copied to another machine is rebuilt there. */
function cpuTag(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return [/^model name.*$/m, /^flags.*$/m].map((r) => info.match(r)?.[0] ?? "").join("\n");
  } catch {
    return "";
  }
}

let loaded: Promise<{ kernels: FusedKernels | null; reason: string }> | undefined;

/**
 * The native kernels, compiled on first use with the system C compiler into `.native/` (keyed by a hash of the
 * source and flags) and loaded through FFI; null, with the reason, when there is no compiler or it fails.
 * `TICKETSWEEP_KERNELS` names a prebuilt library instead (an empty value turns the kernels off).
 */
export function loadKernels(): Promise<{ kernels: FusedKernels | null; reason: string }> {
  loaded ??= load().catch((e) => ({ kernels: null, reason: `native kernels unavailable: ${(e as Error).message}` }));
  return loaded;
}

async function load(): Promise<{ kernels: FusedKernels | null; reason: string }> {
  const env = Deno.env.get("TICKETSWEEP_KERNELS");
  if (env === "") return { kernels: null, reason: "native kernels off (TICKETSWEEP_KERNELS is empty)" };
  let path = env;
  if (!path) {
    const src = await Deno.readTextFile(SOURCE);
    const tag = sha256Hex(src + CFLAGS.join(" ") + NATIVE_ARCH.join(" ") + Deno.build.target + cpuTag()).slice(0, 12);
    const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
    path = new URL(`libticketsweep_kernels-${tag}.${ext}`, CACHE).pathname;
    try {
      await Deno.stat(path);
    } catch {
      await compile(path);
    }
  }
  return { kernels: open(path), reason: `native kernels ${path.split("/").at(-1)}` };
}

async function compile(path: string): Promise<void> {
  await Deno.mkdir(new URL(".", `file://${path}`), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  const cc = Deno.env.get("CC") ?? "cc";
  const build = (flags: string[]) =>
    new Deno.Command(cc, { args: [...flags, "-o", tmp, SOURCE.pathname, "-lm"], stderr: "piped" }).output();
  let out: Deno.CommandOutput;
  try {
    out = await build([...CFLAGS, ...NATIVE_ARCH]);
    if (!out.success) out = await build(CFLAGS); // a compiler without these flags
  } catch {
    throw new Error(`no C compiler ('${cc}'); install one (apt-get install gcc) or use the TypeScript loops`);
  }
  if (!out.success) throw new Error(`${cc} failed: ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
  await Deno.rename(tmp, path); // atomic: concurrent workers may compile at once
}

/** FFI types by letter: b buffer, i i32, f f32, d f64 (spaces only group them for reading). */
const FFI = { b: "buffer", i: "i32", f: "f32", d: "f64" } as const;
type FfiParams<S extends string> = S extends `${infer C}${infer R}`
  ? C extends keyof typeof FFI ? [(typeof FFI)[C], ...FfiParams<R>] : FfiParams<R>
  : [];

/** A void C function's FFI signature from its parameter letters, e.g. `fn("bb i f")`. */
function fn<S extends string>(spec: S): { parameters: FfiParams<S>; result: "void" } {
  const parameters = [...spec].flatMap((c) => c in FFI ? [FFI[c as keyof typeof FFI]] : []);
  return { parameters: parameters as FfiParams<S>, result: "void" };
}

function open(path: string): FusedKernels {
  const lib = Deno.dlopen(path, {
    ts_gates_forward: fn("bbbb i d bbbb"),
    ts_gates_adam: fn("bbbbbb i dddd b"),
    ts_topk_weights: fn("bbbbb ii"),
    ts_popup_sgd: fn("bbbb i fff"),
    ts_hc_forward: fn("bbbbb i fff bb"),
    ts_hc_grad: fn("bbbbb i fffff b"),
    ts_adam_step: fn("bbbb i ffff"),
    ts_sgd_step: fn("bbb i fff"),
    ts_relu: fn("b i"),
    ts_relu_grad: fn("bb i"),
    ts_cs_forward: fn("bbbb i ff b"),
    ts_cs_sgd: fn("bbbbb i fffff"),
    ts_cs_grad: fn("bbbb i ff"),
    ts_im2col: fn("bb iiiiiiiiii"),
    ts_col2im: fn("bb iiiiiiiiii"),
  });
  const { KN, WN, FN } = ZIGGURAT;
  const f = lib.symbols;
  return {
    description: "native fused kernels",
    gatesForward(mu, w, u, weff, sigma, st) {
      f.ts_gates_forward(mu, w, u, weff, mu.length, sigma, st, KN, WN, FN);
    },
    gatesAdam(mu, u, g, w, m1, m2, k, invS, lr, ic2) {
      f.ts_gates_adam(mu, u, g, w, m1, m2, mu.length, k, invS, lr, ic2, GAUSS_TABLE);
    },
    hcForward(s, z, la, w, weff, beta, gamma, span, st) {
      f.ts_hc_forward(s, z, la, w, weff, la.length, beta, gamma, span, st, POW2F);
    },
    hcGrad(dz, g, w, s, la, beta, gamma, span, shift, coef) {
      f.ts_hc_grad(dz, g, w, s, la, la.length, beta, gamma, span, shift, coef, POW2F);
    },
    adamStep(p, g, m1, m2, lr, wd, c1, c2) {
      f.ts_adam_step(p, g, m1, m2, p.length, lr, wd, c1, c2);
    },
    sgdStep(p, g, mom, lr, momentum, wd) {
      f.ts_sgd_step(p, g, mom, p.length, lr, momentum, wd);
    },
    relu(y) {
      f.ts_relu(y, y.length);
    },
    reluGrad(dy, y) {
      f.ts_relu_grad(dy, y, dy.length);
    },
    csForward(sc, w, sig, weff, beta, c) {
      f.ts_cs_forward(sc, w, sig, weff, sc.length, beta, c, POW2F);
    },
    csSgd(sc, g, w, sig, mom, coef, k, lr, momentum, wd) {
      f.ts_cs_sgd(sc, g, w, sig, mom, sc.length, coef, k, lr, momentum, wd);
    },
    csGrad(grad, g, w, sig, coef, k) {
      f.ts_cs_grad(grad, g, w, sig, grad.length, coef, k);
    },
    popupForward(scores, w, mask, weff, scratch, keep) {
      f.ts_topk_weights(scores, w, mask, weff, scratch, scores.length, keep);
    },
    popupSgd(sc, g, w, mom, momentum, wd, lr) {
      f.ts_popup_sgd(sc, g, w, mom, sc.length, momentum, wd, lr);
    },
    patches(dir, image, cols, n0, nb, g) {
      const args = [n0, nb, g.h, g.w, g.c, g.k, g.stride, g.pad, g.ho, g.wo] as const;
      if (dir === "cols") f.ts_im2col(image, cols, ...args);
      else f.ts_col2im(cols, image, ...args);
    },
  };
}
