import { type ResultMessage, ResultMessageSchema, WIRE_VERSION } from "../broker/messages.ts";
import type { Trial } from "../spec/expand.ts";
import { decodeBase64 } from "../util/base64.ts";
import { ticketManifest, writeTicket } from "../ticket/format.ts";
import { atomicWrite } from "../util/atomic_write.ts";
import { TicketsweepError } from "../util/errors.ts";
import { deflateRawSync, inflateRawSync } from "node:zlib";

/** One line of `results.jsonl`: the result as received, with the ticket's bits moved out to `tickets/`. */
export type RecordedResult = ResultMessage;

/** Where lines of `results.jsonl` that are not a recorded outcome go (one JSON object per line). */
export const REJECTED_FILE = "results.rejected.jsonl";

/** A line of `results.jsonl` that is not a recorded outcome of the sweep: set aside, never silently dropped. */
export interface SetAsideLine {
  /** 1-based line number in `results.jsonl` as it was when opened. */
  line: number;
  /** Why, e.g. `not a result (trial_id: Required)`. */
  reason: string;
  /** The line's text as it was. */
  raw: string;
  /** False for a second outcome of a recorded trial (the first stays); true otherwise. */
  runsAgain: boolean;
}

/** Options of {@link ResultLog.open}. */
export interface OpenOptions {
  /** The sweep's planned trial ids (or a plan that answers `has`): a line for any other trial is set aside. */
  planned?: Iterable<string> | { has(id: string): boolean };
  /**
   * Only read: bad lines are listed in `setAside` but both files stay as they are (for `status`, and for a
   * run directory whose coordinator is running).
   */
  readOnly?: boolean;
}

