// tools/test_setup.ts, the set-up `deno task test` runs first, as a fresh machine with only Deno would see it.
import assert from "node:assert/strict";
import { ROOT } from "./_fixtures.ts";

const SETUP = `${ROOT}tools/test_setup.ts`;

async function setupCheck(deno: string, env: Record<string, string>, clearEnv: boolean) {
  const out = await new Deno.Command(deno, {
    args: ["run", "-A", SETUP, "--check"],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

Deno.test("test set-up - with only deno on PATH and an empty system root, --check names each missing piece and the apt-get command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsweep-setup-" });
  try {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.mkdir(`${dir}/root`);
    await Deno.symlink(Deno.execPath(), `${dir}/bin/deno`);
    const env: Record<string, string> = {
      PATH: `${dir}/bin`,
      HOME: Deno.env.get("HOME") ?? dir,
      XDG_DATA_HOME: `${dir}/root`,
      TICKETSWEEP_SETUP_ROOT: `${dir}/root`,
    };
    const denoDir = Deno.env.get("DENO_DIR");
    if (denoDir) env.DENO_DIR = denoDir;
    const { code, text } = await setupCheck(`${dir}/bin/deno`, env, true);
    assert.equal(code, 1, text);
    for (
      const piece of ["nats-server", "OpenBLAS", "C compiler", "Chromium", "Vulkan loader", "Vulkan driver", "NumPy"]
    ) {
      assert.match(text, new RegExp(`^  - ${piece}: `, "m"), `${piece} not named:\n${text}`);
    }
    assert.match(text, /7 of the tests' system requirements are missing/);
    assert.match(text, /^Not installing: --check was given. Install them with:$/m);
    const sudo = Deno.uid() === 0 ? "" : "sudo ";
    assert.ok(
      text.includes(
        `  ${sudo}apt-get update && ${sudo}apt-get install -y nats-server libopenblas0 gcc libc6-dev chromium ` +
          "libvulkan1 mesa-vulkan-drivers python3-numpy\n",
      ),
      text,
    );
    assert.doesNotMatch(text, /^ {2}- deno/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("test set-up - on this machine (after the set-up ran) --check finds everything", async () => {
  const { code, text } = await setupCheck(Deno.execPath(), {}, false);
  assert.equal(code, 0, text);
  assert.match(text, /nats-server, OpenBLAS, C compiler, Chromium, Vulkan loader, Vulkan driver, NumPy: all present/);
});
