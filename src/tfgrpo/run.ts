/**
 * Training-Free GRPO (arXiv 2510.08191, ALGORITHMS.md §B.28 [CODE] `TencentCloudADP/youtu-agent`
 * `training_free_grpo/`): no weight updates; an experience library is learned over epochs by group
 * rollouts against OpenAI-compatible chat endpoints.
 *
 * ```
 * for epoch, for each batch of B training problems:
 *   G rollouts per problem from the policy, prompted with the library (prompts.ts); r = 1 if the task's
 *     verifier accepts the answer, else 0
 *   for groups with 0 < mean(r) < 1 (the "semantic advantage"): the judge summarises each rollout, then
 *     critiques the group against the library and proposes ≤ maxOpsPerGroup operations (add/modify/delete/keep)
 *   batch update of the library (library.ts: candidates, revision plan with merges, renumbering)
 *   save <run>/experiences.json (atomic) and a metrics line
 * after each epoch: <run>/epoch-N/experiences.json, and held-out accuracy with the library when eval.problems > 0
 * ```
 * Model output is never trusted: unparseable critiques and plans are logged to <run>/malformed.jsonl,
 * counted, and skipped; a failed request (after the client's retries) skips its rollout group or summary.
 * @module
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CohortError } from "../errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { OpenAIClient } from "../serve/client.js";
import { jsonlTask, loadJsonl } from "../task/jsonl.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import type { TfgrpoConfig } from "./config.js";
import {
  applyPlan,
  applyRequests,
  candidatesFrom,
  ExperienceLibrary,
  loadLibrary,
  readLibraryFile,
  renumber,
  saveLibrary,
  type UpdateCounts,
} from "./library.js";
import { type CritiqueOp, parseCritique, parseRevision } from "./parse.js";
import { critiquePrompt, revisionPrompt, rolloutPrompt, summaryPrompt } from "./prompts.js";

export interface TfgrpoOptions {
  /** Plain log lines. Default: stderr. */
  log?: (line: string) => void;
  /** Called with each metrics record (steps and evaluations). */
  onRecord?: (m: Record<string, unknown>) => void;
  /**
   * Continue the run in `<outputDir>/<name>` from its last saved step (the library is saved after every
   * step); no run there starts one. The config must be the one the run was started with.
   */
  resume?: boolean;
  /** Return after this step (as an interrupted run would stop), leaving a resumable run. */
  stopAfterStep?: number;
}

export interface TfgrpoResult {
  runDir: string;
  library: ExperienceLibrary;
  records: Record<string, unknown>[];
}

/** A chat endpoint: client, model and sampling settings. */
export interface ChatEndpoint {
  client: OpenAIClient;
  model: string;
  temperature: number;
  maxTokens: number;
}

function apiKey(env: string | undefined, path: string): string | undefined {
  if (env === undefined) return undefined;
  const v = process.env[env];
  if (!v) throw new CohortError(`${path}: the environment variable ${env} is not set; export the API key in it`);
  return v;
}

/** The policy and judge endpoints of a config (the judge defaults to the policy's endpoint and model). */
export function endpointsOf(
  cfg: TfgrpoConfig,
  log: (l: string) => void,
): { policy: ChatEndpoint; judge: ChatEndpoint } {
  const p = cfg.policy;
  const key = apiKey(p.apiKeyEnv, "policy.apiKeyEnv");
  const client = new OpenAIClient({
    baseUrl: p.baseUrl,
    ...(key ? { apiKey: key } : {}),
    timeoutMs: p.timeoutMs,
    maxRetries: p.maxRetries,
    maxConcurrency: p.maxConcurrency,
    log,
  });
  const j = cfg.judge;
  let judgeClient = client;
  if (j.baseUrl !== undefined && j.baseUrl !== p.baseUrl) {
    const jk = apiKey(j.apiKeyEnv ?? p.apiKeyEnv, "judge.apiKeyEnv");
    judgeClient = new OpenAIClient({
      baseUrl: j.baseUrl,
      ...(jk ? { apiKey: jk } : {}),
      timeoutMs: p.timeoutMs,
      maxRetries: p.maxRetries,
      maxConcurrency: p.maxConcurrency,
      log,
    });
  }
  return {
    policy: { client, model: p.model, temperature: p.temperature, maxTokens: p.maxTokens },
    judge: { client: judgeClient, model: j.model ?? p.model, temperature: j.temperature, maxTokens: j.maxTokens },
  };
}

