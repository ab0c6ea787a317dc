/**
 * `cohort compare`: the same task, model, data order and rollout budget for several presets × seeds, each run
 * in its own worker process (`cohort train … --set preset=P --set seed=S`), in parallel up to the core count,
 * resumable, into one results directory with a report. `cohort report`: the same dashboard for one run or a
 * results directory, optionally re-rendered while runs go on.
 *
 * Results directory layout:
 * ```
 * <out>/compare.json        what was run (config, --set, presets, seeds, budget) and how each run ended
 * <out>/<preset>-s<seed>/   one trainer run directory each (+ worker.log: the worker's output)
 * <out>/summary.json        per preset: final held-out accuracy mean ± std over seeds, wall time, rank, noise mark
 * <out>/report.html         the dashboard (static, offline)
 * ```
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CohortError, ConfigError } from "../errors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import type { Summary } from "../report/aggregate.js";
import type { CompareManifest, CompareRunRecord } from "../report/load.js";
import type { TrainConfig } from "../train/config.js";
import { type Command, parseCommandArgs } from "./command.js";

/** Presets compared when --presets is not given. */
export const DEFAULT_PRESETS = ["grpo", "dr_grpo", "dapo", "gspo", "sapo"];

/** How a worker is started: `command args… train <config> --set …`. */
export interface WorkerLauncher {
  command: string;
  args: string[];
}

/**
 * The worker launcher for this installation: the compiled CLI next to this module when running from dist/,
 * or the TypeScript source through tsx when running from a source checkout.
 */
export function defaultWorker(): WorkerLauncher {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  const main = join(dirname(here), `main${ext}`);
  if (ext === ".ts") return { command: process.execPath, args: ["--import", import.meta.resolve("tsx"), main] };
  return { command: process.execPath, args: [main] };
}

export interface CompareOptions {
  configFile: string;
  presets: string[];
  seeds: number[];
  /** `--set key=value` overrides shared by every run. */
  sets?: string[];
  /** Results directory (default `<outputDir of the config>/<name>-compare`). */
  out?: string;
  /** Parallel workers (default: the core count, at most the number of runs to do). */
  workers?: number;
  worker?: WorkerLauncher;
  log?: (line: string) => void;
  /**
   * `stop`: start no more runs; running workers get SIGINT (they save a checkpoint and stop after their step).
   * `abort`: running workers get SIGTERM (they resume from their last periodic checkpoint next time).
   */
  signal?: { stop: boolean; abort?: boolean };
}

export interface CompareResult {
  out: string;
  manifest: CompareManifest;
  /** The runs started by this call (empty when everything was already finished). */
  started: { preset: string; seed: number; name: string; resumed: boolean }[];
  summary: Summary;
  reportPath: string;
  stopped: boolean;
}

/** Keys the compare sets itself for every run; `--set` may not touch them. */
const OWN_KEYS = ["preset", "seed", "name", "outputDir"];

/** Parses `--seeds`: a count (`3` → 0, 1, 2) or a list (`1,5,9`). */
export function parseSeeds(s: string): number[] {
  const parts = s.split(",").map((x) => x.trim());
  if (parts.length === 1) {
    const n = Number(parts[0]);
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError(`--seeds ${s}: give a count (e.g. --seeds 3 for seeds 0,1,2) or a list (--seeds 0,4,7)`);
    return Array.from({ length: n }, (_, i) => i);
  }
  const seeds = parts.map(Number);
  if (seeds.some((x) => !Number.isInteger(x) || x < 0) || new Set(seeds).size !== seeds.length)
    throw new ConfigError(`--seeds ${s}: a list of distinct non-negative integers, e.g. --seeds 0,4,7`);
  return seeds;
}

function runName(preset: string, seed: number): string {
  return `${preset}-s${seed}`;
}

/** The config shared by every run (the fields a compare varies removed), as a stable fingerprint. */
function fingerprintOf(cfg: Record<string, unknown>): string {
  const shared = { ...cfg };
  for (const k of [...OWN_KEYS, "threads", "resolvedAlgo", "configFile"]) delete shared[k];
  return createHash("sha256").update(JSON.stringify(shared)).digest("hex").slice(0, 16);
}

/** The message of a failed worker: its `cohort train: …` error lines, else the tail of its output. */
export function workerError(logText: string, code: number | null, signal: string | null): string {
  const lines = logText.split("\n");
  const at = lines.findIndex((l) => l.startsWith("cohort train: "));
  const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
  if (at >= 0) {
    const msg = lines
      .slice(at)
      .join("\n")
      .trim()
      .replace(/^cohort train: /, "");
    return `${msg} (${how})`;
  }
  const tail = lines
    .filter((l) => l.trim() !== "")
    .slice(-15)
    .join("\n");
  return `${how}${tail ? `:\n${tail}` : " with no output"}`;
}

