import type { SweepState, WorkerPresence } from "../broker/messages.ts";
import type { Transport } from "../broker/transport.ts";
import { duration } from "./progress.ts";

/** A worker is shown as gone when its last heartbeat is older than this (its entry expires at 20 s). */
export const GONE_AFTER_MS = 12_000;

/**
 * A running coordinator refreshes its sweep's state every 2 s; a `running` state older than this means its
 * coordinator is gone (killed, its machine lost): the sweep is shown as orphaned, not as live.
 */
export const ORPHANED_AFTER_MS = 30_000;

/** One sweep's numbers as `status` shows them. */
export interface SweepStatus {
  state: SweepState;
  /** Its state says running but its coordinator stopped refreshing it ({@link ORPHANED_AFTER_MS}). */
  orphaned: boolean;
  queued: number;
  running: number;
  workers: (WorkerPresence & { gone: boolean })[];
}

/** What `status` shows: each sweep with its workers, and the workers running no trial. */
export interface BrokerStatus {
  sweeps: SweepStatus[];
  idle: (WorkerPresence & { gone: boolean })[];
  /** Why the workers are not listed (credentials that may not read the worker bucket, e.g. the worker role). */
  workersHidden?: string;
}

/**
 * The broker's message when an error (or one in its cause chain) is the broker refusing these credentials a
 * permission, e.g. `Permissions Violation for Publish to "$JS.API.STREAM.CREATE.KV_ticketsweep_sweeps"`.
 */
export function permissionViolation(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    if (/Permissions? Violation/i.test(c.message)) return c.message;
  }
  return undefined;
}

/** Sweep states and worker presence from the broker; `sweepId` narrows to one sweep. */
export async function gatherStatus(transport: Transport, sweepId?: string, now = Date.now()): Promise<BrokerStatus> {
  // least-privilege credentials (the worker role) may read sweep states but not the worker list, and cannot
  // create the sweep bucket on a broker no coordinator used yet
  const states = (await transport.listSweepStates().catch((e) => {
    if (/STREAM\.CREATE/.test(permissionViolation(e) ?? "")) return []; // no bucket: no sweep ran here yet
    throw e;
  })).filter((s) => !sweepId || s.sweep_id === sweepId);
  let workersHidden: string | undefined;
  const listed = await transport.listPresence().catch((e) => {
    if (!permissionViolation(e)) throw e;
    workersHidden = "workers not shown: these credentials may not read the worker list (the coordinator's may)";
    return [];
  });
  const presence = listed.map((p) => ({
    ...p,
    gone: now - Date.parse(p.updated_at) > GONE_AFTER_MS,
  }));
  const sweeps = states.sort((a, b) => b.updated_at.localeCompare(a.updated_at)).map((state) => {
    const workers = presence.filter((p) => p.sweep_id === state.sweep_id);
    const running = state.status === "running" || state.status === "stopped"
      ? workers.filter((w) => !w.gone && w.trial_id).length
      : 0;
    return {
      state,
      orphaned: state.status === "running" && now - Date.parse(state.updated_at) > ORPHANED_AFTER_MS,
      running,
      queued: Math.max(0, state.total - state.done - state.failed - running),
      workers,
    };
  });
  return { sweeps, idle: presence.filter((p) => !p.trial_id), ...(workersHidden ? { workersHidden } : {}) };
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

const rejectedText = (r: Record<string, number>) =>
  Object.entries(r).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(", ") || "none";

/** Human-readable status: per sweep its counts and ETA, then each worker with host, engine, trial and speed. */
export function renderStatus({ sweeps: list, idle, workersHidden }: BrokerStatus, now = Date.now()): string {
  const out: string[] = [];
  if (list.length === 0) out.push("no sweeps on this broker", "");
  for (const s of list) {
    const st = s.state;
    out.push(
      `${st.sweep_id} (${st.name}): ${
        s.orphaned
          ? `orphaned (its coordinator ${st.coordinator} stopped updating it; workers still run its trials and ` +
            `their results wait on the broker: continue it with deno task sweep --resume runs/${st.sweep_id}, ` +
            `or cancel it)`
          : st.status
      }; ${st.total} trials: ${s.queued} queued, ${s.running} running, ` +
        `${st.done} done, ${st.failed} failed` +
        (st.status === "running" && !s.orphaned && st.eta_s !== null ? `; ETA ${duration(st.eta_s)}` : "") +
        `; coordinator ${st.coordinator}, updated ${duration((now - Date.parse(st.updated_at)) / 1000)} ago` +
        `; rejected messages: ${rejectedText(st.rejected)}`,
    );
    if (s.workers.length) {
      out.push(
        table(
          ["  host", "worker", "engine", "device", "trial", "step", "steps/s", "seen", "state"],
          s.workers.map((w) => [
            `  ${w.host}`,
            w.worker,
            w.backend,
            w.device,
            w.trial_id ? w.trial_id + (w.packed ? ` +${w.packed} packed` : "") : "-",
            w.total_steps ? `${w.step}/${w.total_steps}` : w.trial_id ? "starting" : "-",
            w.steps_per_s === null ? "-" : w.steps_per_s.toFixed(0),
            `${duration((now - Date.parse(w.updated_at)) / 1000)} ago`,
            w.gone ? "gone" : "active",
          ]),
        ),
      );
    }
    out.push("");
  }
  if (idle.length) {
    out.push(
      `idle workers: ${
        idle.map((w) =>
          `${w.host}/${w.worker} (${w.backend}, ${w.done} done, rejected ${rejectedText(w.rejected)}${
            w.gone ? ", gone" : ""
          })`
        )
          .join("; ")
      }`,
    );
  }
  if (workersHidden) out.push(workersHidden);
  return out.join("\n").trimEnd();
}