/** The result a parsed line holds, or why it is not one. */
function resultOf(raw: unknown): { result: RecordedResult } | { reason: string } {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return {
      reason: `not a result (${raw === null ? "null" : Array.isArray(raw) ? "an array" : `a ${typeof raw}`}, ` +
        "not an object)",
    };
  }
  const v = (raw as { v?: unknown }).v;
  if (v !== undefined && v !== WIRE_VERSION) {
    return {
      reason: `not a result of this version (schema version ${JSON.stringify(v)}; this ticketsweep reads ` +
        `${WIRE_VERSION})`,
    };
  }
  const parsed = ResultMessageSchema.safeParse(raw);
  if (parsed.success) return { result: parsed.data };
  const missing: string[] = [], wrong: string[] = [];
  for (const i of parsed.error.issues) {
    const absent = (i.code === "invalid_type" && i.received === "undefined") ||
      (i.code === "invalid_literal" && i.received === undefined);
    if (absent) missing.push(i.path.join("."));
    else wrong.push(`${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  const parts = [...wrong.slice(0, 3), ...(missing.length ? [`missing ${missing.join(", ")}`] : [])];
  return { reason: `not a result (${parts.join("; ")}${wrong.length > 3 ? `; and ${wrong.length - 3} more` : ""})` };
}

/** One log line about a set-aside line, e.g. for the coordinator's log or `deno task report`. */
export function setAsideNotice(s: SetAsideLine, readOnly = false): string {
  const where = readOnly
    ? `left in place for now (set aside in ${REJECTED_FILE} when the sweep resumes)`
    : `set aside in ${REJECTED_FILE}`;
  return `results.jsonl line ${s.line}: ${s.reason}; ${where}${s.runsAgain ? "; its trial runs again" : ""}`;
}

/**
 * The lines a {@link ResultLog} recorded, in recording order, kept deflated in blocks of 512 lines: a result line is
 * ~500 bytes and ~750 parsed, a deflated one a tenth of that, so a 100,000-trial sweep keeps ~6 MB, not ~75.
 */
class LineJournal {
  #blocks: Uint8Array[] = [];
  #open: string[] = [];

  push(line: string): void {
    this.#open.push(line);
    if (this.#open.length >= 512) {
      this.#blocks.push(deflateRawSync(new TextEncoder().encode(this.#open.join("\n"))));
      this.#open = [];
    }
  }

  *lines(): Generator<string> {
    const dec = new TextDecoder();
    for (const b of this.#blocks) {
      // line by line from the inflated bytes: a block as one string (~250 KB) is allocated in the old generation, and
      // each pass over a 100,000-line journal left ~50 MB of them there as garbage
      const bytes = inflateRawSync(b);
      for (let start = 0;;) {
        const end = bytes.indexOf(10, start); // "\n": never a byte of a longer UTF-8 character
        yield dec.decode(bytes.subarray(start, end < 0 ? bytes.length : end));
        if (end < 0) break;
        start = end + 1;
      }
    }
    yield* this.#open;
  }

  /** Keeps the lines `keep` says yes to, in order. */
  filter(keep: (line: string) => boolean): void {
    const kept = [...this.lines()].filter(keep);
    this.#blocks = [];
    this.#open = [];
    for (const l of kept) this.push(l);
  }
}

/**
 * The append-only record of outcomes of a sweep: `results.jsonl`, one JSON object per line, at most one
 * line per trial id (recording is idempotent). Tickets go to `tickets/<trial>/`. In memory it keeps the recorded
 * trial ids and the lines deflated ({@link LineJournal}); {@link all} parses them when asked.
 */
export class ResultLog {
  readonly path: string;
  readonly #dir: string;
  readonly #ids = new Set<string>();
  readonly #journal = new LineJournal();
  #file?: Deno.FsFile;
  /** The open file's inode and device, to tell whether the path still names it. */
  #fileId?: Deno.FileInfo;
  /** Lines {@link restoreMissing} wrote again while recording (the file had been replaced), for its next count. */
  #restoredEarlier = 0;
  #setAside: SetAsideLine[] = [];

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = `${dir}/results.jsonl`;
  }

  /**
   * Opens the log of a run directory, reading what is already there. Every line is validated with the result
   * schema; a line that is not one (a torn line of a crash mid-write, JSON that is not a result), a result of a
   * trial not in `planned`, or a second outcome of a trial is set aside: appended to `results.rejected.jsonl`
   * with its line number, reason and text, and removed from `results.jsonl` (rewritten atomically). What was
   * set aside is in {@link setAside}; those trials are not recorded, so they run again.
   */
  static async open(dir: string, opts: OpenOptions = {}): Promise<ResultLog> {
    const log = new ResultLog(dir);
    const planned = opts.planned && "has" in opts.planned ? opts.planned : opts.planned && new Set(opts.planned);
    const firstLine = new Map<string, number>();
    // read line by line (a 100,000-trial sweep's file is ~50 MB); the file is rewritten, with its good lines only,
    // when a line is set aside, blank, or the last one without its newline
    let n = 0, rewrite = false;
    for await (const text of lines(log.path)) {
      n++;
      const line = text.endsWith("\n") ? text.slice(0, -1) : text;
      if (!line.trim()) {
        rewrite ||= line !== "" || text.endsWith("\n");
        continue;
      }
      if (!text.endsWith("\n")) rewrite = true;
      const aside = (reason: string, runsAgain = true) => {
        log.#setAside.push({ line: n, reason, raw: line, runsAgain });
        rewrite = true;
      };
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e) {
        aside(
          text.endsWith("\n")
            ? `not JSON (${(e as Error).message})`
            : `torn (not JSON: ${(e as Error).message}), the end of a write cut by a crash`,
        );
        continue;
      }
      const parsed = resultOf(raw);
      if ("reason" in parsed) {
        aside(parsed.reason);
        continue;
      }
      const r = parsed.result;
      if (planned && !planned.has(r.trial_id)) {
        aside(`not a trial of this sweep's plan (trial ${r.trial_id})`);
        continue;
      }
      const first = firstLine.get(r.trial_id);
      if (first !== undefined) {
        aside(`a second outcome of trial ${r.trial_id} (line ${first} is kept)`, false);
        continue;
      }
      firstLine.set(r.trial_id, n);
      log.#ids.add(r.trial_id);
      log.#journal.push(JSON.stringify(r)); // as validated (defaults filled in), as all() returned it before
    }
    if (!opts.readOnly && rewrite) {
      const kept = new Set(firstLine.values());
      let good = "", i = 0;
      for await (const text of lines(log.path)) if (kept.has(++i)) good += text.endsWith("\n") ? text : text + "\n";
      await setLinesAside(log.path, good, `${dir}/${REJECTED_FILE}`, log.#setAside);
    }
    return log;
  }

  /** The lines of `results.jsonl` that {@link open} set aside (or, read-only, found bad). */
  get setAside(): readonly SetAsideLine[] {
    return this.#setAside;
  }

  has(trialId: string): boolean {
    return this.#ids.has(trialId);
  }

  get size(): number {
    return this.#ids.size;
  }

  /** Every recorded outcome, in recording order, parsed afresh from the kept lines (a new copy each call). */
  all(): RecordedResult[] {
    return [...this.each()];
  }

  /**
   * Every recorded outcome, in recording order, parsed one at a time as it is reached: the report of a large sweep
   * reads them once without holding every parsed result at once (100,000 of them are ~75 MB).
   */
  *each(): Generator<RecordedResult> {
    for (const l of this.#journal.lines()) yield JSON.parse(l) as RecordedResult;
  }

  /**
   * Records a result unless its trial already has one; writes the ticket first, then the line.
   * @returns whether it was new.
   */
  async record(r: ResultMessage, trial: Trial): Promise<boolean> {
    if (this.#ids.has(r.trial_id)) return false;
    // before the ticket: writing it (mkdir -p) would make a run directory moved away again, and the sweep would go
    // on in a directory without its plan, secret and earlier tickets
    await this.#checkPath();
    let line: RecordedResult = r;
    if (r.metrics?.ticket) {
      const { bits_b64, ...ticket } = r.metrics.ticket;
      const cuts = r.metrics.cuts; // the ladder's levels go to tickets/<trial>/cuts.bin, not into the line
      const levels = cuts ? decodeBase64(cuts.levels.b64) : undefined;
      await writeTicket(`${this.#dir}/tickets/${r.trial_id}`, ticketManifest(r, trial), decodeBase64(bits_b64), levels);
      line = { ...r, metrics: { ...r.metrics, ticket: { ...ticket, bits_b64: "" } } };
      if (cuts) line.metrics!.cuts = { ...cuts, levels: { ...cuts.levels, b64: "" } };
    }
    const text = JSON.stringify(line);
    await this.#append(text + "\n");
    this.#ids.add(r.trial_id);
    this.#journal.push(text);
    return true;
  }

  /**
   * Before each result: whether `results.jsonl` is still the file this log has open (see {@link sameFile}) and,
   * when none is open, whether the run directory is still there; what cannot go on is a {@link ResultsUnwritable}.
   */
  async #checkPath(): Promise<void> {
    if (this.#file && !sameFile(this.path, this.#fileId!)) {
      // replaced, moved or removed by another process (a link to a missing file, say): the lines written since
      // went to a file nobody reads. They go to the file the path names now, or the sweep stops here
      this.close();
      const restored = await this.restoreMissing(); // counts (and resets) the earlier ones too
      this.#restoredEarlier += restored;
    } else if (!this.#file) {
      // not open (the first result, or after a close): the run directory itself may be gone
      const dir = await Deno.stat(this.#dir).catch((e) => e);
      if (dir instanceof Error) throw await unwritable(this.path, this.#dir, dir);
    }
  }

  /**
   * Appends whole lines: the first append ends a torn last line first (see {@link appendLine}) and opens the
   * file once for appending; later ones are one write each (a sweep records thousands of results a second),
   * synchronous: a line of a result is a few hundred bytes to the page cache, and an asynchronous write's trip
   * through the thread pool cost more than the write itself, once per result, in the recording chain.
   */
  async #append(text: string): Promise<void> {
    if (!this.#file) {
      try {
        await appendLine(this.path, text);
        this.#file = await Deno.open(this.path, { append: true });
        this.#fileId = this.#file.statSync();
      } catch (e) {
        throw await unwritable(this.path, this.#dir, e);
      }
      return;
    }
    const data = new TextEncoder().encode(text);
    for (let off = 0; off < data.length;) off += this.#file.writeSync(data.subarray(off));
  }

  /**
   * Takes the recorded outcomes of `ids` out of the log, for `--retry-failed`: their lines move to
   * `results.rejected.jsonl` with `reason` (the copy first, then the rewrite, like {@link open}), so
   * `results.jsonl` keeps at most one outcome per trial and those trials run again.
   * @returns how many lines were moved.
   */
  async supersede(ids: ReadonlySet<string>, reason: (trialId: string) => string): Promise<number> {
    if (ids.size === 0) return 0;
    this.close();
    const text = await readLogText(this.path);
    const aside: { line: number; reason: string; raw: string }[] = [];
    let good = "";
    text.split("\n").forEach((line, i) => {
      if (!line.trim()) return;
      let id: unknown;
      try {
        id = (JSON.parse(line) as { trial_id?: unknown }).trial_id;
      } catch { /* a torn line: open() sets it aside next time */ }
      if (typeof id === "string" && ids.has(id)) aside.push({ line: i + 1, reason: reason(id), raw: line });
      else good += line + "\n";
    });
    await setLinesAside(this.path, good, `${this.#dir}/${REJECTED_FILE}`, aside);
    for (const id of ids) this.#ids.delete(id);
    this.#journal.filter((l) => !ids.has((JSON.parse(l) as { trial_id: string }).trial_id));
    return aside.length;
  }

  /** Closes the file handle `record` keeps open (recording again reopens it). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  /**
   * Makes sure every outcome recorded by this log is still in the file (another process may have truncated,
   * replaced or removed it while the sweep ran): the missing lines are appended again from memory. A line of a
   * recorded trial with another claim (a stale copy put in place) is set aside in `results.rejected.jsonl`, and
   * the file rewritten with the recorded line in its place.
   * @returns how many lines were missing (the replaced ones included).
   */
  async restoreMissing(): Promise<number> {
    this.close(); // the path may name another file by now (replaced): append through the path
    // each trial's claim in the file: a line of a recorded trial with another claim is not this log's outcome (a
    // stale copy put in place: a failed outcome --retry-failed superseded, another run's), and as the first line
    // of its trial it would be the one kept at the next open
    const inFile = new Map<string, string>();
    const claimOf = (line: string): [string, string] | undefined => {
      try {
        const { trial_id, claim } = JSON.parse(line) as { trial_id?: unknown; claim?: unknown };
        if (typeof trial_id === "string") return [trial_id, typeof claim === "string" ? claim : ""];
      } catch { /* a torn or foreign line: open() sets it aside next time */ }
    };
    try {
      // line by line: the results.jsonl of a 100,000-trial sweep is ~50 MB, its parsed lines more
      for await (const line of lines(this.path)) {
        const c = claimOf(line);
        if (c && !inFile.has(c[0])) inFile.set(c[0], c[1]);
      }
    } catch (e) {
      // a directory in its place, or unreadable: one line, and the sweep stops
      if (e instanceof TicketsweepError) {
        throw new ResultsUnwritable(`${e.message}, then continue with deno task sweep --resume ${this.#dir}`);
      }
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const missing: string[] = [], stale = new Map<string, string>(); // trial id: the claim recorded
    let written = 0; // of those, lines found in the file after all (after a stale one)
    for (const l of this.#journal.lines()) {
      const [id, claim] = claimOf(l)!;
      const there = inFile.get(id);
      if (there === claim) continue;
      if (there !== undefined) stale.set(id, claim);
      missing.push(l);
    }
    inFile.clear();
    try {
      if (stale.size) {
        // the file without those lines (set aside, as open() would), then the recorded ones
        // (a recorded line written after them stays, once)
        const aside: { line: number; reason: string; raw: string }[] = [], kept = new Set<string>();
        let good = "", n = 0;
        for await (const text of lines(this.path)) {
          n++;
          const c = claimOf(text);
          const ours = c && stale.get(c[0]);
          if (c && ours !== undefined && (c[1] !== ours || kept.has(c[0]))) {
            aside.push({
              line: n,
              reason: c[1] === ours
                ? `a second outcome of trial ${c[0]} (the first is kept)`
                : `an outcome of trial ${c[0]} the sweep did not record (put in place while it ran: a stale ` +
                  "copy?); the recorded one is kept",
              raw: text.endsWith("\n") ? text.slice(0, -1) : text,
            });
            continue;
          }
          if (ours !== undefined && c) {
            kept.add(c[0]);
            written++;
          }
          good += text.endsWith("\n") ? text : text + "\n";
        }
        await setLinesAside(
          this.path,
          good + missing.filter((l) => !kept.has(claimOf(l)![0])).map((l) => l + "\n").join(""),
          `${this.#dir}/${REJECTED_FILE}`,
          aside,
        );
      } else if (missing.length) {
        await appendLine(this.path, missing.map((l) => l + "\n").join(""));
      }
    } catch (e) {
      throw await unwritable(this.path, this.#dir, e);
    }
    const restored = missing.length - written + this.#restoredEarlier;
    this.#restoredEarlier = 0;
    return restored;
  }
}

/**
 * Whether `path` still names the open file whose information is `open` (true where the system gives no inode
 * numbers). One stat a result.
 */
function sameFile(path: string, open: Deno.FileInfo): boolean {
  let at: Deno.FileInfo;
  try {
    at = Deno.statSync(path);
  } catch {
    return false;
  }
  return at.ino === null || open.ino === null || (at.ino === open.ino && at.dev === open.dev);
}

/**
 * `results.jsonl` cannot be written, and retrying will not help: a link to a file that does not exist, permission
 * denied, a directory in its place, the run directory gone. The sweep stops with this line (the result that met it
 * is not acknowledged: it stays on the broker, and a resume records it).
 */
export class ResultsUnwritable extends TicketsweepError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ResultsUnwritable";
  }
}

/**
 * The {@link ResultsUnwritable} line for an error writing `path` of run directory `dir`; any other error (a full
 * disk: freeing space lets the sweep go on) is returned as it is, and the result is retried.
 */
async function unwritable(path: string, dir: string, e: unknown): Promise<unknown> {
  const link = await Deno.lstat(path).then((i) => i.isSymlink, () => false);
  const target = link ? await Deno.readLink(path).catch(() => "?") : undefined;
  const dangling = link && !(await Deno.stat(path).then(() => true, () => false));
  const code = (e as { code?: string }).code;
  const why = dangling
    ? `it is a link to ${target}, which does not exist: restore that file, or remove the link`
    : e instanceof Deno.errors.PermissionDenied || code === "EROFS"
    ? `${(e as Error).message}: make it and ${dir} writable`
    : e instanceof Deno.errors.IsADirectory
    ? "it is a directory, not a file: move it away"
    : e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory
    ? `${dir} is gone (moved or removed?): put it back`
    : e instanceof Deno.errors.FilesystemLoop
    ? "it is a link in a loop: remove the link"
    : undefined;
  if (why === undefined) return e;
  return new ResultsUnwritable(
    `${path}: cannot record results in it (${why}), then continue with deno task sweep --resume ${dir}`,
    { cause: e },
  );
}

/**
 * The lines of a text file, each with its newline (the last one without, when the file does not end with one), read
 * a megabyte at a time; none when the file does not exist. A directory or an unreadable file is one clear line
 * (see {@link readLogText}).
 */
async function* lines(path: string): AsyncGenerator<string> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
    if ((await f.stat()).isDirectory) {
      f.close();
      throw new Deno.errors.IsADirectory(path);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw logReadError(path, e);
  }
  try {
    // each line decoded from the bytes on its own: a megabyte decoded as one string is allocated in the old
    // generation, and reading a 100,000-result file that way left ~100 MB of garbage there
    const dec = new TextDecoder("utf-8", { ignoreBOM: true });
    let buf = new Uint8Array(1 << 20);
    let have = 0, first = true; // have: the bytes of a line not ended yet, at the start of buf
    const text = (bytes: Uint8Array) => {
      const t = dec.decode(bytes);
      if (!first) return t;
      first = false;
      return t.startsWith("\uFEFF") ? t.slice(1) : t; // a byte order mark only at the start of the file
    };
    for (;;) {
      if (have === buf.length) { // a line longer than the buffer
        const more = new Uint8Array(2 * buf.length);
        more.set(buf);
        buf = more;
      }
      let n: number | null;
      try {
        n = await f.read(buf.subarray(have));
      } catch (e) {
        throw logReadError(path, e);
      }
      if (n === null) break;
      const data = buf.subarray(0, have + n);
      let start = 0;
      for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) { // "\n": never in a longer character
        yield text(data.subarray(start, nl + 1));
        start = nl + 1;
      }
      buf.copyWithin(0, start, data.length);
      have = data.length - start;
    }
    if (have) yield text(buf.subarray(0, have));
  } finally {
    f.close();
  }
}