function readTail(path: string, from: number): string {
  try {
    return readFileSync(path).subarray(from).toString("utf8");
  } catch {
    return "";
  }
}

/** Runs (or continues) a comparison; returns when every run has finished or failed, or on stop. */
export async function runCompare(o: CompareOptions): Promise<CompareResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const sets = o.sets ?? [];
  const { presetNames } = await import("../presets/index.js");
  const { loadTrainConfig } = await import("../train/config.js");

  if (o.presets.length === 0) throw new ConfigError("--presets is empty; name presets, e.g. --presets grpo,dapo");
  const known = new Set(presetNames());
  const unknown = o.presets.filter((p) => !known.has(p));
  if (unknown.length > 0)
    throw new ConfigError(
      `unknown preset${unknown.length > 1 ? "s" : ""} ${unknown.map((p) => `"${p}"`).join(", ")}; known: ${[...known].join(", ")}`,
      "--presets",
    );
  if (new Set(o.presets).size !== o.presets.length) throw new ConfigError("--presets names a preset twice");
  if (o.seeds.length === 0) throw new ConfigError("--seeds: need at least one seed");
  for (const s of sets) {
    const key = s.slice(0, Math.max(0, s.indexOf("=")));
    if (OWN_KEYS.includes(key))
      throw new ConfigError(
        `--set ${s}: compare sets ${key} for every run itself; use --presets, --seeds and --out instead`,
      );
  }
  const configFile = resolve(o.configFile);

  // Validate every preset on the shared config now: a preset that needs a value the config lacks fails its
  // runs here, with the config error, and the others go on. If no preset is valid the config itself is wrong.
  const presetError = new Map<string, string>();
  let shared: Record<string, unknown> | null = null;
  let firstError: unknown = null;
  for (const p of o.presets) {
    try {
      const cfg = loadTrainConfig(configFile, [...sets, `preset=${p}`]);
      shared ??= cfg as unknown as Record<string, unknown>;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      presetError.set(p, e.message);
      firstError ??= e;
    }
  }
  if (shared === null) throw firstError;
  const base = shared as unknown as TrainConfig;
  const out = resolve(o.out ?? resolve(dirname(configFile), base.outputDir, `${base.name}-compare`));
  const budget = {
    steps: base.train.steps,
    promptsPerStep: base.train.promptsPerStep,
    groupSize: base.train.groupSize,
    maxNewTokens: base.sampling.maxNewTokens,
  };
  const fingerprint = fingerprintOf(shared);

  // Continue an existing results directory only if it was made from the same shared config.
  const { readManifest } = await import("../report/load.js");
  const prev = existsSync(out) ? readManifest(out) : null;
  if (prev !== null && prev.fingerprint !== fingerprint)
    throw new ConfigError(
      `${out} holds a comparison made with a different config (budget ${JSON.stringify(prev.budget)}, ` +
        `--set ${JSON.stringify(prev.sets)}); pass another --out, or delete that directory to start over`,
    );
  mkdirSync(out, { recursive: true });
  const unlock = lockResults(out);
  try {
    return await compareIn(out, o, { sets, configFile, base, budget, fingerprint, prev, presetError, log });
  } finally {
    unlock();
  }
}

