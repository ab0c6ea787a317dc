/**
 * The run directory's identity and its life cycle across starts, restarts and resumes (docs/RELIABILITY.md).
 *
 * - Every run has a **run id**, written in `config.json` and in every checkpoint's `state.json`.
 * - A fresh start in a directory that already holds a run is refused unless `overwrite` is set; then the old
 *   run's files move (one rename each, nothing deleted) into `<run>/.previous-<time>/`.
 * - `resume` continues only the run recorded in `config.json`: a checkpoint of another run id is refused,
 *   and so is a changed config, except for the keys in `RESUME_CHANGEABLE` and those the caller allows.
 * - The step-keyed logs (`STEP_LOGS`) are cut back to the checkpoint's step on resume, atomically.
 *
 * `planRun` only reads; `openRun` is the first function that writes into the run directory, and the trainer
 * calls it after every check has passed, so a start that fails leaves the directory as it found it.
 * @module
 */
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { CohortError } from "../errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { checkpointsDir, latestCheckpoint, listCheckpoints, readCheckpointState } from "./checkpoint.js";
import type { TrainConfig } from "./config.js";

/** What the trainer writes into a run directory: their presence means the directory holds a run. */
export const RUN_ENTRIES = [
  "config.json",
  "history.jsonl",
  "metrics.jsonl",
  "samples.jsonl",
  "reward_failures.jsonl",
  "checkpoints",
  "final",
  "sync",
] as const;

/** Append-only logs whose lines carry `step`: cut back to the checkpoint's step on resume. */
export const STEP_LOGS = ["metrics.jsonl", "samples.jsonl", "reward_failures.jsonl"] as const;

/**
 * Config keys (and key prefixes) that `--resume` accepts changed: they decide how long the run goes, what is
 * evaluated and logged, when checkpoints are written and where work runs, but not what a step computes.
 * `train.steps` only under a constant learning-rate schedule (linear and cosine schedules stretch with it).
 */
export const RESUME_CHANGEABLE = [
  "train.steps",
  "eval",
  "checkpoint",
  "threads",
  "rewardTimeoutMs",
  "rewardConcurrency",
  "name",
  "outputDir",
  "sampler.baseUrl",
  "sampler.baseUrls",
  "sampler.apiKeyEnv",
  "sampler.timeoutMs",
  "sampler.maxRetries",
  "sampler.backoffMs",
  "sampler.maxConcurrency",
  "sampler.healthIntervalMs",
] as const;

/** Keys of config.json that are not part of the training configuration. */
const NOT_CONFIG = new Set(["configFile", "runId"]);
/** The inputs of `resolvedAlgo`: when one of them may change, so may the resolved algorithm. */
const ALGO_INPUTS = ["preset", "algo", "rewards", "sampling.maxNewTokens"];

export interface RunOptions {
  resume?: boolean;
  /** A fresh start in a directory holding a run moves that run aside instead of refusing. */
  overwrite?: boolean;
  /** With `resume`: config keys (or prefixes, e.g. `train.lr`, `algo`) allowed to differ from the saved run. */
  allowConfigChange?: readonly string[];
}

/** What `planRun` decided; `openRun` carries it out. */
export type RunPlan =
  | {
      kind: "fresh";
      runId: string;
      /** Entries of a previous run to move aside (`overwrite`). */
      previous: string[];
    }
  | {
      kind: "resume";
      runId: string;
      /** The checkpoint to load, or null: the run restarts from step 0 (it died before its first checkpoint). */
      checkpoint: string | null;
      /** Changed config keys that were allowed, with their old and new values. */
      changed: ConfigChange[];
      /** config.json as saved (rewritten with the new values when keys changed). */
      saved: Record<string, unknown>;
    };

export interface ConfigChange {
  key: string;
  from: string;
  to: string;
}