/**
 * Appends `text` (whole lines) to a file, first ending the file's last line when a crash left it without its
 * newline, so a new line is never glued onto a torn one. With `sync`, the data is on disk when it returns.
 */
export async function appendLine(path: string, text: string, sync = false): Promise<void> {
  const f = await Deno.open(path, { read: true, write: true, create: true });
  try {
    const size = await f.seek(0, Deno.SeekMode.End);
    let data = new TextEncoder().encode(text);
    if (size > 0) {
      await f.seek(size - 1, Deno.SeekMode.Start);
      const last = new Uint8Array(1);
      await f.read(last);
      await f.seek(0, Deno.SeekMode.End);
      if (last[0] !== 0x0a) data = new TextEncoder().encode("\n" + text);
    }
    for (let off = 0; off < data.length;) off += await f.write(data.subarray(off));
    if (sync) await f.syncData();
  } finally {
    f.close();
  }
}

/** A line of a run directory's JSONL log that is not valid: its 1-based number, why, and its text. */
export interface BadLine {
  line: number;
  reason: string;
  raw: string;
}

/**
 * Parses a JSONL log (`proposals.jsonl`, `rungs.jsonl`): each line must be JSON, pass `schema`, and pass `check`
 * (a reason when it is not one of this sweep's); the rest are set aside, a last line that is not JSON being the
 * end of a write torn by a crash. Returns the good items and their text, in order.
 */