/** One compare at a time per results directory: `<out>/.compare.lock` holds the owner's pid. */
function lockResults(out: string): () => void {
  const path = join(out, ".compare.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      const release = () => rmSync(path, { force: true });
      process.once("exit", release);
      return () => {
        process.off("exit", release);
        release();
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(readTail(path, 0).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid))
        throw new CohortError(
          `another cohort compare (pid ${pid}) is running in ${out}; wait for it, or stop it first`,
        );
      rmSync(path, { force: true }); // left by a compare that was killed
    }
  }
  throw new CohortError(`cannot lock ${path}; remove it if no cohort compare is running there`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

interface Prepared {
  sets: string[];
  configFile: string;
  base: TrainConfig;
  budget: CompareManifest["budget"];
  fingerprint: string;
  prev: CompareManifest | null;
  presetError: Map<string, string>;
  log: (line: string) => void;
}

async function compareIn(out: string, o: CompareOptions, p: Prepared): Promise<CompareResult> {
  const { sets, configFile, base, budget, fingerprint, prev, presetError, log } = p;
  const { writeReport } = await import("../report/index.js");
  const { isFinished } = await import("../report/load.js");
  const records = new Map<string, CompareRunRecord>();
  for (const r of prev?.runs ?? []) records.set(r.name, r);
  const seeds = [...(prev?.seeds ?? [])];
  for (const s of o.seeds) if (!seeds.includes(s)) seeds.push(s);
  const presets = [...(prev?.presets ?? [])];
  for (const p of o.presets) if (!presets.includes(p)) presets.push(p);

  // Seed-major order: a partial comparison covers every preset early.
  interface Job {
    preset: string;
    seed: number;
    name: string;
    dir: string;
    resume: boolean;
  }
  const jobs: Job[] = [];
  for (const seed of o.seeds) {
    for (const preset of o.presets) {
      const name = runName(preset, seed);
      const dir = join(out, name);
      const rec: CompareRunRecord = records.get(name) ?? { preset, seed, name, status: "pending" };
      records.set(name, rec);
      if (isFinished(dir)) {
        rec.status = "finished";
        delete rec.error;
        continue;
      }
      const err = presetError.get(preset);
      if (err !== undefined) {
        rec.status = "failed";
        rec.error = err;
        continue;
      }
      rec.status = "pending";
      delete rec.error;
      // a run that started (config.json) continues as the same run, from its checkpoint or from step 0
      const resume = existsSync(join(dir, "checkpoints")) || existsSync(join(dir, "config.json"));
      jobs.push({ preset, seed, name, dir, resume });
    }
  }
  const cores = availableParallelism();
  const workers = Math.max(1, Math.min(o.workers ?? cores, Math.max(1, jobs.length)));
  const threadsPerWorker = base.threads === undefined ? Math.max(1, Math.floor(cores / workers)) : null;
  const now = () => new Date().toISOString();
  const manifest: CompareManifest = {
    version: 1,
    configFile,
    sets,
    presets,
    seeds,
    budget,
    fingerprint,
    workers,
    threadsPerWorker,
    createdAt: prev?.createdAt ?? now(),
    updatedAt: now(),
    runs: [],
  };
  // Manifest order: presets × seeds as listed (earlier runs of other presets/seeds kept).
  const order = (r: CompareRunRecord) => presets.indexOf(r.preset) * 1e6 + seeds.indexOf(r.seed);
  const save = () => {
    manifest.updatedAt = now();
    manifest.runs = [...records.values()].sort((a, b) => order(a) - order(b));
    writeJsonAtomic(join(out, "compare.json"), manifest);
  };
  save();

  const done = [...records.values()].filter((r) => r.status === "finished").length;
  log(
    `compare: ${o.presets.length} preset(s) × ${o.seeds.length} seed(s) → ${out}\n` +
      `compare: ${jobs.length} run(s) to do (${jobs.filter((j) => j.resume).length} resumed), ${done} already finished, ` +
      `${[...records.values()].filter((r) => r.status === "failed" && presetError.has(r.preset)).length} failed on their config; ` +
      `${workers} worker(s)${threadsPerWorker !== null ? ` × ${threadsPerWorker} thread(s)` : ""}`,
  );
  for (const [p, e] of presetError) log(`compare: ${p} cannot run with this config: ${e}`);

  const launcher = o.worker ?? defaultWorker();
  const running = new Set<ChildProcess>();
  const started: CompareResult["started"] = [];
  let stopped = false;
  let interrupted = false;
  const signal = o.signal ?? { stop: false };

  const runJob = (job: Job) =>
    new Promise<void>((res) => {
      const rec = records.get(job.name) as CompareRunRecord;
      mkdirSync(job.dir, { recursive: true });
      const logPath = join(job.dir, "worker.log");
      const args = [
        ...launcher.args,
        "train",
        configFile,
        "--quiet",
        ...sets.flatMap((s) => ["--set", s]),
        "--set",
        `preset=${job.preset}`,
        "--set",
        `seed=${job.seed}`,
        "--set",
        `name=${job.name}`,
        "--set",
        `outputDir=${JSON.stringify(out)}`,
        ...(threadsPerWorker !== null ? ["--set", `threads=${threadsPerWorker}`] : []),
        ...(job.resume ? ["--resume"] : []),
      ];
      const fd = openSync(logPath, "a");
      rec.attempts = (rec.attempts ?? 0) + 1;
      writeSync(fd, `--- ${now()} attempt ${rec.attempts}: ${launcher.command} ${args.join(" ")}\n`);
      const logStart = fstatSync(fd).size;
      const t0 = performance.now();
      const child = spawn(launcher.command, args, { stdio: ["ignore", fd, fd], detached: true, env: process.env });
      closeSync(fd);
      running.add(child);
      rec.status = "running";
      save();
      started.push({ preset: job.preset, seed: job.seed, name: job.name, resumed: job.resume });
      log(`compare: start ${job.name}${job.resume ? " (resume)" : ""}`);
      const finish = (code: number | null, sig: string | null) => {
        running.delete(child);
        const wall = (performance.now() - t0) / 1000;
        rec.processWallS = (rec.processWallS ?? 0) + wall;
        if (code === 0 && isFinished(job.dir)) {
          rec.status = "finished";
          delete rec.error;
          log(`compare: done  ${job.name} in ${wall.toFixed(1)} s`);
        } else if (interrupted) {
          rec.status = "stopped";
          log(`compare: stopped ${job.name} (resume by running the same command again)`);
        } else {
          rec.status = "failed";
          rec.error = workerError(readTail(logPath, logStart), code, sig);
          log(`compare: FAILED ${job.name}: ${rec.error.split("\n")[0]} (log: ${logPath})`);
        }
        save();
        res();
      };
      child.on("error", (e) => {
        running.delete(child);
        rec.status = "failed";
        rec.error = `could not start the worker (${launcher.command}): ${e.message}`;
        log(`compare: FAILED ${job.name}: ${rec.error}`);
        save();
        res();
      });
      child.on("exit", finish);
    });

  const queue = [...jobs];
  let aborted = false;
  const poll = setInterval(() => {
    if ((signal.stop || signal.abort) && !interrupted) {
      interrupted = true;
      stopped = true;
      log(`compare: stopping: ${running.size} running worker(s) save a checkpoint and stop; no new runs start`);
      for (const c of running) c.kill("SIGINT");
    }
    if (signal.abort === true && !aborted) {
      aborted = true;
      log(`compare: aborting ${running.size} running worker(s); they resume from their last checkpoint next time`);
      for (const c of running) c.kill("SIGTERM");
    }
  }, 100);
  // workers run in their own process group; never leave them behind if this process exits early
  const killAll = () => {
    for (const c of running) c.kill("SIGTERM");
  };
  process.on("exit", killAll);
  try {
    const lane = async () => {
      for (;;) {
        if (signal.stop || signal.abort) return;
        const job = queue.shift();
        if (job === undefined) return;
        await runJob(job);
      }
    };
    await Promise.all(Array.from({ length: workers }, lane));
  } finally {
    clearInterval(poll);
    process.off("exit", killAll);
  }
  if (signal.stop || signal.abort) stopped = true;
  for (const j of queue) {
    const rec = records.get(j.name) as CompareRunRecord;
    if (rec.status === "pending") rec.status = "stopped";
  }
  save();

  const reportPath = join(out, "report.html");
  const r = writeReport(out, { out: reportPath, summaryPath: join(out, "summary.json") });
  return { out, manifest, started, summary: r.summary, reportPath, stopped };
}

/** The summary as a small text table for the terminal. */
export function summaryTable(s: Summary): string {
  const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}%`);
  const rows = s.presets.map((p) => [
    p.preset,
    `${p.finished_seeds.length}/${p.seeds.length}${p.failed.length ? ` (${p.failed.length} failed)` : ""}`,
    p.final_eval_accuracy_mean === null
      ? "–"
      : `${pct(p.final_eval_accuracy_mean)}${p.final_eval_accuracy_std === null ? "" : ` ± ${(100 * p.final_eval_accuracy_std).toFixed(1)}`}`,
    p.best ? "best" : p.within_noise_of_best === true ? "≈ best" : p.within_noise_of_best === false ? "below" : "",
    p.wall_s_mean === null ? "–" : `${p.wall_s_mean < 100 ? p.wall_s_mean.toPrecision(3) : p.wall_s_mean.toFixed(0)} s`,
  ]);
  const head = ["preset", "seeds done", "held-out accuracy", "vs best", "train wall"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i] as number)).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

function positiveInt(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} ${String(v)}: expected a positive integer`);
  return n;
}