/** A new run id: UTC start time and 6 random hex digits, e.g. `20250107T101500Z-3fa9c2`. */
export function newRunId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${t}-${randomBytes(3).toString("hex")}`;
}

/** The entries of RUN_ENTRIES present in `runDir`. */
export function runEntries(runDir: string): string[] {
  if (!existsSync(runDir)) return [];
  const have = new Set(readdirSync(runDir));
  return RUN_ENTRIES.filter((e) => have.has(e));
}

/** Refuses a run directory (or a folder above it) that exists but is not a directory. */
function checkDirectoryPath(runDir: string, cfg: TrainConfig): void {
  let p = runDir;
  for (;;) {
    if (existsSync(p)) {
      if (!statSync(p).isDirectory()) {
        throw new CohortError(
          `the run directory ${runDir} cannot be created: ${p} is a file, not a directory. ` +
            `Set outputDir (now ${JSON.stringify(cfg.outputDir)}) or name (now ${JSON.stringify(cfg.name)}) to a folder path`,
        );
      }
      return;
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

function readSavedConfig(runDir: string): Record<string, unknown> | null {
  const path = join(runDir, "config.json");
  if (!existsSync(path)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CohortError(
      `${path} is not valid JSON (${(e as Error).message}); the run's saved config is damaged, so it cannot be ` +
        "resumed safely. Start a new run with --overwrite (the old files are kept in .previous-<time>/) or another name",
    );
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new CohortError(`${path} is not a run config (expected a JSON object)`);
  return v as Record<string, unknown>;
}

/** The config as it is saved in config.json (and compared on resume). */
export function savedForm(cfg: TrainConfig, runId: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify({ ...cfg, resolvedAlgo: cfg.resolvedAlgo, runId })) as Record<string, unknown>;
}

function leaves(v: unknown, prefix: string, out: Map<string, string>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 0 && prefix !== "") out.set(prefix, "{}");
    for (const k of keys) {
      if (prefix === "" && NOT_CONFIG.has(k)) continue;
      leaves((v as Record<string, unknown>)[k], prefix === "" ? k : `${prefix}.${k}`, out);
    }
  } else out.set(prefix, JSON.stringify(v));
}

/** Leaf keys whose values differ between two saved configs (`resolvedAlgo.*` included). */
export function configChanges(before: Record<string, unknown>, after: Record<string, unknown>): ConfigChange[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  leaves(before, "", a);
  leaves(after, "", b);
  const out: ConfigChange[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const from = a.get(key) ?? "(absent)";
    const to = b.get(key) ?? "(absent)";
    if (from !== to) out.push({ key, from, to });
  }
  return out.sort((x, y) => x.key.localeCompare(y.key));
}

