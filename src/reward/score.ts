/**
 * Running reward functions safely. A reward that throws, times out, returns NaN/±Infinity or returns
 * something other than a number or null never crashes the run: the failure is recorded (which reward,
 * which sample, kind, message), counted, and scored as the reward's fallback (default null, "not applicable").
 *
 * Timeouts: an async reward is abandoned after `timeoutMs` (its late result or rejection is ignored).
 * A synchronous reward cannot be interrupted, since it holds the event loop; if it ran longer than
 * `timeoutMs` its result is discarded and the call is recorded as a timeout.
 *
 * A reward that calls `process.exit` while it runs (an async one: until its result or its timeout) does not end
 * the process: the call throws inside the reward, which is recorded as a `throw` failure of that reward.
 * @module
 */
import { performance } from "node:perf_hooks";
import { CohortError } from "../errors.js";
import type { NamedReward, RewardFn, RewardSample } from "./types.js";

/** throw: the function threw or rejected; timeout: over timeoutMs; nan: NaN or ±Infinity; invalid: not a number or null. */
export type RewardFailureKind = "throw" | "timeout" | "nan" | "invalid";

export const REWARD_FAILURE_KINDS: readonly RewardFailureKind[] = ["throw", "timeout", "nan", "invalid"];

export type RewardCall = { ok: true; value: number | null } | { ok: false; kind: RewardFailureKind; message: string };

export interface RewardFailure {
  /** Reward name. */
  reward: string;
  /** Index of the sample in the scored list. */
  sampleIndex: number;
  kind: RewardFailureKind;
  message: string;
  sample: RewardSample;
}

export const DEFAULT_REWARD_TIMEOUT_MS = 10_000;
export const DEFAULT_REWARD_CONCURRENCY = 8;

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "boolean") return `the boolean ${v} (return 1 or 0 instead)`;
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function check(value: unknown): RewardCall {
  if (value === null) return { ok: true, value: null };
  if (typeof value === "number") {
    if (Number.isFinite(value)) return { ok: true, value };
    return {
      ok: false,
      kind: "nan",
      message: `returned ${value}; return a finite number, or null when the reward does not apply`,
    };
  }
  return {
    ok: false,
    kind: "invalid",
    message: `returned ${describe(value)}; return a finite number, or null when the reward does not apply`,
  };
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `threw ${typeof e === "string" ? JSON.stringify(e) : String(e)}`;
}

/** What `process.exit` throws while a reward runs: the exit becomes a failure of that reward. */
class RewardExit extends Error {
  override name = "RewardExit";
  constructor(code: unknown) {
    super(
      `called process.exit(${code === undefined ? "" : String(code)}); the call was stopped so the run goes on. ` +
        "A reward returns a number, or null when it does not apply, and throws to report a problem",
    );
  }
}

let rewardsRunning = 0;
let realExit: typeof process.exit | null = null;

/**
 * While any reward call is in flight (an async one until it settles), `process.exit` throws a RewardExit in
 * the code that called it instead of ending the process: a reward cannot end the run.
 */
function guardExit(): () => void {
  if (rewardsRunning++ === 0) {
    realExit = process.exit;
    process.exit = ((code?: unknown) => {
      throw new RewardExit(code);
    }) as typeof process.exit;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--rewardsRunning === 0 && realExit !== null) {
      process.exit = realExit;
      realExit = null;
    }
  };
}

/** Call one reward on one sample with a timeout; never throws (nor exits the process). */
export async function callReward(fn: RewardFn, sample: RewardSample, timeoutMs: number): Promise<RewardCall> {
  const release = guardExit();
  try {
    return await callGuarded(fn, sample, timeoutMs);
  } finally {
    release();
  }
}