/** `n` chat completions of one user message (several requests when the server returns fewer choices). */
export async function chatN(
  ep: ChatEndpoint,
  content: string,
  n: number,
  seed?: number,
  temperature?: number,
): Promise<string[]> {
  const out: string[] = [];
  for (let attempt = 0; out.length < n && attempt < n; attempt++) {
    const res = await ep.client.chat({
      model: ep.model,
      messages: [{ role: "user", content }],
      n: n - out.length,
      temperature: temperature ?? ep.temperature,
      max_tokens: ep.maxTokens,
      ...(seed !== undefined ? { seed: seed + out.length } : {}),
    });
    const got = [...(res.choices ?? [])].sort((a, b) => a.index - b.index).map((c) => c.message?.content ?? "");
    if (got.length === 0) break;
    out.push(...got);
  }
  return out.slice(0, n);
}

/** Accuracy of `ep` on `problems` with `lib` injected into the rollout prompt (one greedy or sampled answer each). */
export async function evaluateWithLibrary(
  ep: ChatEndpoint,
  task: Task,
  problems: readonly Problem[],
  lib: ExperienceLibrary,
  answerTag: string,
  temperature: number,
): Promise<{ accuracy: number; format: number; problems: number; failures: number }> {
  let correct = 0;
  let format = 0;
  let failures = 0;
  await Promise.all(
    problems.map(async (p, i) => {
      let text: string;
      try {
        [text = ""] = await chatN(ep, rolloutPrompt(p.prompt, lib, answerTag), 1, 1_000_003 * (i + 1), temperature);
      } catch {
        failures++;
        return;
      }
      const v = task.verify(p, text);
      if (v.correct) correct++;
      if (v.format) format++;
    }),
  );
  const n = Math.max(1, problems.length);
  return { accuracy: correct / n, format: format / n, problems: problems.length, failures };
}

/** The task and its train/eval problems. */
export async function problemsOf(cfg: TfgrpoConfig): Promise<{ task: Task; train: Problem[]; eval: Problem[] }> {
  const rel = (p: string) => (isAbsolute(p) ? p : cfg.configFile ? resolve(dirname(cfg.configFile), p) : resolve(p));
  const rng = Rng.fromSeed(BigInt(cfg.seed));
  const evalRng = Rng.fromSeed(BigInt(cfg.seed) ^ 0x5eed5eedn);
  if (cfg.task) {
    const task = createTask(cfg.task.name, cfg.task.options, "task");
    return {
      task,
      train: Array.from({ length: cfg.train.problems }, () => task.sample(rng, "train")),
      eval: Array.from({ length: cfg.eval.problems }, () => task.sample(evalRng, "eval")),
    };
  }
  const d = cfg.dataset as NonNullable<TfgrpoConfig["dataset"]>;
  const ds = await loadJsonl(rel(d.path), d.options, rel("."));
  const task = jsonlTask(ds);
  return {
    task,
    train: rng.shuffled(ds.train).slice(0, cfg.train.problems),
    eval: evalRng.shuffled(ds.eval).slice(0, cfg.eval.problems),
  };
}

