import { WIRE_VERSION } from "../broker/messages.ts";
import type { ProgressMessage, ResultMessage, SweepState, TrialMessage } from "../broker/messages.ts";
import type { Transport } from "../broker/transport.ts";
import type { ReportData } from "../report/data.ts";
import { describeParams, sweepIdOf, type Trial, trialGroup } from "../spec/expand.ts";
import { Plan } from "../spec/plan.ts";
import type { SweepSpec } from "../spec/schema.ts";
import { readRetryRounds, ResultLog, ResultsUnwritable, setAsideNotice, writeRetryRounds } from "./record.ts";
import { acquireRunLock, LOCK_FILE, type RunLock } from "./run_lock.ts";
import { hmacHex, randomHex } from "../util/hash.ts";
import { clip } from "../util/clip.ts";
import { type ProgressDisplay, SweepProgress } from "./progress.ts";
import { type LoadedManifest, readManifest, writeManifest, writeReports } from "./run_dir.ts";
import { designSize, type Proposal, ProposalLog, proposeNext, searchProgress, trialBudget } from "./search.ts";
import { ADAPTIVE_DEFAULTS, earlyStopOf, rungEpochs } from "../spec/schema.ts";
import { RungBoard, type RungLine, RungLog, rungPointOf, RUNGS_REJECTED_FILE } from "./early_stop.ts";

/** What the coordinator needs to run a sweep. */
export interface SweepOptions {
  spec: SweepSpec;
  specText: string;
  specFile: string;
  /** Parent of the run directory (`runs` by default). */
  runsDir: string;
  transport: Transport;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Live progress (a terminal block or plain lines); log lines then go through it. */
  display?: ProgressDisplay;
  /**
   * How often the coordinator checks that every trial without an outcome is queued, running or answered
   * (default 10 s); see {@link reconcile}.
   */
  reconcileMs?: number;
  /** The run directory's lock when the caller already holds it (the CLI takes it before starting a broker). */
  lock?: RunLock;
  /**
   * `--retry-failed`: every trial recorded as failed (error, refused, gave up, cancelled) runs again; finished
   * ones are kept. Its failed line moves to `results.rejected.jsonl` and its claim changes (see {@link claimOf}).
   */
  retryFailed?: boolean;
  /** How many trials are kept published and not yet recorded (default {@link PUBLISH_AHEAD}). */
  publishAhead?: number;
  /** Adaptive search without `search.parallel`: how often the live workers are counted (default {@link PRESENCE_POLL_MS}). */
  presencePollMs?: number;
}

/** How a sweep ended. */
export interface SweepOutcome {
  sweepId: string;
  runDir: string;
  data: ReportData;
  wallS: number;
  /** True when every trial has its one outcome. */
  complete: boolean;
  /** True when the sweep was cancelled (its unfinished trials are recorded as failed: cancelled). */
  cancelled: boolean;
}

/**
 * Plans, publishes, tracks and records one sweep until every trial has exactly one outcome (or `signal`
 * aborts), then writes `pareto.json` and `report.md`. Re-running the same spec continues the same run
 * directory: recorded trials are not published again.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepOutcome> {
  const t0 = performance.now();
  const sweepId = sweepIdOf(opts.spec);
  const runDir = `${opts.runsDir}/${sweepId}`;
  let manifest: LoadedManifest;
  try {
    manifest = await readManifest(runDir);
  } catch {
    const trials = Plan.of(opts.spec); // read by index: each trial is made when published, none is kept
    manifest = {
      format: "ticketsweep-sweep",
      version: 3,
      sweep_id: sweepId,
      name: opts.spec.name,
      spec_file: opts.specFile,
      spec_text: opts.specText,
      spec: opts.spec,
      trials,
      created_at: new Date().toISOString(),
    };
    await writeManifest(runDir, manifest);
  }
  return await trackSweep({ ...opts, manifest, runDir, t0 });
}

/** Holds the run directory's lock (one coordinator at a time) while tracking the sweep. */
async function trackSweep(
  o: SweepOptions & { manifest: LoadedManifest; runDir: string; t0: number },
): Promise<SweepOutcome> {
  if (o.lock) return await trackSweepLocked(o);
  const lock = await acquireRunLock(o.runDir, o.display ? (line: string) => o.display!.log(line) : o.log);
  try {
    return await trackSweepLocked({ ...o, lock });
  } finally {
    await lock.release();
  }
}