const under = (key: string, prefix: string) => key === prefix || key.startsWith(`${prefix}.`);
const short = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}…` : s);

/** Splits config changes into allowed and refused ones; refused ones carry the reason when it is not obvious. */
function judgeChanges(
  changes: ConfigChange[],
  allow: readonly string[],
  saved: Record<string, unknown>,
  cfg: TrainConfig,
  checkpointStep: number,
): { allowed: ConfigChange[]; refused: { change: ConfigChange; why?: string }[] } {
  const allowed: ConfigChange[] = [];
  const refused: { change: ConfigChange; why?: string }[] = [];
  const byFlag = (key: string) => allow.some((p) => under(key, p));
  const userKeys = changes.filter((c) => !under(c.key, "resolvedAlgo"));
  for (const c of changes) {
    if (byFlag(c.key)) {
      allowed.push(c);
      continue;
    }
    if (under(c.key, "resolvedAlgo")) {
      // the resolved algorithm follows its inputs: allowed where a changed input was allowed
      const explained = userKeys.some((u) => ALGO_INPUTS.some((i) => under(u.key, i)) && byFlag(u.key));
      if (explained) allowed.push(c);
      else refused.push({ change: c });
      continue;
    }
    if (c.key === "train.steps") {
      const schedule = (saved.train as { schedule?: unknown } | undefined)?.schedule ?? "constant";
      if (schedule !== "constant" || cfg.train.schedule !== "constant")
        refused.push({ change: c, why: `the ${cfg.train.schedule} learning-rate schedule spans train.steps` });
      else if (cfg.train.steps < checkpointStep)
        refused.push({ change: c, why: `the checkpoint is already at step ${checkpointStep}` });
      else allowed.push(c);
      continue;
    }
    if (RESUME_CHANGEABLE.some((p) => under(c.key, p))) allowed.push(c);
    else refused.push({ change: c });
  }
  return { allowed, refused };
}

function describeRun(runDir: string, saved: Record<string, unknown> | null, entries: string[]): string {
  const id = typeof saved?.runId === "string" ? `run ${saved.runId}` : "a run";
  const cks = listCheckpoints(runDir);
  const last = cks.at(-1);
  const ck = last === undefined ? "no checkpoint" : `checkpoints up to ${last}`;
  return `${id} (${ck}; ${entries.join(", ")})`;
}

/** Decides how a start proceeds: a fresh run or the resume of the directory's run. Reads only. */
export function planRun(runDir: string, cfg: TrainConfig, o: RunOptions, log: (l: string) => void): RunPlan {
  checkDirectoryPath(runDir, cfg);
  const entries = runEntries(runDir);
  const saved = readSavedConfig(runDir);
  if (o.resume && o.overwrite)
    throw new CohortError("--resume continues the run in the directory and --overwrite replaces it; pick one");
  if (!o.resume || (saved === null && entries.length === 0)) {
    if (o.resume) log(`no run in ${runDir}; starting a new run from step 0`);
    if (entries.length > 0 && !o.overwrite) {
      throw new CohortError(
        `${runDir} already holds ${describeRun(runDir, saved, entries)}. Continue it with --resume, replace it with ` +
          `--overwrite (its files move to ${join(runDir, ".previous-<time>")}/, nothing is deleted), or choose ` +
          "another name or outputDir",
      );
    }
    return { kind: "fresh", runId: newRunId(), previous: entries };
  }
  if (saved === null) {
    throw new CohortError(
      `${runDir} has no config.json, so the run it holds (${entries.join(", ")}) cannot be checked before it is ` +
        "resumed. Start a new run with --overwrite (the old files are kept in .previous-<time>/) or another name",
    );
  }
  const legacy = typeof saved.runId !== "string";
  const runId = legacy ? newRunId() : (saved.runId as string);
  const checkpoint = latestCheckpoint(runDir);
  let step = 0;
  if (checkpoint !== null) {
    const state = readCheckpointState(checkpoint, runDir);
    step = Number(state.step);
    const ckId = state.runId;
    if (typeof ckId !== "string") {
      if (!legacy)
        log(`${checkpoint} carries no run id (written before run ids existed); resuming run ${runId} from it`);
    } else if (legacy || ckId !== runId) {
      throw new CohortError(
        `${checkpoint} belongs to run ${ckId}, but ${join(runDir, "config.json")} records ` +
          `${legacy ? "a run without an id" : `run ${runId}`}; resuming would continue another run's weights. ` +
          `Remove that checkpoint (or move it away), or start a new run with --overwrite`,
      );
    }
  }
  const { allowed, refused } = judgeChanges(
    configChanges(saved, savedForm(cfg, runId)),
    o.allowConfigChange ?? [],
    saved,
    cfg,
    step,
  );
  if (refused.length > 0) {
    const user = refused.filter((r) => !under(r.change.key, "resolvedAlgo"));
    const algo = refused.length - user.length;
    const lines = user
      .slice(0, 12)
      .map((r) => `  ${r.change.key}: ${short(r.change.from)} → ${short(r.change.to)}${r.why ? ` (${r.why})` : ""}`);
    if (user.length > 12) lines.push(`  … and ${user.length - 12} more`);
    if (algo > 0) lines.push(`  resolvedAlgo: ${algo} field(s) of the resolved algorithm (preset + algo:) differ`);
    throw new CohortError(
      `--resume: the config differs from the one run ${runId} was started with, in keys that change what a step ` +
        `computes:\n${lines.join("\n")}\nUndo these changes to continue the run, start a new run (--overwrite or ` +
        `another name), or accept them with --allow-config-change ${[...new Set(refused.map((r) => topKey(r.change.key)))].join(",")}. ` +
        `Changeable on resume: ${RESUME_CHANGEABLE.join(", ")}`,
    );
  }
  if (checkpoint === null) log(`run ${runId} has no checkpoint yet; restarting it from step 0`);
  return { kind: "resume", runId, checkpoint, changed: allowed, saved };
}

