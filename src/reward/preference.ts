/**
 * The preference contract: instead of scoring one completion, a preference compares two completions of one
 * prompt and returns `P(a ≻ b)`, the probability that `a` is preferred to `b` (a number in [0, 1]; ½ = a tie).
 * Like a reward function it may be sync or async. A preference need not be transitive (DNO and Nash-MP are
 * built for that case).
 *
 * Ways to get one:
 * - your own function, `preference: ./p.ts#prefer` in the train config (relative to the config file);
 * - `verifier`: the task's verifier turned into a preference, `P = ½ + ½·(c(a) − c(b))` with c = 1 for a
 *   correct answer (ties ½);
 * - `rps_style`: an intransitive preference on purpose, rock–paper–scissors over answer styles (the first
 *   non-space character of the completion is a digit, a letter, or anything else), for tests and examples;
 * - `{judge: {baseUrl, model, …}}`: an LLM judge behind an OpenAI-compatible endpoint (judge.ts);
 * - `{bt: {path}}`: a Bradley–Terry model trained in Cohort on labelled pairs (bt.ts, `cohort preference-model`).
 *
 * In a run, every group's completions are compared pairwise (each unordered pair queried once, in both
 * orientations by `P(b ≻ a) = 1 − P(a ≻ b)`), and each completion's reward is its win rate against the rest
 * of its group, `w_i = (1/(G−1))·Σ_{j≠i} P(i ≻ j)` (ALGORITHMS.md §G.2, the DNO-Prct win-rate estimate).
 * The pairwise matrices are kept beside the rewards (`PreferenceScores.matrices`).
 * @module
 */
import { z } from "zod";
import { Registry } from "../algo/registry.js";
import { CohortError, ConfigError } from "../errors.js";
import type { Problem, Task } from "../task/types.js";
import { problemOf, toRewardSample } from "./builtin.js";
import type { JudgeOptions } from "./judge.js";
import { loadRewardFn } from "./load.js";
import { callReward, DEFAULT_REWARD_CONCURRENCY, DEFAULT_REWARD_TIMEOUT_MS, type RewardFailureKind } from "./score.js";
import type { RewardSample } from "./types.js";

/** What a preference sees: the prompt (and the problem's data) and the two completions. */
export interface PreferenceSample {
  prompt: string;
  a: string;
  b: string;
  answer?: string;
  fields: Record<string, unknown>;
  id?: string;
}

/** `P(a ≻ b)` in [0, 1]; sync or async. Throwing, timing out or returning anything else is a failure. */
export type PreferenceFn = (sample: PreferenceSample) => number | Promise<number>;

export interface NamedPreference {
  name: string;
  fn: PreferenceFn;
}

/** The verifier of `task` as a preference: ½ + ½·(c(a) − c(b)), c = 1 when the answer is correct. */
export function verifierPreference(task: Task): PreferenceFn {
  return (s) => {
    const p: Problem = problemOf({ prompt: s.prompt, completion: "", fields: s.fields, ...idAnswer(s) });
    const c = (t: string) => (task.verify(p, t).correct ? 1 : 0);
    return 0.5 + 0.5 * (c(s.a) - c(s.b));
  };
}

function idAnswer(s: { id?: string | undefined; answer?: string | undefined }): Pick<RewardSample, "id" | "answer"> {
  return { ...(s.id !== undefined ? { id: s.id } : {}), ...(s.answer !== undefined ? { answer: s.answer } : {}) };
}

/** The three answer styles of `rps_style`: the first non-space character is a digit, a letter, or other. */
export type AnswerStyle = "rock" | "paper" | "scissors";
export function answerStyle(text: string): AnswerStyle {
  const c = text.trimStart().charAt(0);
  if (/[0-9]/.test(c)) return "rock";
  if (/\p{L}/u.test(c)) return "paper";
  return "scissors";
}
const BEATS: Record<AnswerStyle, AnswerStyle> = { rock: "scissors", scissors: "paper", paper: "rock" };

/**
 * An intransitive preference on purpose: rock (digit first) beats scissors (anything else first), scissors
 * beats paper (letter first), paper beats rock, each with probability ½ + margin/2; equal styles tie at ½.
 * No policy is best against every other: the symmetric Nash equilibrium plays the three styles equally often.
 */
export function rpsStylePreference(margin = 1): PreferenceFn {
  if (!(margin >= 0 && margin <= 1)) throw new CohortError(`rps_style: margin must be in [0, 1], got ${margin}`);
  return (s) => {
    const x = answerStyle(s.a);
    const y = answerStyle(s.b);
    if (x === y) return 0.5;
    return BEATS[x] === y ? 0.5 + margin / 2 : 0.5 - margin / 2;
  };
}

/** Built-in preferences by name. */
export const builtinPreferences = new Registry<(ctx: { task?: Task }) => PreferenceFn>("built-in preference");
builtinPreferences.register("verifier", (ctx) => {
  if (ctx.task === undefined) throw new ConfigError('the "verifier" preference needs a task', "preference");
  return verifierPreference(ctx.task);
});
builtinPreferences.register("rps_style", () => rpsStylePreference());

/** `preference:` in a train config: a built-in name, `<module path>#<export name>`, `{judge: {…}}` or `{bt: {path}}`. */
export const preferenceEntrySchema = z
  .union([
    z.string().min(1),
    z.strictObject({ judge: z.record(z.string(), z.unknown()) }),
    z.strictObject({ bt: z.strictObject({ path: z.string().min(1) }) }),
  ])
  .meta({
    description:
      'A built-in preference ("verifier", "rps_style"), "<module path>#<export name>" of a function (prompt, a, b) → P(a ≻ b), {judge: {baseUrl, model, …}}: an LLM judge behind an OpenAI-compatible endpoint, or {bt: {path}}: a Bradley–Terry model made by cohort preference-model.',
  });