async function trackSweepLocked(
  o: SweepOptions & { manifest: LoadedManifest; runDir: string; t0: number },
): Promise<SweepOutcome> {
  const { manifest, runDir, transport, display } = o;
  const log = display ? (line: string) => display.log(line) : o.log;
  // adaptive search: the plan is what was proposed (proposals.jsonl), each proposal on disk before it is published
  const spec = manifest.spec;
  const proposals = spec.search.strategy === "adaptive"
    ? await ProposalLog.open(runDir, spec, manifest.sweep_id)
    : undefined;
  for (const s of proposals?.setAside ?? []) {
    log(`set aside line ${s.line} of ${proposals!.path} (${s.reason}): moved to proposals.rejected.jsonl`);
  }
  if (proposals?.rebuilt) {
    log(
      `${proposals.path} had lost ${proposals.rebuilt} proposals whose trials have outcomes: rebuilt from results.jsonl`,
    );
  }
  // grid and random search: the plan read by index (a trial made when it is needed, found by its id without a
  // map of every trial); adaptive search: its proposals, which grow as it runs
  const plan = manifest.trials;
  const proposed = proposals ? new Map(proposals.trials().map((t) => [t.id, t])) : undefined;
  const trialOf = (id: string): Trial | undefined => (proposed ? proposed.get(id) : plan.get(id));
  const planned = (id: string): boolean => (proposed ? proposed.has(id) : plan.has(id));
  const results = await ResultLog.open(runDir, { planned: proposed ? proposed.keys() : plan });
  for (const s of results.setAside) log(setAsideNotice(s));
  const secret = await sweepSecret(runDir);
  const rounds = await readRetryRounds(runDir);
  const retried = o.retryFailed ? results.all().filter((r) => r.status === "failed") : [];
  if (retried.length) {
    // the new rounds on disk first: after a crash before the lines move, the next start moves them (below)
    for (const r of retried) rounds.set(r.trial_id, (rounds.get(r.trial_id) ?? 0) + 1);
    await writeRetryRounds(runDir, rounds);
    const kinds = new Map<string, number>();
    for (const r of retried) kinds.set(r.failure ?? "error", (kinds.get(r.failure ?? "error") ?? 0) + 1);
    await results.supersede(
      new Set(retried.map((r) => r.trial_id)),
      (id) => `superseded: retried with --retry-failed (round ${rounds.get(id)})`,
    );
    log(
      `--retry-failed: ${retried.length} failed trial${retried.length === 1 ? "" : "s"} of ${manifest.sweep_id} run ` +
        `again (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")}); ${results.size} finished ones kept; ` +
        `their failed lines moved to results.rejected.jsonl`,
    );
  }
  /** The claim a trial carries now (its retry round's), and whether `claim` is one of an earlier round's. */
  const claimNow = (id: string) => claimOf(secret, id, rounds.get(id) ?? 0);
  const supersededClaim = (id: string, claim: string) => {
    for (let n = 0; n < (rounds.get(id) ?? 0); n++) if (claim === claimOf(secret, id, n)) return true;
    return false;
  };
  if (rounds.size) {
    // a line of an earlier retry round (a crash between the new rounds and the move of the lines, or an older copy
    // of results.jsonl put back): not the outcome of the round that runs now, which would be refused when it came
    const stale = results.all().filter((r) =>
      rounds.has(r.trial_id) && r.claim !== claimNow(r.trial_id) && supersededClaim(r.trial_id, r.claim)
    );
    if (stale.length) {
      await results.supersede(
        new Set(stale.map((r) => r.trial_id)),
        (id) => `superseded: a line of an earlier round than --retry-failed's round ${rounds.get(id)}`,
      );
      log(
        `${stale.length} line${stale.length === 1 ? "" : "s"} of results.jsonl ${
          stale.length === 1 ? "was an outcome" : "were outcomes"
        } of an earlier --retry-failed round: moved to results.rejected.jsonl; those trials' current round is recorded`,
      );
    }
  }
  const earlyStop = earlyStopOf(spec);
  let forged = 0, forgedRungs = 0;
  // an adaptive sweep's total is its budget: it may stop earlier (patience), never later
  const total = proposals ? trialBudget(spec) : plan.size;
  let searchDone = false, searchExhausted = false;
  /** Every trial has its outcome and, for adaptive search, nothing more will be proposed. */
  const finished = () =>
    proposed ? searchDone && [...proposed.keys()].every((id) => results.has(id)) : results.size >= total;
  /** The trials without an outcome, in the plan's order (each made as it is reached). */
  function* unrecorded(): Generator<Trial> {
    if (proposed) {
      for (const t of [...proposed.values()]) if (!results.has(t.id)) yield t;
      return;
    }
    for (let i = 0; i < plan.size; i++) if (!results.has(plan.idAt(i))) yield plan.at(i);
  }
  if (results.size > 0) {
    const failed = results.all().filter((r) => r.status === "failed").length;
    log(
      `resuming ${manifest.sweep_id}: ${results.size}/${total} trials already recorded` +
        (failed ? ` (${failed} failed or cancelled: add --retry-failed to run them again, keeping the rest)` : ""),
    );
  }
  const progress = new SweepProgress(manifest.sweep_id, total);
  for (const r of results.all()) {
    const t = trialOf(r.trial_id);
    progress.onRecorded(r, t ? trialGroup(t) : "?");
  }
  const ticker = display ? setInterval(() => display.show(progress.snapshot()), 500) : undefined;
  await transport.setup();
  const sweepId = manifest.sweep_id;
  let status: SweepState["status"] = "running";
  const putState = () => {
    const snap = progress.snapshot();
    return transport.putSweepState({
      v: WIRE_VERSION,
      sweep_id: sweepId,
      name: manifest.name,
      status,
      total,
      done: snap.done,
      failed: snap.failed,
      eta_s: snap.etaS,
      coordinator: Deno.hostname(),
      rejected: {
        ...transport.rejected(),
        ...(forged ? { "result without claim": forged } : {}),
        ...(forgedRungs ? { "rung report without claim": forgedRungs } : {}),
      },
      updated_at: new Date().toISOString(),
    }).catch((e) => log(`could not publish the sweep state: ${(e as Error).message}`));
  };
  let resolveCancel!: () => void;
  const cancelled = new Promise<void>((r) => (resolveCancel = r));
  let cancelAt: string | null = null;
  const onCancel = (at: string) => {
    cancelAt ??= at;
    resolveCancel();
  };
  const previous = await transport.getSweepState(sweepId).catch(() => null);
  if (previous?.status === "cancelled" && !retried.length) onCancel(previous.updated_at);
  else await putState();
  const control = transport.subscribeControl((c) => {
    if (c.sweep_id === sweepId && c.action === "cancel") onCancel(c.at);
  });
  const stateTimer = setInterval(putState, 2000);
  /**
   * Adaptive search without `search.parallel`: the workers that serve this sweep or no sweep, from their presence
   * heartbeats (at least 1); the in-flight count is it (the initial design's points all go out at once), so that
   * every live worker has a trial and each proposal sees every other result. Polled every {@link PRESENCE_POLL_MS},
   * and at once when a result comes from a worker the last count did not see; when more workers come, more is
   * proposed at once. When the presence cannot be read, {@link ADAPTIVE_DEFAULTS}' `parallel` (4).
   */
  let liveWorkers = 1;
  /** The workers of the last count (host/id): a result from another one means the count is stale. */
  let countedWorkers = new Set<string>();
  const countWorkers = async (): Promise<number> => {
    try {
      const here = (await transport.listPresence()).filter((w) => w.sweep_id === null || w.sweep_id === sweepId);
      countedWorkers = new Set(here.map((w) => `${w.host}/${w.worker}`));
      return Math.max(1, here.length);
    } catch (e) {
      if (!presenceUnreadable) {
        log(
          `could not read the workers' presence (${(e as Error).message}): keeping ` +
            `${ADAPTIVE_DEFAULTS.parallel} trials in flight (set search.parallel to choose)`,
        );
      }
      presenceUnreadable = true;
      return ADAPTIVE_DEFAULTS.parallel;
    }
  };
  let presenceUnreadable = false;
  const followWorkers = proposals !== undefined && spec.search.parallel === undefined;
  if (followWorkers) liveWorkers = await countWorkers();
  let countedAt = 0, counting = false;
  const recount = async () => {
    if (counting) return;
    counting = true;
    countedAt = Date.now();
    try {
      const n = await countWorkers();
      const more = n > liveWorkers;
      liveWorkers = n;
      if (more) inChain(topUp).then(() => finished() && resolveDone()).catch(() => {});
    } finally {
      counting = false;
    }
  };
  const presenceTimer = followWorkers ? setInterval(recount, o.presencePollMs ?? PRESENCE_POLL_MS) : undefined;
  /**
   * A result from a worker the last count did not see (local workers spawned with the sweep beat only once started)
   * counts again at once, at most once a second, rather than at the next poll.
   */
  const recountFor = (w: { host: string; id: string }) => {
    if (!followWorkers || presenceUnreadable || countedWorkers.has(`${w.host}/${w.id}`)) return;
    if (Date.now() - countedAt >= 1000) void recount();
  };
  const lastError = new Map<string, string>();
  const board = earlyStop ? new RungBoard(earlyStop.margin) : null;
  // the board as the last coordinator left it: its reports replayed in the order they were judged
  const rungLog = earlyStop ? await RungLog.open(runDir, planned) : null;
  for (const s of rungLog?.setAside ?? []) {
    log(`set aside line ${s.line} of ${rungLog!.path} (${s.reason}): moved to ${RUNGS_REJECTED_FILE}`);
  }
  for (const l of rungLog?.lines ?? []) board!.report(l.group, l.rung, rungPointOf(l));
  /** The (trial, rung) pairs in rungs.jsonl: a repeated report (a redelivered attempt) is judged, not kept again. */
  const rungKept = new Set((rungLog?.lines ?? []).map((l) => `${l.trial_id}#${l.rung}`));
  const stopSent = new Set<string>();
  /** Early stopping: judges a rung report, and tells the trial's worker to stop it when it is dominated. */
  const onRung = (p: ProgressMessage) => {
    const trial = trialOf(p.trial_id);
    if (!board || !earlyStop || !p.rung || !trial || results.has(p.trial_id) || cancelAt) return;
    if (p.rung.claim !== claimNow(p.trial_id)) {
      // progress travels without the broker checking who sent it: only the worker given the trial knows its claim
      if (forgedRungs++ === 0) {
        log(
          `ignored a rung report for trial ${p.trial_id} from ${p.host}/${p.worker}: it does not carry the trial's claim`,
        );
      }
      return;
    }
    const rung = rungEpochs(earlyStop.rungs, trial.config.training.epochs).find((r) => r.epoch === p.rung!.epoch);
    if (!rung) return;
    const line: RungLine = {
      v: 1,
      trial_id: p.trial_id,
      group: trial.config.method.name,
      rung: rung.index,
      epoch: rung.epoch,
      sparsity: p.rung.sparsity,
      val_accuracy: p.rung.val_accuracy,
      ...(p.rung.ladder?.length ? { ladder: p.rung.ladder } : {}),
    };
    const point = rungPointOf(line);
    const decision = board.report(line.group, line.rung, point);
    const key = `${line.trial_id}#${line.rung}`;
    if (!rungKept.has(key)) {
      rungKept.add(key);
      rungLog!.append(line).catch((e) => log(`could not append to ${rungLog!.path}: ${(e as Error).message}`));
    }
    if (!decision.stop || stopSent.has(p.trial_id)) return;
    stopSent.add(p.trial_id);
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    log(
      `stopping trial ${p.trial_id} at rung ${rung.index} (epoch ${rung.epoch}): sparsity ${pct(point.sparsity)}, ` +
        `accuracy ${pct(point.valAccuracy)}${
          point.ladder ? ` and its ${point.ladder.length} cuts` : ""
        } beaten by the margin ${earlyStop.margin} (first by trial ${decision.by.trialId}: ${
          pct(decision.by.sparsity)
        }, ${pct(decision.by.valAccuracy)})`,
    );
    transport.stopTrial(sweepId, p.trial_id).catch((e) =>
      log(`could not send the stop of trial ${p.trial_id}: ${(e as Error).message}`)
    );
  };
  const progressSub = transport.subscribeProgress(sweepId, (p: ProgressMessage) => {
    if (p.error) lastError.set(p.trial_id, `attempt ${p.attempt} on ${p.host}: ${p.error}`);
    if (p.rung) onRung(p);
    progress.onProgress(p);
  });
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  /** results.jsonl cannot be written (a link to a missing file, permission denied): the sweep stops with it. */
  let unwritable: ResultsUnwritable | undefined, resolveUnwritable!: () => void;
  const stopUnwritable = new Promise<void>((r) => (resolveUnwritable = r));
  if (!proposals && finished()) resolveDone();
  let chain = Promise.resolve();
  /** Bounded publishing: the publisher waits for recorded results once {@link PUBLISH_AHEAD} trials are out. */
  let wakePublisher = () => {};
  /**
   * Adaptive search: proposes points until `search.parallel` trials are in flight (default: one per live worker,
   * {@link liveWorkers}; the whole initial design at once), the budget is spent or the hypervolume stopped improving. Runs in the recording chain
   * (after a result is recorded), so proposals are made one at a time from the results recorded so far; each is
   * appended to proposals.jsonl (synced, with its basis: how many results it saw) before its trials are published.
   * How many are in flight decides only when a proposal is made, never what it is given its basis: a resume reads
   * the proposals made from proposals.jsonl and makes the next ones from the results, whatever the workers.
   */
  const topUp = async (): Promise<void> => {
    if (!proposals || cancelAt || o.signal?.aborted || searchDone) return;
    // the design's points do not depend on results: all of them at once; then one per live worker, so that each
    // proposal sees every result but those of the trials running
    const design = designSize(spec);
    const parallel = spec.search.parallel ??
      (proposals.proposals.length < design ? Math.max(design * spec.seeds.length, liveWorkers) : liveWorkers);
    for (;;) {
      const st = searchProgress(spec, results.all(), proposals.proposals);
      if (st.stop || searchExhausted) {
        searchDone = true;
        log(
          `adaptive search of ${sweepId}: no more proposals (${
            st.stop === "budget"
              ? spec.search.budget_epochs !== undefined && st.committedEpochs >= spec.search.budget_epochs
                ? `budget of ${spec.search.budget_epochs} trial-epochs spent: ${st.committedEpochs} committed`
                : `budget of ${total} trials spent`
              : st.stop === "patience"
              ? `validation hypervolume ${st.hypervolume.toFixed(4)} not improved over the last ` +
                `${st.sinceImprovement} recorded trials`
              : "no new point left in the space"
          }; ${st.proposedTrials} trials proposed)`,
        );
        return;
      }
      let inFlight = 0;
      for (const id of proposed!.keys()) if (!results.has(id)) inFlight++;
      if (inFlight >= parallel) return;
      const next = proposeNext(spec, sweepId, results.all(), proposals.proposals);
      if (!next) {
        searchExhausted = true;
        continue;
      }
      const p: Proposal = {
        v: 1,
        n: next.n,
        basis: results.size,
        kind: next.kind,
        target: next.target,
        reason: next.reason,
        trials: next.trials,
      };
      await proposals.append(p); // on disk first: every trial a worker can see is in the plan
      for (const t of p.trials) proposed!.set(t.id, t);
      log(`proposed ${describeParams(p.trials[0]!.params, p.trials[0]!.seed).replace(/ seed=.*$/, "")}: ${p.reason}`);
      await Promise.all(
        p.trials.map((t) => transport.publishTrial(trialMessage(t, spec.max_attempts, secret, earlyStop, 0))),
      );
    }
  };
  const inChain = (fn: () => Promise<void>): Promise<void> => {
    const mine = chain.then(fn);
    chain = mine.catch(() => {});
    return mine;
  };
  const record = (r: ResultMessage): Promise<void> => {
    // Results are recorded one at a time, in arrival order. A result whose recording throws (a full disk)
    // rejects its own promise only, so the transport delivers it again; the chain goes on with the next.
    const mine = chain.then(async () => {
      const trial = trialOf(r.trial_id);
      if (!trial) {
        log(`ignored a result for unknown trial ${r.trial_id}`);
        return;
      }
      if (r.claim !== claimNow(r.trial_id)) {
        if (supersededClaim(r.trial_id, r.claim)) return; // a result of a round --retry-failed superseded
        forged++;
        log(
          `rejected a result for trial ${r.trial_id} from ${r.worker.host}/${r.worker.id}: it does not carry the ` +
            "trial's claim (forged, or from another run of this sweep id)",
        );
        return;
      }
      if (r.status === "failed" && lastError.has(r.trial_id) && r.failure === "gave_up") {
        r = { ...r, error: clip(`${r.error}; last error: ${lastError.get(r.trial_id)}`, 4096) };
      }
      if (o.lock?.lost) {
        // another coordinator took the run directory over (or its lock file was removed): two recording into one
        // results.jsonl could each record a trial once, so this one records nothing more; the result stays queued
        throw new ResultsUnwritable(
          `${runDir}: this coordinator lost its lock (${LOCK_FILE} removed, or taken over by another coordinator) ` +
            `and records nothing more; the unrecorded results stay on the broker: once no other coordinator runs ` +
            `on it, continue with deno task sweep --resume ${runDir}`,
        );
      }
      if (await results.record(r, trial)) {
        recountFor(r.worker);
        wakePublisher();
        progress.onResult(r, trialGroup(trial));
        log(formatResult(r, trial, results.size, total));
      }
      await topUp(); // after a throw, the redelivered result proposes again
      if (finished()) resolveDone();
    });
    chain = mine.catch(() => {});
    return mine.catch((e) => {
      if (e instanceof ResultsUnwritable) {
        unwritable ??= e; // retrying would fail forever; the result stays on the broker for a resume
        resolveUnwritable();
        throw e;
      }
      log(`result of ${r.trial_id} not recorded yet (${(e as Error).message}); the broker delivers it again`);
      throw e;
    });
  };
  const aborted = new Promise<void>((r) => {
    if (o.signal?.aborted) r(); // a signal that came before
    else o.signal?.addEventListener("abort", () => r(), { once: true });
  });
  const sub = await transport.consumeResults(sweepId, record);
  // the results already on the broker first (those a worker published after its coordinator was killed): their
  // trials are recorded, not published and run again
  const waiting = results.size;
  await Promise.race([sub.caughtUp, aborted, cancelled, stopUnwritable]);
  await chain;
  if (results.size > waiting) {
    log(
      `recorded ${results.size - waiting} result${results.size - waiting === 1 ? "" : "s"} of ${sweepId} stored on ` +
        "the broker and not yet in results.jsonl (finished while no coordinator ran, say): their trials are not " +
        "published again",
    );
  }
  /**
   * What is published, in the order of `start` (the plan, or the proposals made before this start): the trials
   * from `acked` on are not published yet (or not acknowledged), and the reconciliation does not take them for lost.
   */
  const start = proposed ? Plan.fromList(spec, sweepId, [...proposed.values()]) : plan;
  let acked = 0;
  let publishing: Promise<void> = Promise.resolve();
  if (!cancelAt && !unwritable) {
    // the trials to publish: those without an outcome at this start (a bit each, not a list of trials)
    const recordedAtStart = new Uint8Array(start.size);
    for (const r of results.all()) {
      const i = start.indexOf(r.trial_id);
      if (i >= 0) recordedAtStart[i] = 1;
    }
    const pending = start.size - recordedAtStart.reduce((n, b) => n + b, 0);
    // at most PUBLISH_AHEAD published and not yet recorded, pipelined: up to 256 publishes awaiting their
    // acknowledgement at once; the first window now, the rest as results are recorded
    let next = 0, cursor = 0;
    const limit = o.publishAhead ?? PUBLISH_AHEAD;
    // publishes wait until a batch's worth has been recorded: one at a time, each awaiting its acknowledgement,
    // publishing would be one broker round trip per trial
    const batchSize = Math.max(1, Math.min(256, limit >> 2));
    const base = results.size, ahead = () => next - (results.size - base);
    const publishSome = async () => {
      const want = Math.min(256, limit - ahead()), batch: Trial[] = [];
      let taken = 0;
      for (; taken < want && cursor < start.size; cursor++) {
        if (recordedAtStart[cursor]) continue;
        taken++;
        if (!results.has(start.idAt(cursor))) batch.push(start.at(cursor)); // recorded since: a redelivered copy
      }
      next += taken;
      const end = cursor;
      await Promise.all(
        batch.map((t) =>
          transport.publishTrial(trialMessage(t, manifest.spec.max_attempts, secret, earlyStop, rounds.get(t.id)))
        ),
      );
      acked = end;
    };
    const publishedAll = () => log(`published ${next} trial${next === 1 ? "" : "s"} of ${sweepId}`);
    while (next < pending && ahead() < limit && !o.signal?.aborted) await publishSome();
    if (next >= pending) {
      acked = start.size;
      if (next) publishedAll();
    } else {
      publishing = (async () => {
        while (next < pending && !o.signal?.aborted && !cancelAt) {
          if (limit - ahead() >= batchSize) await publishSome();
          else await new Promise<void>((r) => (wakePublisher = r));
        }
        if (next >= pending) {
          acked = start.size;
          publishedAll();
        }
      })();
    }
    if (proposals) {
      await inChain(topUp);
      if (finished()) resolveDone();
    }
  }
  const reconciler = reconcile({
    sweepId,
    transport,
    everyMs: o.reconcileMs ?? 10_000,
    missing: () => {
      if (cancelAt || finished()) return [];
      const lost: Trial[] = [];
      // the published part of the start's trials, then (adaptive search) every proposal made since
      for (let i = 0; i < acked; i++) if (!results.has(start.idAt(i))) lost.push(start.at(i));
      for (const t of proposed?.values() ?? []) if (!results.has(t.id) && start.indexOf(t.id) < 0) lost.push(t);
      return lost;
    },
    republish: (t, n) =>
      transport.publishTrial(trialMessage(t, manifest.spec.max_attempts, secret, earlyStop, rounds.get(t.id)), n),
    log,
  });
  // a publish that fails stops the sweep with its error, as it did when everything was published up front
  await Promise.race([done, aborted, cancelled, stopUnwritable, publishing.then(() => new Promise<void>(() => {}))]);
  reconciler.stop();
  wakePublisher(); // it sees the abort or the cancel and stops
  await publishing.catch((e) => log(`could not publish the remaining trials: ${(e as Error).message}`));
  if (cancelAt && !unrecorded().next().done) {
    // every trial still without an outcome gets one: cancelled
    const reason = `cancelled (deno task sweep cancel, ${cancelAt})`;
    for (const t of unrecorded()) {
      await record({
        v: WIRE_VERSION,
        sweep_id: sweepId,
        trial_id: t.id,
        status: "failed",
        attempt: 1,
        error: reason,
        failure: "cancelled",
        worker: { id: "coordinator", host: Deno.hostname(), backend: "none", device: "none", deno: Deno.version.deno },
        finished_at: new Date().toISOString(),
        claim: claimNow(t.id),
      }).catch((e) => log(`could not record ${t.id} as cancelled: ${(e as Error).message}`));
    }
    log(`sweep ${sweepId} cancelled: unfinished trials recorded as failed (${reason})`);
  }
  await sub.stop();
  await progressSub.stop();
  await control.stop();
  await chain;
  clearInterval(stateTimer);
  clearInterval(presenceTimer);
  status = cancelAt ? "cancelled" : finished() ? "complete" : "stopped";
  await putState();
  clearInterval(ticker);
  display?.show(progress.snapshot(), Date.now(), true);
  display?.finish();
  if (unwritable) throw unwritable;
  const restored = await results.restoreMissing();
  if (restored) {
    log(
      `${results.path} had lost ${restored} of the ${results.size} recorded outcomes while the sweep ran ` +
        "(truncated or replaced by another process?): written again from memory",
    );
  }
  const data = await writeReports(
    runDir,
    { ...manifest, trials: proposed ? [...proposed.values()] : plan },
    results.each(),
    log,
  );
  return {
    sweepId: manifest.sweep_id,
    runDir,
    data,
    wallS: (performance.now() - o.t0) / 1000,
    complete: finished(),
    cancelled: cancelAt !== null,
  };
}

