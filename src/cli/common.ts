import { parseArgs, type ParseArgsConfig } from "node:util";
import { TicketsweepError } from "../util/errors.ts";
import { clip, printable, terminalSafe } from "../util/clip.ts";
import { maskedUrls, redactCredentials, withoutCredentials } from "../util/redact.ts";

/**
 * A command's flags and positional arguments; an unknown flag is a usage error naming it, and a flag that takes
 * a value given twice (`--nats a --nats b`: the last one was taken silently) is one line naming it.
 */
export function parseCli<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
  usage: string,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const positionals = parsed.positionals;
    const seen = new Set<string>();
    for (const t of parsed.tokens ?? []) {
      if (t.kind !== "option" || options?.[t.name]?.type !== "string") continue;
      // the values are not echoed: one of them may be a password or token
      if (seen.has(t.name)) throw new TicketsweepError(`--${t.name} is given more than once: give it once`);
      seen.add(t.name);
    }
    for (const [name, v] of Object.entries(values)) {
      // `--runs ""` would put run directories at the root of the file system, `--nats ""` silently mean none
      if (typeof v === "string" && !v.trim()) {
        throw new TicketsweepError(`--${name} is empty: give it a value, or leave the flag out`);
      }
    }
    if (values.help) {
      console.log(usage);
      Deno.exit(0);
    }
    return { values, positionals };
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      throw new TicketsweepError(`${(e as Error).message}\n\n${usage}`);
    }
    throw e;
  }
}

/** The most characters of one line of an error a command prints. */
export const MAX_ERROR_LINE = 1000;

/**
 * An error as a command prints it: {@link shown}, each line cut to {@link MAX_ERROR_LINE} characters (a line
 * echoing a 200,000-character spec value printed all of it).
 */
export function errorText(message: string): string {
  return `error: ${shown(message).split("\n").map((l) => clip(l, MAX_ERROR_LINE)).join("\n")}`;
}

/** Runs a command's main: a {@link TicketsweepError} prints its message and exits 1; anything else rethrows. */
export async function runMain(main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    Deno.exit(code ?? 0);
  } catch (e) {
    if (e instanceof TicketsweepError) {
      console.error(errorText(e.message));
      Deno.exit(1);
    }
    const denied = permissionDenied(e);
    if (denied) {
      console.error(`error: ${denied}`);
      Deno.exit(1);
    }
    throw e;
  }
}

/**
 * One line for an error the broker raised because these credentials lack a permission (found anywhere in the
 * error's cause chain); undefined for any other error.
 */
export function permissionDenied(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    const m = /Permissions? Violation for (\w+) to "?([^"\s]+)"?/i.exec(c.message);
    if (m) {
      return `the broker refused this: these credentials may not ${m[1]!.toLowerCase()} to ${
        m[2]
      }. Worker credentials (worker.env) can only run trials; sweep, status and cancel need the ` +
        "coordinator's (coordinator.env from deno task broker-config)";
    }
  }
  return undefined;
}

/**
 * Gives the GPU libraries a valid `XDG_RUNTIME_DIR` (a private temporary one) when the environment has none,
 * so probing WebGPU does not print "XDG_RUNTIME_DIR is invalid or not set" (twice per worker on a server).
 */
export function quietGpuProbe(): void {
  try {
    const dir = Deno.env.get("XDG_RUNTIME_DIR");
    if (dir && Deno.statSync(dir).isDirectory) return;
  } catch { /* not there: make one */ }
  try {
    const tmp = Deno.makeTempDirSync({ prefix: "ticketsweep-xdg-" });
    Deno.chmodSync(tmp, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", tmp);
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(tmp, { recursive: true });
      } catch { /* gone */ }
    });
  } catch { /* the message stays */ }
}

/**
 * A text as a command prints it: the passwords and tokens of broker URLs hidden (`nats://user:***@host`) and the
 * bytes of a bad file escaped (`\x1b`), whatever line carries them.
 */
export function shown(text: string): string {
  return terminalSafe(redactCredentials(text));
}

/**
 * A path (or other name) as a command prints it inside a line: {@link shown}, its line breaks and tabs escaped too
 * (`\x0a`), so that a run directory's name cannot start a line of its own.
 */
export function shownPath(path: string): string {
  return printable(shown(path), Number.MAX_SAFE_INTEGER);
}

