// Keeps the docs honest: the repository cites only documents it contains, every relative link in the Markdown
// resolves (file and #anchor), and the random-stream table of docs/architecture.md matches RNG_STREAMS.
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { RNG_STREAMS } from "../src/util/rng.ts";

const ROOT = new URL("../", import.meta.url)
  .pathname; /** Folders that are not the repository's own text: dependencies, build and run outputs, git's store. */
const SKIP = new Set([".git", ".native", "node_modules", "runs", "test-artifacts"]);
/** Design notes that live outside the repository, which a clone does not have (built so this file does not match). */
const OUTSIDE = new RegExp(`\\b(${["SCIENCE", "DESIGN"].join("|")})\\.md\\b`);

/** Every file under `dir`, as paths relative to the repository root. */
async function* files(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (SKIP.has(e.name)) continue;
    const path = join(dir, e.name);
    if (e.isDirectory) yield* files(path);
    else if (e.isFile) yield relative(ROOT, path);
  }
}

/** The lines of `text` that cite a document outside the repository, as `line: text`. */
export function outsideCitations(text: string): string[] {
  return text.split("\n").flatMap((l, i) => OUTSIDE.test(l) ? [`${i + 1}: ${l.trim()}`] : []);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The anchors of a Markdown text's headings (outside code blocks). */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const line of withoutCode(markdown).split("\n")) {
    const m = line.match(/^#{1,6}\s+(.*)$/);
    if (m) out.add(slug(m[1]!.replaceAll("`", "")));
  }
  return out;
}

/** Markdown without fenced code blocks and inline code spans (links there are examples, not links). */
function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, "").replace(/`[^`\n]*`/g, (s) => (/^`+$/.test(s) ? s : "``"));
}

/**
 * The relative links of a Markdown file at `path` (relative to `root`) that do not resolve: the file is missing,
 * or the `#anchor` names no heading of the file it points to. Web and mail links are not checked.
 */
export function brokenLinks(markdown: string, path: string, read: (path: string) => string | null): string[] {
  const broken: string[] = [];
  for (const m of withoutCode(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [file, anchor] = target.split("#") as [string, string | undefined];
    const to = file === "" ? path : normalize(join(dirname(path), decodeURIComponent(file)));
    const text = read(to);
    if (text === null) broken.push(`${target} (no file ${to})`);
    else if (anchor !== undefined && to.endsWith(".md") && !anchors(text).has(anchor)) {
      broken.push(`${target} (no heading #${anchor} in ${to})`);
    }
  }
  return broken;
}

/** A file's text relative to the repository root; "" for a directory; null when there is nothing there. */
function readRepo(path: string): string | null {
  try {
    const info = Deno.statSync(join(ROOT, path));
    return info.isDirectory ? "" : Deno.readTextFileSync(join(ROOT, path));
  } catch {
    return null;
  }
}

Deno.test("docs - no file of the repository cites a design note that lives outside it", async () => {
  const found: string[] = [];
  for await (const path of files(ROOT)) {
    const bytes = await Deno.readFile(join(ROOT, path));
    if (bytes.length > 4 * 1024 * 1024 || bytes.includes(0)) continue; // data, not text
    for (const hit of outsideCitations(new TextDecoder().decode(bytes))) found.push(`${path}:${hit}`);
  }
  assert.deepEqual(found, [], "cite docs/science.md or docs/architecture.md instead");
});

Deno.test("docs - every relative link of README.md and docs/*.md resolves, #anchors included", async () => {
  const pages = ["README.md"];
  for await (const e of Deno.readDir(join(ROOT, "docs"))) if (e.name.endsWith(".md")) pages.push(`docs/${e.name}`);
  assert.ok(pages.includes("docs/science.md") && pages.includes("docs/architecture.md"));
  const broken = pages.flatMap((p) => brokenLinks(readRepo(p)!, p, readRepo).map((b) => `${p}: ${b}`));
  assert.deepEqual(broken, []);
});

/** The repository paths a Markdown text names in code spans (`src/...`, `native/...`) that do not exist. */
export function missingPaths(markdown: string, exists: (path: string) => boolean): string[] {
  const named = [...markdown.matchAll(/`((?:src|native|test|bench|tools|docs|sweeps|workers)\/[\w./-]*)`/g)];
  return [...new Set(named.map((m) => m[1]!))].filter((p) => !exists(p.replace(/\/$/, "")));
}

Deno.test("docs - every repository path docs/*.md names in code exists", async () => {
  const missing: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, "docs"))) {
    if (!e.name.endsWith(".md")) continue;
    const text = readRepo(`docs/${e.name}`)!;
    for (const p of missingPaths(text, (p) => readRepo(p) !== null)) missing.push(`docs/${e.name}: ${p}`);
  }
  assert.deepEqual(missing, [], "a file moved or was renamed: say where it is now");
});

