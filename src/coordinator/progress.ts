import type { ProgressMessage, ResultMessage } from "../broker/messages.ts";

/** What one worker is doing, as its progress messages tell. */
export interface WorkerActivity {
  worker: string;
  host: string;
  trial: string;
  step: number;
  totalSteps: number;
  stepsPerS: number | null;
  lastSeen: number;
}

/** A moment of a sweep, as the progress display shows it. */
export interface ProgressSnapshot {
  sweepId: string;
  total: number;
  done: number;
  failed: number;
  running: WorkerActivity[];
  frontSize: number;
  elapsedS: number;
  etaS: number | null;
}

/** A worker is shown as running while its last progress message is this recent. */
const ACTIVE_MS = 15_000;

/**
 * Tracks a sweep's progress from result and progress messages: counts, per-worker activity and throughput,
 * the current front size and an ETA (remaining trials at the pace of those finished in this session).
 */
export class SweepProgress {
  readonly sweepId: string;
  readonly total: number;
  #done = 0;
  #failed = 0;
  #finishedHere = 0;
  readonly #started: number;
  readonly #workers = new Map<string, WorkerActivity>();
  /** Each group's non-dominated points so far, kept as they come: not every point, not sorted again per snapshot. */
  readonly #fronts = new Map<string, RunningFront>();

  constructor(sweepId: string, total: number, now = Date.now()) {
    this.sweepId = sweepId;
    this.total = total;
    this.#started = now;
  }

  /** Counts a result recorded before this session (a resumed sweep): it is in the counts, not in the pace. */
  onRecorded(r: ResultMessage, group: string): void {
    this.onResult(r, group);
    this.#finishedHere--;
  }