export function parseLogLines<T>(
  text: string,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Issue[] } } },
  what: string,
  check: (item: T) => string | undefined,
): { items: T[]; good: string; setAside: BadLine[] } {
  const items: T[] = [], setAside: BadLine[] = [];
  let good = "";
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const aside = (reason: string) => setAside.push({ line: i + 1, reason, raw: line });
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      return aside(
        i === lines.length - 1
          ? `torn (not JSON: ${(e as Error).message}), the end of a write cut by a crash`
          : `not JSON (${(e as Error).message})`,
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return aside(`not ${what} (${issue.path.join(".") || "(root)"}: ${issue.message})`);
    }
    const wrong = check(parsed.data);
    if (wrong) return aside(wrong);
    items.push(parsed.data);
    good += line + "\n";
  });
  return { items, good, setAside };
}

/** A schema issue, as zod reports it. */
interface Issue {
  path: (string | number)[];
  message: string;
}

/**
 * The text of a run directory's JSONL log, "" when it does not exist yet; a directory or an unreadable file in its
 * place is one clear line.
 */
export async function readLogText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw logReadError(path, e);
    return "";
  }
}

/** The one line for a run directory's log that cannot be read. */
function logReadError(path: string, e: unknown): TicketsweepError {
  if (e instanceof Deno.errors.IsADirectory) {
    return new TicketsweepError(`${path} is a directory, not a file: move it away`);
  }
  return new TicketsweepError(`${path}: cannot read it (${(e as Error).message}); fix its permissions`);
}

