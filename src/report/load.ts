/**
 * Reading run directories for the report: a single run (`config.json`, `metrics.jsonl`, `samples.jsonl`,
 * `final/`), a results directory of `cohort compare` (`compare.json` plus one run directory per preset×seed),
 * or any folder whose subfolders are runs.
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { CohortError } from "../errors.js";

export type MetricValue = number | string | null | boolean;
export type MetricRow = Record<string, MetricValue>;

/**
 * One row of samples.jsonl: a held-out completion of an evaluation (`kind: "eval"`, greedy by default) or a
 * sampled rollout of a training step (`kind: "rollout"`, TRL's completion table: with its group and advantage).
 */
export interface SampleRow {
  step: number;
  kind: "eval" | "rollout";
  prompt: string;
  completion: string;
  answer: string | null;
  /** Whether the evaluation metric counts it correct (the verifier, or eval.metric's reward ≥ its pass mark). */
  correct: boolean | null;
  /** Every reward function's score (null: not applicable, or not logged). */
  rewards: Record<string, number | null> | null;
  /** Rollouts: the combined reward, the advantage (a token advantage's mean) and the group. */
  reward?: number | null;
  advantage?: number | null;
  group?: number;
  /** A generated picture (digits_flow evaluations): row-major grey levels in [−1, 1]. */
  image?: SampleImage;
  /** The episode's return (control evaluations). */
  return?: number | null;
}

export interface SampleImage {
  width: number;
  height: number;
  pixels: number[];
}

function toImage(v: unknown): SampleImage | null {
  if (v === null || typeof v !== "object") return null;
  const { width, height, pixels } = v as Record<string, unknown>;
  if (!Number.isInteger(width) || !Number.isInteger(height) || !Array.isArray(pixels)) return null;
  if ((width as number) * (height as number) !== pixels.length || (width as number) > 64 || (height as number) > 64)
    return null;
  if (!pixels.every((p) => typeof p === "number" && Number.isFinite(p))) return null;
  return { width: width as number, height: height as number, pixels: pixels as number[] };
}

export type RunStatus = "finished" | "running" | "incomplete" | "failed" | "pending" | "stopped";

export interface RunData {
  /** Run name (the directory name). */
  name: string;
  dir: string;
  preset: string;
  seed: number | null;
  status: RunStatus;
  /** Why the run failed (from compare.json). */
  error?: string;
  /** The run's config.json (null when the run has not started). */
  config: Record<string, unknown> | null;
  metrics: MetricRow[];
  /** Held-out completions logged at evaluations. */
  samples: SampleRow[];
  /** Sampled rollouts logged at evaluation steps, with every reward's score and the advantage. */
  rollouts: SampleRow[];
  /** Steps the config asks for (null when unknown). */
  plannedSteps: number | null;
}

/** One run of a compare, as recorded in compare.json. */
export interface CompareRunRecord {
  preset: string;
  seed: number;
  name: string;
  status: "pending" | "running" | "finished" | "failed" | "stopped";
  error?: string;
  /** Seconds the worker process ran (all its attempts). */
  processWallS?: number;
  attempts?: number;
}

/** compare.json: what `cohort compare` ran, with what, and how each run ended. */
export interface CompareManifest {
  version: 1;
  configFile: string;
  sets: string[];
  presets: string[];
  seeds: number[];
  /** The shared rollout budget of every run. */
  budget: { steps: number; promptsPerStep: number; groupSize: number; maxNewTokens: number };
  /** Hash of the shared config (everything except preset, seed, name, outputDir, threads). */
  fingerprint: string;
  workers: number;
  threadsPerWorker: number | null;
  createdAt: string;
  updatedAt: string;
  runs: CompareRunRecord[];
}

export interface ReportSource {
  kind: "run" | "compare" | "runs";
  dir: string;
  title: string;
  runs: RunData[];
  manifest: CompareManifest | null;
}

/** Parses a JSONL file, skipping blank and unreadable lines (a line cut by a crash mid-write). */
export function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as T];
      } catch {
        return [];
      }
    });
}

function readJson(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** True when `dir` holds a run (a config.json written by the trainer or a metrics.jsonl). */
export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, "metrics.jsonl")) || (existsSync(join(dir, "config.json")) && !isModelDir(dir));
}

function isModelDir(dir: string): boolean {
  return existsSync(join(dir, "model.safetensors"));
}

/** A run directory is finished when the trainer exported its final model. */
export function isFinished(dir: string): boolean {
  return existsSync(join(dir, "final"));
}

