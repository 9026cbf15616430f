/**
 * The test suite's set-up: `deno task test` runs this before `deno test`. It finds which of the system packages
 * the tests need are missing and installs them with apt-get when it may (root, or `sudo -n` without a password);
 * when it may not, it stops at once with one message that names each missing piece and the install command.
 *
 * Usage: deno run -A tools/test_setup.ts [--check]
 *   --check  only check, never install: exit 1 with the message when something is missing
 *
 * Where it looks, as the code that uses each piece does:
 *   nats-server     NATS_SERVER_BIN, else `nats-server` on PATH
 *   C compiler      CC, else `cc` on PATH; it must build a shared library that includes <math.h>
 *   Chromium        chromium, chromium-browser or google-chrome on PATH (test/_chromium.ts)
 *   OpenBLAS        TICKETSWEEP_OPENBLAS (empty: hidden), else libopenblas.so.0 / libopenblas.so
 *   Vulkan loader   libvulkan.so.1
 *   NumPy           `python3 -c "import numpy"` with python3 on PATH (tools/ticket_forward.py)
 *   Vulkan driver   an ICD manifest: VK_DRIVER_FILES or VK_ICD_FILENAMES, else *.json in the loader's
 *                   vulkan/icd.d directories (XDG_CONFIG_DIRS, /etc, XDG_DATA_HOME, XDG_DATA_DIRS)
 * Libraries are looked up in LD_LIBRARY_PATH, the directories of /etc/ld.so.conf.d and the standard ones.
 * TICKETSWEEP_SETUP_ROOT (default /) prefixes those system paths (/etc, /usr, /lib, os-release), so a test can
 * point them at an empty directory.
 */
import { blasCandidates } from "../src/engine/blas.ts";

/** One thing the tests need: what it is for, the Debian packages that provide it, and how to find it. */
export interface Requirement {
  name: string;
  why: string;
  packages: string[];
  /** Where it was found, or null with what was looked at. */
  find(p: Probe): Promise<{ found: string } | { found: null; looked: string }>;
}

/** What a check reads: the environment and the root of the system paths. */
export interface Probe {
  env(name: string): string | undefined;
  root: string;
}

export function defaultProbe(): Probe {
  const root = (Deno.env.get("TICKETSWEEP_SETUP_ROOT") ?? "/").replace(/\/+$/, "");
  return { env: (n) => Deno.env.get(n), root };
}

const isExecutable = (path: string) => {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
};

const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