/**
 * Moves a log's bad lines to its rejected file (line number, reason, raw text) and rewrites the log with the good
 * ones: first the copy, then the removal, so a crash in between sets the lines aside again and never loses them.
 */
export async function setLinesAside(
  path: string,
  good: string,
  rejectedPath: string,
  lines: readonly { line: number; reason: string; raw: string }[],
): Promise<void> {
  if (lines.length) {
    const at = new Date().toISOString();
    const file = path.slice(path.lastIndexOf("/") + 1);
    await appendLine(
      rejectedPath,
      lines.map((s) =>
        JSON.stringify({ v: 1, file, line: s.line, reason: s.reason, raw: s.raw, set_aside_at: at }) + "\n"
      ).join(""),
    );
  }
  await atomicWrite(path, good);
}

/** Where `--retry-failed` keeps each retried trial's round (`{"<trial id>": 1, ...}`). */
export const RETRY_FILE = "retries.json";

/** The most `--retry-failed` rounds a trial may have (far above any real use). */
export const MAX_RETRY_ROUND = 10_000;

/**
 * The retry round of each trial that `--retry-failed` ran again (absent: 0, never retried). A trial's claim,
 * hence its publish key, depends on its round, so a retried trial is neither swallowed by the trial stream's
 * duplicate window nor answered by the results of the round it supersedes.
 */