/**
 * How many trials a coordinator keeps published and not yet recorded: the rest of a large plan is published as
 * results come in, so starting a 100,000-trial sweep publishes 4,096 and the trial stream never holds the whole plan.
 */
export const PUBLISH_AHEAD = 4096;

/** How often an adaptive search without `search.parallel` counts the live workers (their heartbeats come every 5 s). */
export const PRESENCE_POLL_MS = 5000;

/**
 * Keeps every trial reachable: every `everyMs` it asks the broker where the sweep's unfinished work is, and
 * when twice in a row nothing is queued, nothing is running and every published result has been handled, yet
 * trials still have no outcome, those trials are nowhere (their message was lost: dropped by the duplicate
 * window of an earlier run, a torn results.jsonl line whose result was already consumed, a purge, a message
 * past its deliveries); it publishes each again as a new copy and says so. At worst a trial then runs twice,
 * and only its first result is recorded.
 */
export function reconcile(o: {
  sweepId: string;
  transport: Transport;
  everyMs: number;
  missing: () => Trial[];
  republish: (t: Trial, n: number) => Promise<void>;
  log: (line: string) => void;
}): { stop(): void } {
  let idleChecks = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      if (o.missing().length === 0) return;
      const q = await o.transport.queueInfo(o.sweepId);
      idleChecks = q.queued === 0 && q.running === 0 && q.unrecorded === 0 ? idleChecks + 1 : 0;
      if (idleChecks < 2) return;
      const lost = o.missing(); // asked again: a result may have been recorded meanwhile
      if (lost.length === 0) return;
      idleChecks = 0;
      const copy = Date.now(); // unique across coordinators, unlike a counter
      for (const t of lost) await o.republish(t, copy);
      o.log(
        `${lost.length} trial${lost.length === 1 ? " was" : "s were"} neither queued, running nor answered on the ` +
          `broker: published again (${lost.slice(0, 3).map((t) => t.id).join(", ")}${lost.length > 3 ? ", ..." : ""})`,
      );
    } catch (e) {
      o.log(`could not check the sweep's queue: ${(e as Error).message}`);
    } finally {
      busy = false;
    }
  }, o.everyMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * A trial's claim: the HMAC of its id (and, from its first `--retry-failed` on, its retry round) under the
 * sweep's secret. It travels with the trial, and a result is recorded only when it carries it back, so a worker
 * can report only trials it was given; the trial's publish key contains it, so a retried trial is a new message.
 */