/** The executable `name` would run as: itself when it has a slash, else the first match on PATH. */
export function which(name: string, p: Probe): string | null {
  if (name.includes("/")) return isExecutable(name) ? name : null;
  for (const dir of (p.env("PATH") ?? "").split(":")) {
    if (dir && isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return null;
}

/** Directories the dynamic loader searches, in its order. */
export function libraryDirs(p: Probe): string[] {
  const dirs = (p.env("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean);
  try {
    for (const e of [...Deno.readDirSync(`${p.root}/etc/ld.so.conf.d`)].sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (!e.name.endsWith(".conf")) continue;
      for (const line of Deno.readTextFileSync(`${p.root}/etc/ld.so.conf.d/${e.name}`).split("\n")) {
        if (line.trim().startsWith("/")) dirs.push(`${p.root}${line.trim()}`);
      }
    }
  } catch { /* no ld.so.conf.d */ }
  const triplet = `${Deno.build.arch}-linux-gnu`;
  for (
    const d of [`/lib/${triplet}`, `/usr/lib/${triplet}`, "/usr/local/lib", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
  ) {
    dirs.push(`${p.root}${d}`);
  }
  return dirs;
}

/** The path of library `name`, or null. Under the real root, whatever the loader itself can open counts too. */
export function findLibrary(name: string, p: Probe): string | null {
  if (name.includes("/")) return exists(name) ? name : null;
  for (const dir of libraryDirs(p)) if (exists(`${dir}/${name}`)) return `${dir}/${name}`;
  if (p.root === "") {
    try {
      Deno.dlopen(name, {}).close();
      return name;
    } catch { /* not loadable */ }
  }
  return null;
}

/** The directories the Vulkan loader reads ICD manifests from. */
export function icdDirs(p: Probe): string[] {
  const list = (v: string | undefined, dflt: string[]) => v ? v.split(":").filter(Boolean) : dflt;
  const home = p.env("XDG_DATA_HOME") ?? (p.env("HOME") ? `${p.env("HOME")}/.local/share` : undefined);
  return [
    ...list(p.env("XDG_CONFIG_DIRS"), [`${p.root}/etc/xdg`]),
    `${p.root}/etc`,
    ...(home ? [home] : []),
    ...list(p.env("XDG_DATA_DIRS"), [`${p.root}/usr/local/share`, `${p.root}/usr/share`]),
  ].map((d) => `${d}/vulkan/icd.d`);
}

/** Whether /etc/os-release names Ubuntu (its Chromium package has another name). */
function isUbuntu(p: Probe): boolean {
  try {
    return /^(ID|ID_LIKE)=.*\bubuntu\b/m.test(Deno.readTextFileSync(`${p.root}/etc/os-release`));
  } catch {
    return false;
  }
}

const CHROMIUM = ["chromium", "chromium-browser", "google-chrome"];

/** Everything the test suite needs beyond Deno, in install order. */
export function requirements(p: Probe): Requirement[] {
  return [
    {
      name: "nats-server",
      why: "the integration tests start a real broker",
      packages: ["nats-server"],
      find: (p) => {
        const bin = p.env("NATS_SERVER_BIN") ?? "nats-server";
        const found = which(bin, p);
        return Promise.resolve(found ? { found } : { found: null, looked: `'${bin}' on PATH` });
      },
    },
    {
      name: "OpenBLAS",
      why: "the blas engine (test/engines_test.ts)",
      packages: ["libopenblas0"],
      find: (p) => {
        const names = blasCandidates().filter((n) => !/\.(dylib|dll)$/.test(n));
        if (!names.length) return Promise.resolve({ found: null, looked: "hidden by TICKETSWEEP_OPENBLAS=''" });
        for (const n of names) {
          const found = findLibrary(n, p);
          if (found) return Promise.resolve({ found });
        }
        return Promise.resolve({ found: null, looked: names.join(", ") });
      },
    },
    {
      name: "C compiler",
      why: "builds the native kernels, native/kernels.c (test/kernels_test.ts)",
      packages: ["gcc", "libc6-dev"],
      find: async (p) => {
        const name = p.env("CC") ?? "cc";
        const cc = which(name, p);
        if (!cc) return { found: null, looked: `'${name}' on PATH` };
        const error = await compileProbe(cc);
        return error ? { found: null, looked: `${cc} cannot build a shared library: ${error}` } : { found: cc };
      },
    },
    {
      name: "Chromium",
      why: "the HTML report test opens report.html in headless Chromium",
      packages: [isUbuntu(p) ? "chromium-browser" : "chromium"],
      find: (p) => {
        for (const bin of CHROMIUM) {
          const found = which(bin, p);
          if (found) return Promise.resolve({ found });
        }
        return Promise.resolve({ found: null, looked: `${CHROMIUM.join(", ")} on PATH` });
      },
    },
    {
      name: "Vulkan loader",
      why: "the WebGPU engine's tests",
      packages: ["libvulkan1"],
      find: (p) => {
        const found = findLibrary("libvulkan.so.1", p);
        return Promise.resolve(found ? { found } : { found: null, looked: "libvulkan.so.1" });
      },
    },
    {
      name: "Vulkan driver",
      why: "a WebGPU adapter for those tests (Mesa's lavapipe where there is no GPU)",
      packages: ["mesa-vulkan-drivers"],
      find: (p) => {
        const files = p.env("VK_DRIVER_FILES") ?? p.env("VK_ICD_FILENAMES");
        if (files) {
          const found = files.split(":").find((f) => f && exists(f));
          return Promise.resolve(
            found ? { found } : { found: null, looked: `VK_DRIVER_FILES/VK_ICD_FILENAMES ${files}` },
          );
        }
        const dirs = icdDirs(p);
        for (const dir of dirs) {
          try {
            const json = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".json")).sort();
            if (json.length) return Promise.resolve({ found: `${dir}/${json[0]}` });
          } catch { /* no such directory */ }
        }
        return Promise.resolve({ found: null, looked: `an ICD manifest (*.json) in ${dirs.join(", ")}` });
      },
    },
    {
      name: "NumPy",
      why: "tools/ticket_forward.py rebuilds exported tickets in NumPy (test/ticket_export_test.ts)",
      packages: ["python3-numpy"],
      find: async (p) => {
        const python = which("python3", p);
        if (!python) return { found: null, looked: "'python3' on PATH" };
        const ok = await new Deno.Command(python, {
          args: ["-c", "import numpy"],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).output().then((o) => o.success, () => false);
        return ok ? { found: `${python} with numpy` } : { found: null, looked: `\`${python} -c "import numpy"\`` };
      },
    },
  ];
}

/** Builds a shared library with the headers native/kernels.c includes; the compiler's first error, or "". */
async function compileProbe(cc: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ticketsweep-cc-" });
  try {
    await Deno.writeTextFile(
      `${dir}/probe.c`,
      "#include <math.h>\n#include <stdint.h>\n#include <string.h>\n" +
        "double probe(double x) { uint8_t b[8]; memcpy(b, &x, 8); return sqrt(x) + b[0]; }\n",
    );
    const out = await new Deno.Command(cc, {
      args: ["-O2", "-fPIC", "-shared", "-o", `${dir}/probe.so`, `${dir}/probe.c`, "-lm"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success ? "" : new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? `exit ${out.code}`;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A missing requirement and what was looked at. */
export interface Missing {
  req: Requirement;
  looked: string;
}

/** The requirements not met here. */
export async function findMissing(p: Probe = defaultProbe()): Promise<Missing[]> {
  const missing: Missing[] = [];
  for (const req of requirements(p)) {
    const r = await req.find(p);
    if (r.found === null) missing.push({ req, looked: r.looked });
  }
  return missing;
}

/** The packages that provide the missing pieces, in order, each once. */
export const packagesOf = (missing: Missing[]) => [...new Set(missing.flatMap((m) => m.req.packages))];

/** The command a user runs to install them (`sudo ` unless root). */
export function installCommand(missing: Missing[], root = Deno.uid() === 0): string {
  const sudo = root ? "" : "sudo ";
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${packagesOf(missing).join(" ")}`;
}

/** The one message printed when the set-up stops: each missing piece, why it is not installed, the command. */
export function stopMessage(missing: Missing[], reason: string, root = Deno.uid() === 0): string {
  return [
    `test set-up: ${missing.length} of the tests' system requirements ${missing.length === 1 ? "is" : "are"} missing:`,
    ...missing.map((m) => `  - ${m.req.name}: ${m.req.why}; looked for ${m.looked}`),
    `${reason}. Install ${missing.length === 1 ? "it" : "them"} with:`,
    `  ${installCommand(missing, root)}`,
    "then run `deno task test` again.",
  ].join("\n");
}

/** How apt-get may be run here: [] as root, ["sudo", "-n"] with password-less sudo; else why not. */
export async function installer(p: Probe, checkOnly: boolean): Promise<{ prefix: string[] } | { why: string }> {
  if (checkOnly) return { why: "Not installing: --check was given" };
  if (!which("apt-get", p)) {
    return { why: "Not installing: no apt-get on PATH (the set-up installs on Debian and Ubuntu)" };
  }
  if (Deno.uid() === 0) return { prefix: [] };
  const sudo = which("sudo", p);
  if (!sudo) return { why: "Not installing: not root, and there is no sudo" };
  const ok = await new Deno.Command(sudo, { args: ["-n", "true"], stdin: "null", stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);
  return ok ? { prefix: [sudo, "-n"] } : { why: "Not installing: not root, and `sudo -n` needs a password" };
}

async function apt(prefix: string[], args: string[]): Promise<void> {
  const [cmd, ...rest] = [...prefix, ...(prefix.length ? ["DEBIAN_FRONTEND=noninteractive"] : []), "apt-get", ...args];
  const out = await new Deno.Command(cmd!, {
    args: rest,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const tail = text.split("\n").map((l) => l.trim()).filter(Boolean).slice(-3).join(" / ");
    throw new Error(`\`${["apt-get", ...args].join(" ")}\` failed (exit ${out.code})${tail ? `: ${tail}` : ""}`);
  }
}

/** Checks, installs what it may, and returns the exit status (0: the tests can run). */
export async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length) {
    console.error(
      `test set-up: unknown argument ${unknown.join(" ")}\nUsage: deno run -A tools/test_setup.ts [--check]`,
    );
    return 2;
  }
  if (Deno.build.os !== "linux") {
    console.log(
      `test set-up: ${Deno.build.os} is not set up automatically (Debian and Ubuntu are); the tests need nats-server, ` +
        "OpenBLAS, a C compiler, Chromium, a WebGPU adapter and Python 3 with NumPy",
    );
    return 0;
  }
  const p = defaultProbe();
  const missing = await findMissing(p);
  if (!missing.length) {
    console.log(`test set-up: ${requirements(p).map((r) => r.name).join(", ")}: all present`);
    return 0;
  }
  const how = await installer(p, args.includes("--check"));
  if ("why" in how) {
    console.error(stopMessage(missing, how.why));
    return 1;
  }
  const pkgs = packagesOf(missing);
  console.log(
    `test set-up: installing ${pkgs.join(" ")} with apt-get (missing: ${missing.map((m) => m.req.name).join(", ")})`,
  );
  try {
    await apt(how.prefix, ["update", "-qq"]);
    await apt(how.prefix, ["install", "-y", "-qq", ...pkgs]);
  } catch (e) {
    console.error(stopMessage(missing, (e as Error).message));
    return 1;
  }
  const still = await findMissing(p);
  if (still.length) {
    console.error(stopMessage(still, "apt-get installed them, and they are still not found here"));
    return 1;
  }
  console.log(`test set-up: installed ${pkgs.join(" ")}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
