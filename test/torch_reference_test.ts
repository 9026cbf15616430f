// The bench's PyTorch reference (bench/torch_methods.py) trains on the digits ticketsweep's MNIST loader reads: the
// .npy files the bench writes hold them bit for bit (checked in NumPy alone), and, where PyTorch is installed, the
// script trains on them to a ticket that classifies (a wrong file or misaligned labels would sit near 10%).
import assert from "node:assert/strict";
import { findTorchPython, runTorch, writeMnistNpy } from "../bench/torch_reference.ts";
import { loadMnistPool } from "../src/train/data/mnist.ts";

const torch = await findTorchPython();

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("torch reference - the .npy digits are the loader's, bit for bit, as NumPy reads them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeMnistNpy(dir);
    const script = "import hashlib, json, sys, numpy as np\n" +
      "x = np.load(sys.argv[1] + '/mnist_x.npy'); y = np.load(sys.argv[1] + '/mnist_y.npy')\n" +
      "print(json.dumps({'x': [list(x.shape), str(x.dtype), hashlib.sha256(x.tobytes()).hexdigest()],\n" +
      "  'y': [list(y.shape), str(y.dtype), hashlib.sha256(y.tobytes()).hexdigest()]}))";
    const out = await new Deno.Command("python3", { args: ["-c", script, dir], stdout: "piped", stderr: "piped" })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    const pool = await loadMnistPool();
    const xBytes = new Uint8Array(pool.x.buffer as ArrayBuffer, pool.x.byteOffset, pool.x.byteLength);
    assert.deepEqual(got, {
      x: [[10000, 784], "float32", await sha256(xBytes)],
      y: [[10000], "uint8", await sha256(pool.y as Uint8Array<ArrayBuffer>)],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: `torch reference - trains on the digits to a ticket that classifies${
    torch ? ` (${torch.note})` : " (ignored: no python3 imports torch)"
  }`,
  ignore: !torch,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeMnistNpy(dir);
      const [steps] = await runTorch(torch!, ["steps", "cs", "--data", dir, "--seconds", "0.2"]);
      assert.ok(Number(steps!.steps_per_s) > 0 && Number.isFinite(Number(steps!.page_faults_per_step)));
      const rows = await runTorch(torch!, ["trial", "gates", "--data", dir, "--epochs", "1", "--lambdas", "1e-6"]);
      assert.equal(rows.length, 1);
      assert.ok(Number(rows[0]!.accuracy) > 0.6, `test accuracy ${rows[0]!.accuracy} after one epoch`);
      assert.ok(Number(rows[0]!.val_accuracy) > 0.6, `validation accuracy ${rows[0]!.val_accuracy}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