/** A timestamped log line to stderr ({@link shown}: no URL password, no raw control bytes). */
export function logLine(line: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${shown(line)}`);
}

/** The bounds of an {@link intFlag}: from `min` (default 0) to `max`, in `unit` (said in the message). */
export interface IntRange {
  min?: number;
  max?: number;
  unit?: string;
}

/**
 * Parses a whole-number flag: decimal digits only (`2abc`, `0x10`, `1e9`, `1.0`, `-1`, `1e400` and an empty value
 * are refused), within `range` when given; anything else is one line naming the flag and what it takes.
 */
export function intFlag(name: string, v: string | boolean | undefined, def: number, range: IntRange = {}): number {
  if (v === undefined || typeof v === "boolean") return def;
  const { min = 0, max = Number.MAX_SAFE_INTEGER, unit } = range;
  const n = /^[0-9]{1,16}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) {
    const what = max === Number.MAX_SAFE_INTEGER && min === 0
      ? "a whole number (digits only)"
      : `a whole number from ${min} to ${max}${unit ? ` ${unit}` : ""}`;
    throw new TicketsweepError(`--${name} must be ${what}: current value is '${printable(v, 40)}'`);
  }
  return n;
}

/** `--pack K|auto` (default auto): K from 1 to 1024 (0 was taken as 1, silently). */
export function packFlag(v: string | boolean | undefined): number | "auto" {
  if (v === undefined || v === "auto") return "auto";
  return intFlag("pack", v, 1, { min: 1, max: 1024, unit: "trials (or auto)" });
}

/** NATS connection flags shared by `sweep`, `worker`, `status`. */
export const NATS_FLAGS = {
  nats: { type: "string" },
  token: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  creds: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

/** The help lines of {@link NATS_FLAGS}. */
export const NATS_FLAGS_HELP =
  `  --nats URL,URL,...  broker URL, or a cluster's node URLs: fails over between them (or NATS_URL)
  --token T           auth token (or NATS_TOKEN)
  --user U            user name (or NATS_USER)
  --password P        password (or NATS_PASSWORD)
  --creds FILE        NATS credentials file (JWT + NKey seed; or NATS_CREDS)
  --tls-ca FILE       CA certificate to verify the broker (TLS)
  --tls-cert FILE     client certificate (mutual TLS), with --tls-key FILE`;

/**
 * The URLs of `--nats` (or `NATS_URL`): one, or a cluster's nodes separated by commas; each `scheme://host:port`
 * (nats, tls, ws, wss) or `host:port`.
 */
export function natsUrls(value: string): string[] {
  const urls = value.split(",").map((u) => u.trim());
  // credentials in the value: a refused URL is shown without them (a comma in a password splits it anywhere)
  const secret = value.includes("@");
  for (const [i, u] of urls.entries()) {
    if (!/^((nats|tls|ws|wss):\/\/)?([^\s/@]+@)?(\[[0-9a-fA-F:.]+\]|[^\s/:@\[\]]+)(:\d+)?\/?$/.test(u)) {
      const which = !secret
        ? `'${printable(u)}'`
        : u.includes("@")
        ? `'${printable(maskedUrls(u))}'`
        : `URL ${i + 1} of ${urls.length}`;
      throw new TicketsweepError(
        `--nats (or NATS_URL): ${which} is not a broker URL; give nats://HOST:PORT, or several separated by commas` +
          (secret ? " (percent-encode an @, /, comma or space in a password: %40, %2F, %2C, %20)" : ""),
      );
    }
  }
  return urls;
}

/**
 * The broker URL and credentials from flags, then `NATS_URL`, `NATS_TOKEN`, `NATS_USER`, `NATS_PASSWORD`,
 * `NATS_CREDS`; a URL's `user:password@` or `token@` (percent-decoded) counts after the flags, before the
 * environment, and is taken out of the URL. `servers` is the URL list checked by {@link natsUrls}, joined by commas (connectNats connects to
 * one of them and fails over to the others); `TICKETSWEEP_REPLICAS` sets the replicas of the streams and buckets
 * a coordinator creates (default: 3 on a cluster, 1 on a single server).
 */
export function natsFromFlags(v: Record<string, string | boolean | undefined>) {
  const s = (
    k: string,
    env?: string,
  ) => (typeof v[k] === "string" ? v[k] as string : env ? Deno.env.get(env) : undefined);
  const ca = s("tls-ca"), cert = s("tls-cert"), key = s("tls-key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new TicketsweepError("--tls-cert and --tls-key go together: give both or neither");
  }
  const servers = s("nats", "NATS_URL");
  const replicas = Deno.env.get("TICKETSWEEP_REPLICAS");
  if (replicas !== undefined && !/^[1-5]$/.test(replicas)) {
    throw new TicketsweepError(`TICKETSWEEP_REPLICAS must be 1 to 5: current value is '${replicas}'`);
  }
  const urls = servers ? natsUrls(servers) : [];
  // the NATS client ignores a URL's user info (it answered Authorization Violation): they become the credentials,
  // after the flags, before the environment, and leave the URL (which is then printed and passed on as it is)
  const infos = new Set(urls.map((u) => /^(?:[a-z]+:\/\/)?([^\s/@]+)@/i.exec(u)?.[1]).filter((i) => i !== undefined));
  if (infos.size > 1) {
    throw new TicketsweepError(
      "--nats (or NATS_URL): its URLs carry different credentials; give one set (--user/--password or --token)",
    );
  }
  const info = [...infos][0];
  const decode = (t: string) => {
    try {
      return decodeURIComponent(t);
    } catch {
      throw new TicketsweepError("--nats (or NATS_URL): bad percent-encoding in its user or password (%40 is an @)");
    }
  };
  const colon = info?.indexOf(":") ?? -1;
  const fromUrl = info === undefined
    ? {}
    : colon < 0
    ? { token: decode(info) }
    : { user: decode(info.slice(0, colon)), pass: decode(info.slice(colon + 1)) };
  return {
    servers: servers ? urls.map(withoutCredentials).join(",") : undefined,
    ...(replicas ? { replicas: Number(replicas) } : {}),
    token: s("token") ?? fromUrl.token ?? s("token", "NATS_TOKEN"),
    user: s("user") ?? fromUrl.user ?? s("user", "NATS_USER"),
    pass: s("password") ?? fromUrl.pass ?? s("password", "NATS_PASSWORD"),
    creds: s("creds", "NATS_CREDS"),
    tls: ca || cert ? { caFile: ca, certFile: cert, keyFile: key } : undefined,
  };
}