const numOrNull = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);

function toSample(r: Record<string, unknown>): SampleRow | null {
  if (typeof r.step !== "number") return null;
  const rewards =
    r.rewards !== null && typeof r.rewards === "object" && !Array.isArray(r.rewards)
      ? Object.fromEntries(Object.entries(r.rewards as Record<string, unknown>).map(([k, v]) => [k, numOrNull(v)]))
      : null;
  const row: SampleRow = {
    step: r.step,
    kind: r.kind === "rollout" ? "rollout" : "eval",
    prompt: String(r.prompt ?? ""),
    completion: String(r.completion ?? ""),
    answer: r.answer === undefined || r.answer === null ? null : String(r.answer),
    correct: typeof r.correct === "boolean" ? r.correct : null,
    rewards,
  };
  const image = toImage(r.image);
  if (image !== null) {
    row.image = image;
    row.return = numOrNull(r.return);
  }
  if (row.kind === "rollout") {
    row.reward = numOrNull(r.reward);
    row.advantage = numOrNull(r.advantage);
    if (typeof r.group === "number") row.group = r.group;
  }
  return row;
}

/** Loads one run directory. `record` (from compare.json) supplies preset, seed and failure when given. */
export function loadRun(dir: string, record?: CompareRunRecord): RunData {
  const config = readJson(join(dir, "config.json"));
  const metrics = readJsonl<MetricRow>(join(dir, "metrics.jsonl"))
    .filter((m) => typeof m.step === "number")
    .sort((a, b) => (a.step as number) - (b.step as number));
  const rows = readJsonl<Record<string, unknown>>(join(dir, "samples.jsonl")).flatMap((r) => {
    const s = toSample(r);
    return s === null ? [] : [s];
  });
  const samples = rows.filter((r) => r.kind === "eval");
  const rollouts = rows.filter((r) => r.kind === "rollout");
  const train = (config?.train ?? null) as Record<string, unknown> | null;
  const plannedSteps = typeof train?.steps === "number" ? train.steps : null;
  let status: RunStatus;
  if (isFinished(dir)) status = "finished";
  else if (record !== undefined) status = record.status === "finished" ? "incomplete" : record.status;
  else status = "incomplete";
  const preset = record?.preset ?? (typeof config?.preset === "string" ? config.preset : "run");
  const seed = record?.seed ?? (typeof config?.seed === "number" ? config.seed : null);
  const run: RunData = {
    name: record?.name ?? basename(dir),
    dir,
    preset,
    seed,
    status,
    config,
    metrics,
    samples,
    rollouts,
    plannedSteps,
  };
  if (record?.error !== undefined && status !== "finished") run.error = record.error;
  return run;
}

/** Reads compare.json (null when absent; an error when unreadable). */
export function readManifest(dir: string): CompareManifest | null {
  const path = join(dir, "compare.json");
  if (!existsSync(path)) return null;
  const m = readJson(path);
  if (m === null || !Array.isArray(m.runs))
    throw new CohortError(`${path} is not a compare manifest; delete it or point at another directory`);
  return m as unknown as CompareManifest;
}

/**
 * Loads whatever `dir` is: a run, a compare results directory, or a folder of runs. Throws a CohortError
 * naming what was expected when it is none of these.
 */
export function loadSource(dir: string): ReportSource {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new CohortError(`${dir} is not a directory; pass a run directory (runs/<name>) or a compare --out directory`);
  const manifest = readManifest(abs);
  if (manifest !== null) {
    const runs = manifest.runs.map((r) => loadRun(join(abs, r.name), r));
    return { kind: "compare", dir: abs, title: `compare: ${basename(abs)}`, runs, manifest };
  }
  if (isRunDir(abs)) {
    const run = loadRun(abs);
    return { kind: "run", dir: abs, title: `run: ${run.name}`, runs: [run], manifest: null };
  }
  const subs = readdirSync(abs)
    .sort()
    .map((n) => join(abs, n))
    .filter((p) => {
      try {
        return statSync(p).isDirectory() && isRunDir(p);
      } catch {
        return false; // a dangling link or an entry removed meanwhile
      }
    });
  if (subs.length === 0)
    throw new CohortError(
      `${dir} holds no run (metrics.jsonl) and no compare results (compare.json); pass a run directory ` +
        "such as runs/<name>, or the --out directory of cohort compare",
    );
  return { kind: "runs", dir: abs, title: `runs: ${basename(abs)}`, runs: subs.map((p) => loadRun(p)), manifest: null };
}