export const compareCommand: Command = {
  summary: "run presets × seeds on the same task and budget in parallel workers; write summary.json and a report",
  usage: [
    "cohort compare <config.yaml> [--presets grpo,dr_grpo,dapo,gspo,sapo] [--seeds 3 | --seeds 0,4,7]",
    "                [--set key.path=value …] [--out dir] [--workers N]",
    "",
    "  --presets  presets to compare (default grpo,dr_grpo,dapo,gspo,sapo; `cohort presets` lists them)",
    "  --seeds    a count (3 → seeds 0,1,2; default 3) or a list of seeds",
    "  --set      overrides applied to every run (preset, seed, name and outputDir are set by compare)",
    "  --out      results directory (default <outputDir>/<name>-compare next to the config)",
    "  --workers  runs at once (default: the core count); each run gets cores/workers libtorch threads",
    "             unless the config sets `threads`",
    "",
    "Every run uses the same task, model, data order and rollout budget. Running the same command again",
    "skips finished runs, resumes interrupted ones from their checkpoint and retries failed ones.",
    "Writes <out>/compare.json, <out>/summary.json and <out>/report.html.",
  ].join("\n"),
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        presets: { type: "string" },
        seeds: { type: "string" },
        set: { type: "string", multiple: true },
        out: { type: "string" },
        workers: { type: "string" },
      },
      this.usage,
    );
    const file = positionals[0];
    if (file === undefined) throw new ConfigError(`missing the config file\nusage: ${this.usage}`);
    if (positionals.length > 1) throw new ConfigError(`unexpected argument ${positionals[1]}\nusage: ${this.usage}`);
    const presets =
      values.presets === undefined
        ? DEFAULT_PRESETS
        : (values.presets as string)
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "");
    const signal = { stop: false, abort: false };
    const onSigint = () => {
      if (signal.stop) {
        signal.abort = true;
        return;
      }
      signal.stop = true;
      process.stderr.write("\ncohort compare: stopping (workers save a checkpoint); Ctrl-C again to abort them\n");
    };
    const onSigterm = () => {
      signal.stop = true;
      signal.abort = true;
    };
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", onSigterm);
    try {
      const r = await runCompare({
        configFile: file,
        presets,
        seeds: parseSeeds((values.seeds as string | undefined) ?? "3"),
        sets: (values.set as string[] | undefined) ?? [],
        ...(values.out !== undefined ? { out: values.out as string } : {}),
        ...(values.workers !== undefined ? { workers: positiveInt(values.workers, "--workers") } : {}),
        signal,
      });
      console.log(summaryTable(r.summary));
      console.log(`\nnoise: ${r.summary.noise_test}`);
      console.log(`report: ${r.reportPath}\nsummary: ${join(r.out, "summary.json")}`);
      if (r.stopped) return 130;
      return r.manifest.runs.some((x) => x.status !== "finished") ? 1 : 0;
    } finally {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigterm);
    }
  },
};