/**
 * The citations of a docs section in `text` (`docs/science.md, "Gates"` or `docs/architecture.md ("Words")`) whose
 * section names no heading of that page (a heading must contain the quoted name, case aside).
 */
export function staleSections(text: string, read: (path: string) => string | null): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(docs\/[\w-]+\.md)[,;]?[ \t]*\(?"([^"\n]+)"/g)) {
    const page = read(m[1]!);
    const headings = page === null ? [] : [...withoutCode(page).matchAll(/^#{1,6}\s+(.*)$/gm)].map((h) => h[1]!);
    const name = m[2]!.toLowerCase();
    if (!headings.some((h) => h.replaceAll("`", "").toLowerCase().includes(name))) out.push(`${m[1]}, "${m[2]}"`);
  }
  return out;
}

Deno.test("docs - every docs section the code cites by name exists", async () => {
  const stale: string[] = [];
  for (const dir of ["src", "native", "test", "bench", "tools", "workers"]) {
    for await (const path of files(join(ROOT, dir))) {
      if (!/\.(ts|c|h|py)$/.test(path) || path === "test/docs_test.ts") continue; // its examples are meant to fail
      for (const s of staleSections(readRepo(path)!, readRepo)) stale.push(`${path}: ${s}`);
    }
  }
  assert.deepEqual(stale, [], "cite a heading of the page (or rename the heading back)");
});

Deno.test("docs - the checks fail on what they guard against", () => {
  const pages: Record<string, string> = { "docs/a.md": "# Top\n## Random streams\n", "README.md": "" };
  const read = (p: string) => pages[p] ?? null;
  const md = "[ok](a.md#random-streams) [gone](missing.md) [bad](a.md#nowhere) [web](https://x.org/y.md) " +
    "`[code](nope.md)` [self](#top)";
  assert.deepEqual(brokenLinks(md, "docs/b.md", read), [
    "missing.md (no file docs/missing.md)",
    "a.md#nowhere (no heading #nowhere in docs/a.md)",
    "#top (no file docs/b.md)",
  ]);
  assert.deepEqual(brokenLinks("[up](../README.md) [self](#top)", "docs/a.md", read), []);
  assert.deepEqual(outsideCitations(`see ${"SCIENCE"}.md §2\nfine\nand ../shared/${"DESIGN"}.md`).length, 2);
  assert.deepEqual(missingPaths("`src/a.ts` and `src/gone.ts`, `src/` but not `runs/x`", (p) => p !== "src/gone.ts"), [
    "src/gone.ts",
  ]);
  assert.deepEqual(staleSections('see docs/a.md, "Random streams" and docs/a.md ("Gone"), docs/b.md, "Top"', read), [
    'docs/a.md, "Gone"',
    'docs/b.md, "Top"',
  ]);
  assert.deepEqual(slug("Supermask (`supermask`, being added)".replaceAll("`", "")), "supermask-supermask-being-added");
});

/** The stream ids `code` passes to `new Rng` as number literals (a base of `1000 + n` included) that no entry of `ids` has. */
export function unlistedStreams(code: string, ids: readonly number[]): number[] {
  return [...code.matchAll(/new Rng\([^,()]+,\s*(\d+)/g)].map((m) => Number(m[1])).filter((id) => !ids.includes(id));
}

Deno.test("docs - every number literal stream id of src/ is in RNG_STREAMS", async () => {
  const ids = Object.values(RNG_STREAMS) as number[];
  const unlisted: string[] = [];
  for await (const path of files(join(ROOT, "src"))) {
    if (!path.endsWith(".ts")) continue;
    for (const id of unlistedStreams(readRepo(path)!, ids)) unlisted.push(`${path}: stream ${id}`);
  }
  assert.deepEqual(unlisted, [], "add the stream to RNG_STREAMS (src/util/rng.ts) and its row to docs/architecture.md");
  assert.deepEqual(unlistedStreams("new Rng(seed, 9); new Rng(s.x, 1000 + n); new Rng(seed, 5)", [9, 1000]), [5]);
});

Deno.test("docs - the random-stream table of docs/architecture.md lists RNG_STREAMS, id for id", () => {
  const text = readRepo("docs/architecture.md")!;
  const rows = new Map(
    [...text.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\d+)(?:\s*\+\s*\w+)?\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  for (const [name, id] of Object.entries(RNG_STREAMS)) {
    assert.deepEqual(rows.get(name), id, `RNG_STREAMS.${name} = ${id}: its row in docs/architecture.md`);
  }
});