interface GroupResult {
  problem: Problem;
  texts: string[];
  rewards: number[];
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** `<outputDir>/<name>`, relative paths resolved against the config file's folder. */
export function runDirOf(cfg: TfgrpoConfig): string {
  const out = isAbsolute(cfg.outputDir)
    ? cfg.outputDir
    : cfg.configFile
      ? resolve(dirname(cfg.configFile), cfg.outputDir)
      : resolve(cfg.outputDir);
  return join(out, cfg.name);
}

export async function runTfgrpo(cfg: TfgrpoConfig, opts: TfgrpoOptions = {}): Promise<TfgrpoResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const runDir = runDirOf(cfg);
  const metricsPath = join(runDir, "metrics.jsonl");
  const malformedPath = join(runDir, "malformed.jsonl");
  const libPath = join(runDir, "experiences.json");
  const { policy, judge } = endpointsOf(cfg, (l) => log(`tfgrpo: ${l}`));
  const { task, train, eval: evalProblems } = await problemsOf(cfg);
  if (train.length === 0)
    throw new CohortError("no training problems; check train.problems and the dataset's train split");
  const stepsPerEpoch = Math.ceil(train.length / cfg.train.batchSize);
  const resumed = opts.resume ? resumePoint(runDir, cfg, libPath, metricsPath, stepsPerEpoch) : null;
  if (opts.resume && resumed === null) log(`tfgrpo: no run to resume in ${runDir}; starting one`);
  mkdirSync(runDir, { recursive: true });
  if (resumed === null) {
    writeJsonAtomic(join(runDir, "config.json"), cfg);
    writeFileSync(metricsPath, "");
  } else {
    // records after the saved library (a step that did not finish saving) are dropped
    writeFileAtomic(metricsPath, resumed.records.map((r) => `${JSON.stringify(r)}\n`).join(""));
    log(`tfgrpo: resuming ${runDir} after step ${resumed.step} (${resumed.library.size} experiences)`);
  }
  const records: Record<string, unknown>[] = resumed ? [...resumed.records] : [];
  const record = (m: Record<string, unknown>) => {
    records.push(m);
    appendFileSync(metricsPath, `${JSON.stringify(m)}\n`);
    opts.onRecord?.(m);
  };
  const malformed = (epoch: number, step: number, kind: string, error: string, output: string) => {
    appendFileSync(malformedPath, `${JSON.stringify({ epoch, step, kind, error, output: output.slice(0, 4000) })}\n`);
    log(`tfgrpo: step ${step}: unusable ${kind} output skipped (${error})`);
  };
  const { groupSize: G, batchSize: B, maxOpsPerGroup, revisionAttempts } = cfg.train;
  const tag = cfg.answerTag;
  let lib = resumed?.library ?? new ExperienceLibrary();
  const done = resumed?.step ?? 0; // steps already taken
  const evaluated = new Set(records.filter((r) => !("step" in r)).map((r) => r.epoch as number));
  if (resumed === null) saveLibrary(libPath, lib, { epoch: 0, step: 0 });
  const evaluate = async (epoch: number) => {
    if (evalProblems.length === 0) return;
    const r = await evaluateWithLibrary(policy, task, evalProblems, lib, tag, cfg.eval.temperature);
    record({
      epoch,
      eval_accuracy: r.accuracy,
      eval_format: r.format,
      eval_failures: r.failures,
      library_size: lib.size,
    });
  };
  if (done === 0 && !evaluated.has(0)) await evaluate(0);
  // the shuffles of skipped epochs are drawn too, so a resumed run sees the batches of the original one
  const orderRng = Rng.fromSeed(BigInt(cfg.seed) ^ 0x7f9a3n);
  let step = 0;
  for (let epoch = 1; epoch <= cfg.train.epochs; epoch++) {
    const order = orderRng.shuffled(train);
    for (let start = 0; start < order.length; start += B) {
      step++;
      if (step <= done) continue;
      const t0 = performance.now();
      const batch = order.slice(start, start + B);
      const m = {
        problems: batch.length,
        rollout_failures: 0,
        summary_failures: 0,
        critiques: 0,
        critique_malformed: 0,
        critique_items_malformed: 0,
        ops_over_limit: 0,
        revision_calls: 0,
        revision_malformed: 0,
        revision_items_malformed: 0,
      };
      // ---- 1–2: group rollouts with the current library, binary rewards ---------------------------
      const groups = (
        await Promise.all(
          batch.map(async (p, b): Promise<GroupResult | null> => {
            try {
              const texts = await chatN(policy, rolloutPrompt(p.prompt, lib, tag), G, (step * 7919 + b) * 101);
              if (texts.length === 0) throw new CohortError("no choices returned");
              return { problem: p, texts, rewards: texts.map((t) => (task.verify(p, t).correct ? 1 : 0)) };
            } catch (e) {
              m.rollout_failures++;
              log(`tfgrpo: step ${step}: rollouts of problem ${p.id} failed (${(e as Error).message}); skipped`);
              return null;
            }
          }),
        )
      ).filter((g): g is GroupResult => g !== null);
      const allRewards = groups.flatMap((g) => g.rewards);
      const informative = groups.filter((g) => {
        const r = mean(g.rewards);
        return r > 0 && r < 1 && g.texts.length > 1;
      });
      // ---- 3: semantic advantage of each informative group ----------------------------------------
      const ops: CritiqueOp[] = [];
      await Promise.all(
        informative.map(async (g) => {
          const summaries = await Promise.all(
            g.texts.map(async (t, i) => {
              try {
                const correct = g.rewards[i] === 1;
                const [s = ""] = await chatN(judge, summaryPrompt(g.problem.prompt, t, correct, g.problem.answer), 1);
                return s.trim() === "" ? null : { summary: s.trim(), correct };
              } catch (e) {
                m.summary_failures++;
                log(`tfgrpo: step ${step}: a summary request failed (${(e as Error).message}); skipped`);
                return null;
              }
            }),
          );
          const kept = summaries.filter((s): s is { summary: string; correct: boolean } => s !== null);
          if (kept.length < 2) return;
          let out: string;
          try {
            [out = ""] = await chatN(
              judge,
              critiquePrompt(g.problem.prompt, g.problem.answer, kept, lib, maxOpsPerGroup),
              1,
            );
          } catch (e) {
            log(`tfgrpo: step ${step}: a critique request failed (${(e as Error).message}); skipped`);
            m.critique_malformed++;
            return;
          }
          m.critiques++;
          const parsed = parseCritique(out);
          if (parsed.error !== undefined) {
            m.critique_malformed++;
            malformed(epoch, step, "critique", parsed.error, out);
            return;
          }
          if (parsed.malformed > 0) {
            m.critique_items_malformed += parsed.malformed;
            malformed(epoch, step, "critique item", `${parsed.malformed} item(s) are not valid operations`, out);
          }
          m.ops_over_limit += Math.max(0, parsed.ops.length - maxOpsPerGroup);
          ops.push(...parsed.ops.slice(0, maxOpsPerGroup));
        }),
      );
      // ---- 4: batch update of the library ---------------------------------------------------------
      const { candidates, requests, counts } = candidatesFrom(lib, ops);
      let updated = candidates;
      if (counts.added > 0 || requests.length > 0) {
        let plan: ReturnType<typeof parseRevision> | null = null;
        for (let a = 0; a < revisionAttempts && plan === null; a++) {
          m.revision_calls++;
          let out: string;
          try {
            [out = ""] = await chatN(judge, revisionPrompt(candidates, requests), 1);
          } catch (e) {
            log(`tfgrpo: step ${step}: a revision request failed (${(e as Error).message})`);
            continue;
          }
          const p = parseRevision(out);
          if (p.error !== undefined) {
            m.revision_malformed++;
            malformed(epoch, step, "revision", p.error, out);
            continue;
          }
          if (p.malformed > 0) {
            m.revision_items_malformed += p.malformed;
            malformed(epoch, step, "revision item", `${p.malformed} item(s) are not valid operations`, out);
          }
          plan = p;
        }
        if (plan !== null) updated = applyPlan(candidates, plan.ops, counts);
        else {
          counts.planFallback = true;
          updated = applyRequests(candidates, requests);
        }
      }
      lib = renumber(updated);
      saveLibrary(libPath, lib, { epoch, step });
      record({
        epoch,
        step,
        ...m,
        rollouts: allRewards.length,
        reward_mean: mean(allRewards),
        groups_with_variance: informative.length,
        ...countsMetrics(counts),
        library_size: lib.size,
        time_s: (performance.now() - t0) / 1000,
      });
      if (opts.stopAfterStep !== undefined && step >= opts.stopAfterStep) {
        log(`tfgrpo: stopped after step ${step}; continue with --resume`);
        return { runDir, library: lib, records };
      }
    }
    // an epoch that ended before the resume point has its snapshot and evaluation already, unless the run
    // stopped right after the epoch's last step
    if (step < done || (step === done && evaluated.has(epoch))) continue;
    const snap = join(runDir, `epoch-${epoch}`, "experiences.json");
    mkdirSync(dirname(snap), { recursive: true });
    saveLibrary(snap, lib, { epoch, step });
    log(`tfgrpo: epoch ${epoch}: ${lib.size} experiences → ${snap}`);
    await evaluate(epoch);
  }
  return { runDir, library: lib, records };
}