export async function readRetryRounds(runDir: string): Promise<Map<string, number>> {
  const path = `${runDir}/${RETRY_FILE}`;
  const text = await readLogText(path);
  const rounds = text.trim() ? parseRetryRounds(path, text) : new Map<string, number>();
  // a deleted or lost file must not bring back an earlier round's claims (that round's results, replayed from the
  // broker, would be recorded as the retry's): each superseded line set aside names its round
  for (const line of (await readLogText(`${runDir}/${REJECTED_FILE}`)).split("\n")) {
    if (!line.includes("superseded: retried with --retry-failed")) continue;
    try {
      const aside = JSON.parse(line);
      const round = Number(/^superseded: retried with --retry-failed \(round (\d+)\)$/.exec(aside.reason)?.[1]);
      const id = JSON.parse(aside.raw).trial_id;
      if (typeof id === "string" && round <= MAX_RETRY_ROUND && round > (rounds.get(id) ?? 0)) rounds.set(id, round);
    } catch {
      continue; // a torn line of the rejected file says nothing
    }
  }
  return rounds;
}

function parseRetryRounds(path: string, text: string): Map<string, number> {
  const advice = "restore it or delete it (the rounds are then read from results.rejected.jsonl)";
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TicketsweepError(`${path}: not JSON (${(e as Error).message}); ${advice}`);
  }
  const entries = raw && typeof raw === "object" && !Array.isArray(raw) ? Object.entries(raw) : null;
  // bounded: a superseded result is checked against every earlier round's claim (one HMAC each)
  if (
    !entries || entries.some(([, n]) => !Number.isInteger(n) || (n as number) < 1 || (n as number) > MAX_RETRY_ROUND)
  ) {
    throw new TicketsweepError(
      `${path}: expected {"<trial id>": round, ...} with rounds from 1 to ${
        MAX_RETRY_ROUND.toLocaleString("en-US")
      }; ${advice}`,
    );
  }
  return new Map(entries as [string, number][]);
}

/** Writes {@link RETRY_FILE} atomically. */
export async function writeRetryRounds(runDir: string, rounds: ReadonlyMap<string, number>): Promise<void> {
  await atomicWrite(`${runDir}/${RETRY_FILE}`, JSON.stringify(Object.fromEntries([...rounds].sort())) + "\n");
}