export function claimOf(secret: string, trialId: string, round = 0): string {
  return hmacHex(secret, round ? `${trialId}#${round}` : trialId).slice(0, 32);
}

/** The sweep's secret (`runs/<sweep>/secret`, owner-only), created on first use. */
export async function sweepSecret(runDir: string): Promise<string> {
  const path = `${runDir}/secret`;
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    const secret = randomHex(32);
    await Deno.mkdir(runDir, { recursive: true });
    await Deno.writeTextFile(path, secret + "\n", { mode: 0o600 });
    return secret;
  }
}

/** The wire message that carries a planned trial to a worker. */
export function trialMessage(
  t: Trial,
  maxAttempts: number,
  secret: string,
  earlyStop: { rungs: readonly number[] } | null = null,
  round = 0,
): TrialMessage {
  const rungs = earlyStop ? rungEpochs(earlyStop.rungs, t.config.training.epochs).map((r) => r.epoch) : [];
  return {
    v: WIRE_VERSION,
    sweep_id: t.sweepId,
    trial_id: t.id,
    params: t.params,
    seed: t.seed,
    config: t.config,
    max_attempts: maxAttempts,
    claim: claimOf(secret, t.id, round),
    ...(rungs.length ? { rungs } : {}),
  };
}

/** Resumes a sweep from its run directory alone. */
export async function resumeSweep(
  runDir: string,
  opts: Omit<SweepOptions, "spec" | "specText" | "specFile" | "runsDir">,
): Promise<SweepOutcome> {
  const manifest = await readManifest(runDir);
  return await trackSweep({
    ...opts,
    spec: manifest.spec,
    specText: manifest.spec_text,
    specFile: manifest.spec_file,
    runsDir: runDir.replace(/\/[^/]*$/, ""),
    manifest,
    runDir,
    t0: performance.now(),
  });
}

function formatResult(r: ResultMessage, t: Trial, n: number, total: number): string {
  const head = `[${n}/${total}] trial ${r.trial_id} ${describeParams(t.params, t.seed)}`;
  if (r.status === "failed") return `${head}: FAILED (${r.error})`;
  const m = r.metrics!;
  if (r.status === "stopped") {
    return `${head}: STOPPED early after ${m.stopped!.epochs.toFixed(2)} of ${m.stopped!.planned_epochs} epochs ` +
      `(dominated at its rung): accuracy ${(100 * m.accuracy).toFixed(2)}%, sparsity ${(100 * m.sparsity).toFixed(2)}%`;
  }
  return `${head}: accuracy ${(100 * m.accuracy).toFixed(2)}%, sparsity ${(100 * m.sparsity).toFixed(2)}%, ` +
    `${m.steps_per_s.toFixed(0)} steps/s on ${m.backend} (${r.worker.host})`;
}