  onProgress(p: ProgressMessage, now = Date.now()): void {
    if (p.error) return;
    const key = `${p.host}/${p.worker}`;
    const prev = this.#workers.get(key);
    let rate = prev?.stepsPerS ?? null;
    if (prev && prev.trial === p.trial_id && p.step > prev.step && now > prev.lastSeen) {
      rate = (p.step - prev.step) / ((now - prev.lastSeen) / 1000);
    }
    this.#workers.set(key, {
      worker: p.worker,
      host: p.host,
      trial: p.trial_id,
      step: p.step,
      totalSteps: p.total_steps,
      stepsPerS: rate,
      lastSeen: now,
    });
  }

  /** Counts a newly recorded result (with its method group, for the front size). */
  onResult(r: ResultMessage, group: string): void {
    this.#finishedHere++;
    if (r.status === "done") {
      this.#done++;
      // the points the report's front is made of: the trial's own ticket and every cut, on validation accuracy
      // when the run has a validation split (test accuracy otherwise)
      const m = r.metrics!;
      let front = this.#fronts.get(group);
      if (!front) this.#fronts.set(group, front = new RunningFront());
      front.add(m.sparsity, m.val_accuracy ?? m.accuracy);
      for (const c of m.cuts?.points ?? []) front.add(c.sparsity, c.val_accuracy ?? c.accuracy);
    } else if (r.status === "stopped") this.#done++; // has its outcome; its partial point is on no front
    else this.#failed++;
    for (const [k, w] of this.#workers) if (w.trial === r.trial_id) this.#workers.delete(k);
  }

  snapshot(now = Date.now()): ProgressSnapshot {
    const elapsedS = (now - this.#started) / 1000;
    const remaining = this.total - this.#done - this.#failed;
    let frontSize = 0;
    for (const [group, front] of this.#fronts) if (group !== "dense") frontSize += front.size;
    return {
      sweepId: this.sweepId,
      total: this.total,
      done: this.#done,
      failed: this.#failed,
      running: [...this.#workers.values()].filter((w) => now - w.lastSeen < ACTIVE_MS)
        .sort((a, b) => a.host.localeCompare(b.host) || a.worker.localeCompare(b.worker)),
      frontSize,
      elapsedS,
      etaS: this.#finishedHere > 0 ? (elapsedS / this.#finishedHere) * remaining : null,
    };
  }
}

/**
 * The non-dominated points (both coordinates maximised) of the points added so far, as `nonDominated` (pareto/front.ts) counts
 * them (exact duplicates of a front point all on the front): by x ascending, y descending, each with its copies.
 */
export class RunningFront {
  readonly #xs: number[] = [];
  readonly #ys: number[] = [];
  readonly #copies: number[] = [];
  #size = 0;

  /** How many of the points added are non-dominated. */
  get size(): number {
    return this.#size;
  }

  add(x: number, y: number): void {
    const xs = this.#xs, ys = this.#ys;
    let lo = 0, hi = xs.length; // the first front point at x or right of it: the highest of those
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    const j = lo;
    if (j < xs.length && xs[j] === x && ys[j] === y) {
      this.#copies[j]!++;
      this.#size++;
      return;
    }
    if (j < xs.length && ys[j]! >= y) return; // dominated
    const end = j < xs.length && xs[j] === x ? j + 1 : j; // a lower point at the same x leaves the front
    let k = j; // the points left of x and not above y leave the front
    while (k > 0 && ys[k - 1]! <= y) k--;
    for (let i = k; i < end; i++) this.#size -= this.#copies[i]!;
    xs.splice(k, end - k, x);
    ys.splice(k, end - k, y);
    this.#copies.splice(k, end - k, 1);
    this.#size++;
  }
}

/** `75 s` → `1m15s`. */
export function duration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
}

function counts(s: ProgressSnapshot): string {
  return `${s.done + s.failed}/${s.total} finished: ${s.done} done, ${s.failed} failed, ${s.running.length} running; ` +
    `front ${s.frontSize} point${s.frontSize === 1 ? "" : "s"}; ${duration(s.elapsedS)} elapsed` +
    (s.etaS === null ? "" : s.done + s.failed >= s.total ? "" : `, ETA ${duration(s.etaS)}`);
}

/** The terminal block: a bar with the counts, then one line per running worker (fitted to `width`). */
export function renderTty(s: ProgressSnapshot, width: number): string[] {
  const finished = s.done + s.failed;
  const barW = Math.max(10, Math.min(40, width - 20));
  const full = s.total ? Math.round((barW * finished) / s.total) : barW;
  const lines = [
    `${s.sweepId} [${"#".repeat(full)}${"-".repeat(barW - full)}] ${
      s.total ? Math.floor((100 * finished) / s.total) : 100
    }%`,
    counts(s),
    ...s.running.map((w) => {
      const pct = w.totalSteps ? Math.floor((100 * w.step) / w.totalSteps) : 0;
      const rate = w.stepsPerS === null ? "" : `, ${w.stepsPerS.toFixed(0)} steps/s`;
      return `  ${w.host}/${w.worker}: trial ${w.trial} step ${w.step}/${w.totalSteps} (${pct}%)${rate}`;
    }),
  ];
  return lines.map((l) => (l.length > width ? l.slice(0, Math.max(0, width - 1)) + "…" : l));
}

/** One plain timestamped line, for logs and CI. */
export function renderLine(s: ProgressSnapshot, now = new Date()): string {
  return `[${now.toISOString().slice(11, 19)}] ${s.sweepId}: ${counts(s)}`;
}

/**
 * Shows a sweep's progress: on a terminal a block redrawn in place (log lines scroll above it); otherwise a
 * plain timestamped line whenever the counts change, at most every `everyMs`, and at least every minute.
 */
export class ProgressDisplay {
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #width: () => number;
  readonly #everyMs: number;
  #drawn = 0;
  #lastLine = 0;
  #lastCounts = "";

  constructor(opts: { write: (text: string) => void; tty: boolean; width?: () => number; everyMs?: number }) {
    this.#write = opts.write;
    this.#tty = opts.tty;
    this.#width = opts.width ?? (() => 100);
    this.#everyMs = opts.everyMs ?? 5000;
  }

  /** Prints a timestamped log line without breaking the block. */
  log(line: string, now = new Date()): void {
    this.#clear();
    this.#write(`[${now.toISOString().slice(11, 19)}] ${line}\n`);
  }

  /** Redraws (TTY) or maybe prints a line (plain; always when `force`) for a snapshot. */
  show(s: ProgressSnapshot, now = Date.now(), force = false): void {
    if (this.#tty) {
      this.#clear();
      const lines = renderTty(s, this.#width());
      this.#write(lines.join("\n") + "\n");
      this.#drawn = lines.length;
      return;
    }
    const key = `${s.done}/${s.failed}/${s.running.length}`;
    if (
      force || (key !== this.#lastCounts && now - this.#lastLine >= this.#everyMs) || now - this.#lastLine >= 60_000
    ) {
      this.#write(renderLine(s, new Date(now)) + "\n");
      this.#lastLine = now;
      this.#lastCounts = key;
    }
  }

  /** Leaves the last block on screen (TTY) and stops redrawing over it. */
  finish(): void {
    this.#drawn = 0;
  }

  #clear(): void {
    if (this.#tty && this.#drawn > 0) this.#write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }
}