export const reportCommand: Command = {
  summary: "render the HTML dashboard of a run or a compare directory (--watch: re-render as runs go on)",
  usage: [
    "cohort report <run-dir | compare-dir> [--out file.html] [--watch] [--interval-s N]",
    "",
    "  --out         the HTML file (default <dir>/report.html; a compare directory's summary.json is refreshed too)",
    "  --watch       re-render whenever a run's metrics change, until every run is finished or failed; the page",
    "                reloads itself while runs go on",
    "  --interval-s  how often --watch looks for changes (default 2)",
  ].join("\n"),
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      { out: { type: "string" }, watch: { type: "boolean" }, "interval-s": { type: "string" } },
      this.usage,
    );
    const dir = positionals[0];
    if (dir === undefined) throw new ConfigError(`missing the run or compare directory\nusage: ${this.usage}`);
    const { loadSource } = await import("../report/load.js");
    const { watchReport, writeReport } = await import("../report/index.js");
    const src = loadSource(dir);
    const opts = {
      ...(values.out !== undefined ? { out: values.out as string } : {}),
      // a compare directory keeps its summary.json in step with the page
      ...(src.kind === "compare" ? { summaryPath: join(src.dir, "summary.json") } : {}),
    };
    if (values.watch !== true) {
      const r = writeReport(dir, opts);
      console.log(`report: ${r.out} (${r.source.runs.length} run(s))`);
      return 0;
    }
    const intervalS = values["interval-s"] === undefined ? 2 : Number(values["interval-s"]);
    if (!(intervalS > 0)) throw new ConfigError(`--interval-s ${values["interval-s"]}: expected a positive number`);
    const signal = { stop: false };
    const onSigint = () => {
      signal.stop = true;
    };
    process.on("SIGINT", onSigint);
    try {
      const r = await watchReport(dir, {
        ...opts,
        intervalMs: intervalS * 1000,
        refreshS: Math.max(2, Math.round(intervalS * 2)),
        signal,
        onRender: (w) =>
          console.log(
            `report: ${w.out} (${w.source.runs.length} run(s)${w.live ? ", watching; Ctrl-C to stop" : ", all done"})`,
          ),
      });
      return r.live && !signal.stop ? 1 : 0;
    } finally {
      process.off("SIGINT", onSigint);
    }
  },
};
