import type { ResultMessage } from "../broker/messages.ts";
import type { Trial } from "../spec/expand.ts";
import { decodeBase64 } from "../util/base64.ts";
import { ticketManifest, writeTicket } from "../ticket/format.ts";

/** One line of `results.jsonl`: the result as received, with the ticket's bits moved out to `tickets/`. */
export type RecordedResult = ResultMessage;

/**
 * The append-only record of outcomes of a sweep: `results.jsonl`, one JSON object per line, at most one
 * line per trial id (recording is idempotent). Tickets go to `tickets/<trial>/`.
 */
export class ResultLog {
  readonly path: string;
  readonly #dir: string;
  readonly #byId = new Map<string, RecordedResult>();

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = `${dir}/results.jsonl`;
  }

  /** Opens the log of a run directory, reading what is already there; a torn last line is ignored. */
  static async open(dir: string): Promise<ResultLog> {
    const log = new ResultLog(dir);
    let text = "";
    try {
      text = await Deno.readTextFile(log.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const lines = text.split("\n");
    let good = "";
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as RecordedResult;
        if (!log.#byId.has(r.trial_id)) log.#byId.set(r.trial_id, r);
        good += line + "\n";
      } catch {
        // a line cut by a crash mid-write: drop it; the broker will deliver that result again
      }
    }
    if (good !== text) await Deno.writeTextFile(log.path, good);
    return log;
  }

  has(trialId: string): boolean {
    return this.#byId.has(trialId);
  }

  get size(): number {
    return this.#byId.size;
  }

  all(): RecordedResult[] {
    return [...this.#byId.values()];
  }

  /**
   * Records a result unless its trial already has one; writes the ticket first, then the line.
   * @returns whether it was new.
   */
  async record(r: ResultMessage, trial: Trial): Promise<boolean> {
    if (this.#byId.has(r.trial_id)) return false;
    let line: RecordedResult = r;
    if (r.metrics?.ticket) {
      const { bits_b64, ...ticket } = r.metrics.ticket;
      await writeTicket(`${this.#dir}/tickets/${r.trial_id}`, ticketManifest(r, trial), decodeBase64(bits_b64));
      line = { ...r, metrics: { ...r.metrics, ticket: { ...ticket, bits_b64: "" } } };
    }
    await Deno.writeTextFile(this.path, JSON.stringify(line) + "\n", { append: true });
    this.#byId.set(r.trial_id, line);
    return true;
  }
}
