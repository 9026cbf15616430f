import { sha256Hex } from "../util/hash.ts";

/**
 * Native kernels: native/kernels.c (the optimiser steps, ReLU, conv2d's im2col / col2im) and the kernels each
 * mask method registers by name next to its module ({@link registerKernels}), compiled together on first use
 * with the system C compiler and loaded through FFI ({@link loadKernels}). They are an optional faster path for
 * per-weight loops that otherwise run in TypeScript, giving the same numbers bit for bit (test/kernels_test.ts
 * and test/method_conformance_test.ts compare them). This file names no method: a method brings its own C
 * source, FFI signatures and binding. The matrix products are not here: they are the engine's
 * (src/engine/engine.ts). When no C compiler is found, every caller runs its TypeScript loop instead.
 *
 * @module
 */

/** The core native kernels by purpose, and the ones registered by name; each mirrors one TypeScript loop. */
export interface FusedKernels {
  readonly description: string;
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
  /** Conv2d's im2col (`dir` "cols") and col2im (`dir` "image", accumulating) for samples [n0, n0 + nb). */
  patches(
    dir: "cols" | "image",
    image: Float32Array,
    cols: Float32Array,
    n0: number,
    nb: number,
    geo: ConvGeometry,
  ): void;
  /** The registered kernels this library was built with, bound, by registration name. */
  readonly registered: ReadonlyMap<string, unknown>;
}

/** A native function as bound: buffers (typed arrays) and numbers, in its C parameter order. */
export type NativeFn = (...args: (ArrayBufferView | number)[]) => void;

/**
 * Kernels that a component (a mask method) brings: a C source compiled with native/kernels.c (it may include
 * "kernels.h"), the FFI signatures of its exported functions ({@link fn}), and how to bind them to the typed
 * interface its TypeScript calls.
 */
export interface KernelSet<T> {
  /** The registration name (the method's name). */
  readonly name: string;
  readonly source: URL;
  readonly symbols: Record<string, { parameters: Deno.NativeType[]; result: "void" }>;
  bind(symbols: Record<string, NativeFn>): T;
}

/** A registered kernel set: `of(kernels)` is its bound kernels when the loaded library has them, else null. */
export interface KernelHandle<T> {
  readonly name: string;
  of(kernels: FusedKernels | null | undefined): T | null;
}

const REGISTERED = new Map<string, KernelSet<unknown>>();

/** The names of the registered kernel sets (a library loaded now is built with all of them). */
export function registeredKernelNames(): string[] {
  return [...REGISTERED.keys()].sort();
}

/**
 * Registers a component's native kernels by name, next to the TypeScript loops they speed up (call it at module
 * level; libraries loaded afterwards include them).
 *
 * @throws {Error} when another set has the name.
 */
export function registerKernels<T>(set: KernelSet<T>): KernelHandle<T> {
  const had = REGISTERED.get(set.name);
  if (had && had.source.href !== set.source.href) throw new Error(`native kernels '${set.name}' registered twice`);
  REGISTERED.set(set.name, set as KernelSet<unknown>);
  return { name: set.name, of: (k) => (k?.registered.get(set.name) as T | undefined) ?? null };
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
const HEADER = new URL("../../native/kernels.h", import.meta.url);
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

type Loaded = { kernels: FusedKernels | null; reason: string };
/** One load per set of registered kernels (a set registered later builds a library that includes it). */
const loaded = new Map<string, Promise<Loaded>>();

/**
 * The native kernels (the core and every registered set), compiled on first use with the system C compiler into
 * `.native/` (keyed by a hash of the sources and flags) and loaded through FFI; null, with the reason, when there
 * is no compiler or it fails. `TICKETSWEEP_KERNELS` names a prebuilt library instead (an empty value turns the
 * kernels off).
 */
export function loadKernels(): Promise<Loaded> {
  const sets = [...REGISTERED.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const key = sets.map((k) => k.name).join(",");
  let p = loaded.get(key);
  if (!p) {
    p = load(sets).catch((e) => ({ kernels: null, reason: `native kernels unavailable: ${(e as Error).message}` }));
    loaded.set(key, p);
  }
  return p;
}

async function load(sets: KernelSet<unknown>[]): Promise<Loaded> {
  const env = Deno.env.get("TICKETSWEEP_KERNELS");
  if (env === "") return { kernels: null, reason: "native kernels off (TICKETSWEEP_KERNELS is empty)" };
  let path = env;
  if (!path) {
    const sources = [SOURCE, ...sets.map((k) => k.source)];
    const text = (await Promise.all([HEADER, ...sources].map((u) => Deno.readTextFile(u)))).join("\n");
    const tag = sha256Hex(text + CFLAGS.join(" ") + NATIVE_ARCH.join(" ") + Deno.build.target + cpuTag()).slice(0, 12);
    const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
    path = new URL(`libticketsweep_kernels-${tag}.${ext}`, CACHE).pathname;
    try {
      await Deno.stat(path);
    } catch {
      await compile(path, sources);
    }
  }
  return { kernels: open(path, sets), reason: `native kernels ${path.split("/").at(-1)}` };
}

async function compile(path: string, sources: URL[]): Promise<void> {
  await Deno.mkdir(new URL(".", `file://${path}`), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  const cc = Deno.env.get("CC") ?? "cc";
  const include = `-I${new URL(".", HEADER).pathname}`;
  const files = sources.map((u) => u.pathname);
  const build = (flags: string[]) =>
    new Deno.Command(cc, { args: [...flags, include, "-o", tmp, ...files, "-lm"], stderr: "piped" }).output();
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
export function fn<S extends string>(spec: S): { parameters: FfiParams<S>; result: "void" } {
  const parameters = [...spec].flatMap((c) => c in FFI ? [FFI[c as keyof typeof FFI]] : []);
  return { parameters: parameters as FfiParams<S>, result: "void" };
}

function open(path: string, sets: KernelSet<unknown>[]): FusedKernels {
  const lib = Deno.dlopen(path, {
    ts_adam_step: fn("bbbb i ffff"),
    ts_sgd_step: fn("bbb i fff"),
    ts_relu: fn("b i"),
    ts_relu_grad: fn("bb i"),
    ts_im2col: fn("bb iiiiiiiiii"),
    ts_col2im: fn("bb iiiiiiiiii"),
  });
  const registered = new Map<string, unknown>();
  for (const set of sets) {
    const own = Deno.dlopen(path, set.symbols); // the same library: its symbols, typed by the set
    registered.set(set.name, set.bind(own.symbols as unknown as Record<string, NativeFn>));
  }
  const f = lib.symbols;
  return {
    description: "native fused kernels",
    registered,
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
    patches(dir, image, cols, n0, nb, g) {
      const args = [n0, nb, g.h, g.w, g.c, g.k, g.stride, g.pad, g.ho, g.wo] as const;
      if (dir === "cols") f.ts_im2col(image, cols, ...args);
      else f.ts_col2im(cols, image, ...args);
    },
  };
}