async function callGuarded(fn: RewardFn, sample: RewardSample, timeoutMs: number): Promise<RewardCall> {
  const start = performance.now();
  let out: unknown;
  try {
    out = fn(sample);
  } catch (e) {
    return { ok: false, kind: "throw", message: errorMessage(e) };
  }
  const isThenable =
    out !== null && typeof out === "object" && typeof (out as PromiseLike<unknown>).then === "function";
  if (!isThenable) {
    const ms = performance.now() - start;
    if (ms > timeoutMs) {
      return {
        ok: false,
        kind: "timeout",
        message: `ran synchronously for ${Math.round(ms)} ms (timeoutMs ${timeoutMs}); a synchronous reward cannot be interrupted and blocks the run, so make it faster or async`,
      };
    }
    return check(out);
  }
  const pending = Promise.resolve(out as PromiseLike<unknown>);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<RewardCall>((res) => {
    timer = setTimeout(
      () => res({ ok: false, kind: "timeout", message: `no result after ${timeoutMs} ms (timeoutMs)` }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      pending.then(check, (e: unknown): RewardCall => ({ ok: false, kind: "throw", message: errorMessage(e) })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ScoreOptions {
  /** Per-call limit in milliseconds; default 10,000. */
  timeoutMs?: number;
  /** Most calls in flight at once (all rewards and samples together); default 8. */
  concurrency?: number;
}

export interface ScoreResult {
  /** rewards[k][i]: reward k on sample i; null = not applicable (or a failure with a null fallback). */
  rewards: (number | null)[][];
  failures: RewardFailure[];
  /** Failures per reward name and kind (every reward and kind present, zeros included). */
  failureCounts: Record<string, Record<RewardFailureKind, number>>;
}

function named(fns: readonly (NamedReward | RewardFn)[]): NamedReward[] {
  return fns.map((f, k) => (typeof f === "function" ? { name: f.name || `reward${k}`, fn: f } : f));
}

/**
 * Score every sample with every reward. Calls run concurrently up to `concurrency`; results are placed by
 * index, so the output does not depend on completion order. Never throws because of a reward function.
 */
export async function scoreAll(
  fns: readonly (NamedReward | RewardFn)[],
  samples: readonly RewardSample[],
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  const concurrency = options.concurrency ?? DEFAULT_REWARD_CONCURRENCY;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new CohortError(`scoreAll: timeoutMs must be a positive number, received ${timeoutMs}`);
  }
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new CohortError(`scoreAll: concurrency must be an integer ≥ 1, received ${concurrency}`);
  }
  const rewards = named(fns);
  const seen = new Set<string>();
  for (const r of rewards) {
    if (seen.has(r.name)) {
      throw new CohortError(
        `scoreAll: two rewards are named "${r.name}"; give each a distinct name (NamedReward.name)`,
      );
    }
    seen.add(r.name);
  }
  const out = rewards.map(() => new Array<number | null>(samples.length).fill(null));
  const failureCounts: ScoreResult["failureCounts"] = {};
  for (const r of rewards) failureCounts[r.name] = { throw: 0, timeout: 0, nan: 0, invalid: 0 };
  const failures: (RewardFailure | undefined)[] = new Array(rewards.length * samples.length);
  const total = rewards.length * samples.length;
  let next = 0;

  async function worker(): Promise<void> {
    while (next < total) {
      const job = next++;
      const i = Math.floor(job / rewards.length);
      const k = job % rewards.length;
      const r = rewards[k] as NamedReward;
      const sample = samples[i] as RewardSample;
      const res = await callReward(r.fn, sample, timeoutMs);
      const row = out[k] as (number | null)[];
      if (res.ok) {
        row[i] = res.value;
      } else {
        row[i] = r.fallback ?? null;
        (failureCounts[r.name] as Record<RewardFailureKind, number>)[res.kind]++;
        failures[k * samples.length + i] = {
          reward: r.name,
          sampleIndex: i,
          kind: res.kind,
          message: res.message,
          sample,
        };
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(total, 1)) }, worker));
  return { rewards: out, failures: failures.filter((f): f is RewardFailure => f !== undefined), failureCounts };
}