export type PreferenceEntry = z.output<typeof preferenceEntrySchema>;

/** Resolves a config entry to a named preference. */
export async function resolvePreference(
  entry: PreferenceEntry,
  options: { task?: Task; configFile?: string; path?: string } = {},
): Promise<NamedPreference> {
  const path = options.path ?? "preference";
  if (typeof entry !== "string" && "bt" in entry) {
    const { btDirOf, btPreference } = await import("./bt.js");
    return { name: "bt", fn: btPreference(btDirOf(options.configFile, entry.bt.path)) };
  }
  if (typeof entry !== "string") {
    const { llmJudgePreference } = await import("./judge.js");
    return { name: "judge", fn: llmJudgePreference(entry.judge as JudgeOptions, `${path}.judge`) };
  }
  if (!entry.includes("#")) {
    if (!builtinPreferences.has(entry)) {
      throw new ConfigError(
        `unknown preference "${entry}"; built-in: ${builtinPreferences.names().join(", ")}, or "<module path>#<export name>"`,
        path,
      );
    }
    return { name: entry, fn: builtinPreferences.get(entry)(options.task ? { task: options.task } : {}) };
  }
  const fn = (await loadRewardFn(entry, { ...options, path })) as unknown as PreferenceFn;
  return { name: entry.slice(entry.lastIndexOf("#") + 1), fn };
}

export interface PreferenceFailure {
  kind: RewardFailureKind | "range";
  message: string;
  sample: PreferenceSample;
}

export interface PreferenceScores {
  /** Win rate of each row against the other rows of its group (NaN for a group of one). */
  winRates: Float64Array;
  /** Per group (in first-seen order): its rows and the matrix P[i][j] = P(row i ≻ row j), row-major [G·G]. */
  matrices: { rows: number[]; P: Float64Array }[];
  /** Failed or out-of-range calls (scored as a tie, ½). */
  failures: PreferenceFailure[];
  /** Preference calls made. */
  queries: number;
}

/**
 * Compares every unordered pair of each group once (lower row index as `a`) and returns the win rates and
 * matrices. Calls run concurrently (up to `concurrency`), results are placed by index; a failed call counts as
 * a tie and is reported. `problems[i]` and `texts[i]` are row i's problem and completion.
 */
export async function scorePreferences(
  pref: PreferenceFn,
  problems: readonly Problem[],
  texts: readonly string[],
  groupIndex: Int32Array,
  options: { timeoutMs?: number; concurrency?: number } = {},
): Promise<PreferenceScores> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  const concurrency = options.concurrency ?? DEFAULT_REWARD_CONCURRENCY;
  const order: number[] = [];
  const members = new Map<number, number[]>();
  groupIndex.forEach((g, i) => {
    let m = members.get(g);
    if (m === undefined) {
      m = [];
      members.set(g, m);
      order.push(g);
    }
    m.push(i);
  });
  const matrices = order.map((g) => {
    const rows = members.get(g) as number[];
    const P = new Float64Array(rows.length * rows.length).fill(0.5);
    return { rows, P };
  });
  const jobs: { m: number; x: number; y: number }[] = [];
  matrices.forEach(({ rows }, m) => {
    for (let x = 0; x < rows.length; x++) for (let y = x + 1; y < rows.length; y++) jobs.push({ m, x, y });
  });
  const failures: PreferenceFailure[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { m, x, y } = jobs[next++] as (typeof jobs)[number];
      const { rows, P } = matrices[m] as (typeof matrices)[number];
      const i = rows[x] as number;
      const j = rows[y] as number;
      const base = toRewardSample(problems[i] as Problem, "");
      const sample: PreferenceSample = {
        prompt: base.prompt,
        a: texts[i] as string,
        b: texts[j] as string,
        fields: base.fields,
        ...idAnswer(base),
      };
      const r = await callReward(() => pref(sample), base, timeoutMs);
      let p = 0.5;
      if (!r.ok) failures.push({ kind: r.kind, message: r.message, sample });
      else if (r.value === null || !(r.value >= 0 && r.value <= 1)) {
        failures.push({ kind: "range", message: `P(a ≻ b) must be in [0, 1], got ${r.value}`, sample });
      } else p = r.value;
      const G = rows.length;
      P[x * G + y] = p;
      P[y * G + x] = 1 - p;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, jobs.length)) }, worker));
  const winRates = new Float64Array(texts.length).fill(Number.NaN);
  for (const { rows, P } of matrices) {
    const G = rows.length;
    if (G < 2) continue;
    rows.forEach((i, x) => {
      let s = 0;
      for (let y = 0; y < G; y++) if (y !== x) s += P[x * G + y] as number;
      winRates[i] = s / (G - 1);
    });
  }
  return { winRates, matrices, failures, queries: jobs.length };
}

/** Mean of P(a ≻ b) over every pair (a from `as`, b from `bs`) of one prompt: the win rate of a set over another. */
export async function winRate(
  pref: PreferenceFn,
  problem: Problem,
  as: readonly string[],
  bs: readonly string[],
): Promise<number> {
  const base = toRewardSample(problem, "");
  let s = 0;
  for (const a of as)
    for (const b of bs) s += await pref({ prompt: base.prompt, a, b, fields: base.fields, ...idAnswer(base) });
  return s / (as.length * bs.length);
}