/** A leaf value of `configChanges` back as JSON (null for an absent key). */
function fromLeaf(s: string): unknown {
  return s === "(absent)" ? null : (JSON.parse(s) as unknown);
}

/** The key to name in --allow-config-change for a changed leaf: resolvedAlgo as a whole, else the leaf. */
function topKey(key: string): string {
  return under(key, "resolvedAlgo") ? "resolvedAlgo" : key;
}

/** Appends lines to a log file; a failed write (full disk, permissions) becomes a CohortError naming the file. */
export function appendLines(path: string, lines: readonly string[]): void {
  if (lines.length === 0) return;
  try {
    appendFileSync(path, `${lines.join("\n")}\n`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CohortError(
      `could not append to ${path}: ${err.code ?? err.message}${err.code === "ENOSPC" ? " (the disk is full)" : ""}. ` +
        "The run stops here; its last checkpoint is intact. Free space (or fix the permissions) and continue with --resume",
    );
  }
}

/** Keeps only the lines of a JSONL log whose `step` is ≤ `step` (rewritten atomically; cut lines are dropped). */
export function truncateStepLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => {
      if (l.trim() === "") return false;
      try {
        const s = (JSON.parse(l) as { step?: unknown }).step;
        return typeof s === "number" && s <= step;
      } catch {
        return false; // a line cut by a crash mid-write
      }
    });
  writeFileAtomic(path, kept.map((l) => `${l}\n`).join(""));
}

/** A new `.previous-<time>` folder in `runDir` (a suffix when two starts fall in the same second). */
function previousDir(runDir: string): string {
  const t = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  for (let i = 1; ; i++) {
    const dir = join(runDir, i === 1 ? `.previous-${t}` : `.previous-${t}-${i}`);
    try {
      mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

/**
 * Carries out a plan (rank 0 only): moves an overwritten run aside, writes config.json with the run id, creates
 * or cuts back the step logs to `step`, removes unfinished checkpoint folders and records the start in
 * history.jsonl. Everything before it only reads.
 */
export function openRun(runDir: string, plan: RunPlan, cfg: TrainConfig, step: number): void {
  mkdirSync(runDir, { recursive: true });
  const time = new Date().toISOString();
  let movedTo: string | undefined;
  if (plan.kind === "fresh" && plan.previous.length > 0) {
    // one rename per entry: an interruption leaves each file either in place or moved, never half-written
    movedTo = previousDir(runDir);
    for (const e of plan.previous) renameSync(join(runDir, e), join(movedTo, e));
  }
  if (plan.kind === "fresh" || plan.changed.length > 0)
    writeJsonAtomic(join(runDir, "config.json"), savedForm(cfg, plan.runId));
  else if (plan.saved.runId !== plan.runId)
    writeJsonAtomic(join(runDir, "config.json"), { ...plan.saved, runId: plan.runId });
  for (const name of STEP_LOGS) {
    const path = join(runDir, name);
    if (plan.kind === "fresh") {
      if (name !== "reward_failures.jsonl") writeFileAtomic(path, "");
    } else truncateStepLog(path, plan.checkpoint === null ? -1 : step);
  }
  // checkpoint folders a killed save left behind (step-N written to .tmp-step-N-<pid>, then renamed)
  const ckRoot = checkpointsDir(runDir);
  if (existsSync(ckRoot))
    for (const n of readdirSync(ckRoot))
      if (n.startsWith(".tmp-")) rmSync(join(ckRoot, n), { recursive: true, force: true });
  const event: Record<string, unknown> = { time, event: plan.kind === "fresh" ? "start" : "resume", runId: plan.runId };
  if (plan.kind === "resume") event.step = plan.checkpoint === null ? 0 : step;
  if (movedTo !== undefined) event.previousRunMovedTo = movedTo;
  if (plan.kind === "resume" && plan.changed.length > 0)
    event.configChanged = plan.changed.map((c) => ({ key: c.key, from: fromLeaf(c.from), to: fromLeaf(c.to) }));
  appendLines(join(runDir, "history.jsonl"), [JSON.stringify(event)]);
}