/**
 * Where a run left off: the library saved after its last finished step, and the metrics up to it. Null when
 * `runDir` holds no run. A run started with another config is refused.
 */
function resumePoint(
  runDir: string,
  cfg: TfgrpoConfig,
  libPath: string,
  metricsPath: string,
  stepsPerEpoch: number,
): { step: number; library: ExperienceLibrary; records: Record<string, unknown>[] } | null {
  const cfgPath = join(runDir, "config.json");
  if (!existsSync(cfgPath) || !existsSync(libPath)) return null;
  const strip = (c: Record<string, unknown>) => JSON.stringify({ ...c, configFile: undefined });
  const saved = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  if (strip(saved) !== strip(cfg as unknown as Record<string, unknown>)) {
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(cfg)])].filter(
      (k) => k !== "configFile" && JSON.stringify(saved[k]) !== JSON.stringify((cfg as Record<string, unknown>)[k]),
    );
    throw new CohortError(
      `${runDir} was started with another config (differs in: ${keys.join(", ")}); resume with the same config, or give the new one another name`,
    );
  }
  const { library, step } = readLibraryFile(libPath);
  if (step === null)
    throw new CohortError(`${libPath} has no step number; it was not saved by cohort tfgrpo, so the run cannot resume`);
  const records = existsSync(metricsPath)
    ? readFileSync(metricsPath, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
  const kept = records.filter((r) =>
    "step" in r ? (r.step as number) <= step : (r.epoch as number) * stepsPerEpoch <= step,
  );
  return { step, library, records: kept };
}

function countsMetrics(c: UpdateCounts): Record<string, number> {
  return {
    ops_add: c.added,
    ops_modify: c.modifyRequests,
    ops_delete: c.deleteRequests,
    ops_keep: c.keeps,
    ops_unknown_target: c.unknownTargets,
    plan_modified: c.planModified,
    plan_merged: c.planMerged,
    plan_deleted: c.planDeleted,
    plan_skipped: c.planSkipped,
    plan_fallback: c.planFallback ? 1 : 0,
  };
}

export { loadLibrary };
