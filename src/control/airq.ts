/**
 * Ozone alert forecasting as a control environment (`env: {name: airq}`): R's `airquality` series (New York,
 * May–September 1973; data/airquality.json, extracted from Debian's r-base-core by scripts/data/airquality.py),
 * a categorical forecaster over ozone bins, FAKER-Air's class-wise reward and its curriculum rollout over the
 * forecast horizon. arXiv 2511.22169 [CODE] (reward, step weights, curriculum); the data, features, bins,
 * the severe-miss penalty and the evaluation protocol are design choices of this module.
 *
 * One episode = one issue day t (ozone observed up to t) forecast autoregressively for days t+1 … t+H:
 *
 * | step h | observation (11 values, standardised with May–August statistics)                   | action        |
 * |--------|------------------------------------------------------------------------------------|---------------|
 * | 1..H   | ozone of the 3 days before t+h (observed, or the episode's own earlier forecast),   | one of 14     |
 * |        | 3 flags "that day's ozone is missing" (then the May–August mean stands in), Temp,    | ozone bins    |
 * |        | Wind, Solar.R of day t, a flag "Solar.R missing", staleness (h − 1)/2               | (BIN_EDGES)   |
 *
 * Classes (EPA 8-hour AQI ozone breakpoints, ppb): 0 Good < 55 ≤ 1 Moderate < 71 ≤ 2 USG < 86 ≤ 3 Unhealthy+;
 * an alert is class ≥ 2, a severe event class 3. At an edge the value falls in the upper class (EPA's ranges,
 * `np.digitize`); `atEdge: lower` gives FAKER-Air's training convention (`torch.bucketize`).
 *
 * | reward term (per step, gt = observed class, pred = class of the sampled bin)   | default | source        |
 * |--------------------------------------------------------------------------------|---------|---------------|
 * | + exact · 1[cls(gt) = cls(pred)]                                               | 1       | FAKER-Air w_e |
 * | + alert · 1[alert(gt) = alert(pred)]                                           | 0       | FAKER-Air w_c |
 * | − falseAlarm · 1[alert(pred) ∧ ¬alert(gt)]                                     | 0.1     | FAKER-Air p_fa|
 * | − miss · 1[alert(gt) ∧ ¬alert(pred)]                                           | 0       | design choice |
 * | − severeMiss · 1[cls(gt) = 3 ∧ ¬alert(pred)]  (a missed severe event > false alarm) | 0.3 | design choice |
 *
 * Episode return R = Σ_h s_h·r_h / H with step weights s = linspace(first, last, H) rescaled to sum H
 * (FAKER-Air: 1 → 0.75); a step whose target is missing (NA) scores 0 for every member of the group.
 * Curriculum: H at training step k is min(horizon, start + increment·⌊(k − 1)/everySteps⌋).
 *
 * Missing values: ozone is NA on 37 of 153 days. A training episode needs the day-1 target observed; inputs
 * that are NA are replaced by the May–August mean with a missing flag set; targets that are NA score 0 and
 * are left out of every metric. Nothing is interpolated.
 *
 * Held-out evaluation (`evaluateAirq`): every (t, h) with target day t+h in September and observed, forecast by
 * an ensemble of `evalMembers` sampled trajectories (the predictive distribution at h is the members' mean
 * bin probabilities); the alert decision is the most probable class. Metrics: FAR = FA/(hits + FA) (false
 * alarm ratio), POD = hits/(hits + misses), F1 of the alert class, CRPS (ppb; bins as point masses at their
 * centres), per horizon and pooled. (The loop's generic `eval_return` plays greedy episodes from training issue
 * days, and its `eval_accuracy`, the share of episodes that ran their whole horizon, is always 1 here.)
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { mix32, Rng } from "../task/rng.js";
import { noGrad, tensor, tidy } from "../tensor/index.js";
import type { ControlEnv, StepResult } from "./env.js";
import type { ActionSpace, Policy } from "./policy.js";

/** Ozone bin edges (ppb); bins never straddle a class threshold. Values ≥ 170 fall in the last bin. */
export const BIN_EDGES = [0, 10, 20, 30, 40, 55, 63, 71, 78, 86, 96, 106, 125, 150, 170] as const;
export const NUM_BINS = BIN_EDGES.length - 1;
/** Bin centres (ppb): the value a sampled bin stands for. */
export const BIN_CENTRES = Float64Array.from(
  { length: NUM_BINS },
  (_, i) => ((BIN_EDGES[i] as number) + (BIN_EDGES[i + 1] as number)) / 2,
);
export const OBS_DIM = 11;
const LAGS = 3;

export interface AirqDay {
  ozone: number | null;
  solar: number | null;
  wind: number;
  temp: number;
  month: number;
  day: number;
}

const dataPath = fileURLToPath(new URL("../../data/airquality.json", import.meta.url));

let cached: AirqDay[] | null = null;
/** The 153 days of data/airquality.json (null = NA). */
export function loadAirquality(path = dataPath): AirqDay[] {
  if (path === dataPath && cached) return cached;
  const doc = JSON.parse(readFileSync(path, "utf8")) as { fields: string[]; rows: (number | null)[][] };
  const want = ["Ozone", "Solar.R", "Wind", "Temp", "Month", "Day"];
  if (doc.fields.join(",") !== want.join(","))
    throw new CohortError(`${path}: expected the columns ${want.join(", ")}, got ${doc.fields.join(", ")}`);
  const days = doc.rows.map(([ozone, solar, wind, temp, month, day]) => ({
    ozone: ozone ?? null,
    solar: solar ?? null,
    wind: wind as number,
    temp: temp as number,
    month: month as number,
    day: day as number,
  }));
  if (path === dataPath) cached = days;
  return days;
}

export const airqOptions = z.strictObject({
  /** Longest forecast horizon in days (the curriculum's end). */
  horizon: z.number().int().min(1).max(3).default(3),
  /** Horizon at training step k: min(horizon, start + increment·⌊(k − 1)/everySteps⌋); null: always `horizon`. */
  curriculum: z
    .strictObject({
      start: z.number().int().min(1).default(1),
      increment: z.number().int().min(1).default(1),
      everySteps: z.number().int().min(1).default(10),
    })
    .nullable()
    .default({ start: 1, increment: 1, everySteps: 10 }),
  /** Class thresholds (ppb, increasing): Good | Moderate | USG | Unhealthy+. */
  thresholds: z
    .array(z.number().positive())
    .length(3)
    .default([55, 71, 86])
    .refine((t) => t.every((x, i) => i === 0 || x > (t[i - 1] as number)), "thresholds must increase"),
  /** A value equal to a threshold: `upper` class (EPA ranges, np.digitize) or `lower` (torch.bucketize). */
  atEdge: z.enum(["upper", "lower"]).default("upper"),
  reward: z
    .strictObject({
      exact: z.number().default(1),
      alert: z.number().default(0),
      falseAlarm: z.number().min(0).default(0.1),
      miss: z.number().min(0).default(0),
      severeMiss: z.number().min(0).default(0.3),
    })
    .default({ exact: 1, alert: 0, falseAlarm: 0.1, miss: 0, severeMiss: 0.3 }),
  /** Step weights linspace(first, last, H), rescaled to sum H. */
  stepWeights: z
    .strictObject({ first: z.number().positive().default(1), last: z.number().positive().default(0.75) })
    .default({ first: 1, last: 0.75 }),
  /** Sampled trajectories per held-out forecast (the ensemble of `evaluateAirq`). */
  evalMembers: z.number().int().min(1).default(32),
});
export type AirqOptions = z.output<typeof airqOptions>;

export type RewardTable = AirqOptions["reward"];

/** The class (0..3) of an ozone value. */
export function ozoneClass(x: number, thresholds: readonly number[], atEdge: "upper" | "lower" = "upper"): number {
  let c = 0;
  for (const t of thresholds) if (atEdge === "upper" ? x >= t : x > t) c++;
  return c;
}

/** The bin of an ozone value (values past the last edge fall in the last bin). */
export function ozoneBin(x: number): number {
  for (let i = NUM_BINS - 1; i > 0; i--) if (x >= (BIN_EDGES[i] as number)) return i;
  return 0;
}

/** The class-wise reward of one forecast (table above); classes 0..3, alert = class ≥ 2. */
export function classReward(gt: number, pred: number, r: RewardTable): number {
  const ag = gt >= 2;
  const ap = pred >= 2;
  let v = r.exact * (gt === pred ? 1 : 0) + r.alert * (ag === ap ? 1 : 0);
  if (ap && !ag) v -= r.falseAlarm;
  if (ag && !ap) v -= r.miss;
  if (gt === 3 && !ap) v -= r.severeMiss;
  return v;
}

/** FAKER-Air's step weights: linspace(first, last, H) rescaled to sum H. */
export function stepWeights(H: number, first = 1, last = 0.75): Float64Array {
  const s = Float64Array.from({ length: H }, (_, i) => (H === 1 ? first : first + ((last - first) * i) / (H - 1)));
  const sum = s.reduce((a, b) => a + b, 0);
  return s.map((x) => (x * H) / sum);
}

/** The horizon at training step k (1-based) under a curriculum. */
export function curriculumHorizon(o: Pick<AirqOptions, "horizon" | "curriculum">, step: number): number {
  if (o.curriculum === null) return o.horizon;
  const c = o.curriculum;
  return Math.min(o.horizon, c.start + c.increment * Math.floor(Math.max(0, step - 1) / c.everySteps));
}

/** Confusion counts of the alert class. */
export interface Confusion {
  hits: number;
  misses: number;
  falseAlarms: number;
  correctNegatives: number;
}

export function confusion(gt: readonly number[], pred: readonly number[]): Confusion {
  const c = { hits: 0, misses: 0, falseAlarms: 0, correctNegatives: 0 };
  gt.forEach((g, i) => {
    const ag = g >= 2;
    const ap = (pred[i] as number) >= 2;
    if (ag && ap) c.hits++;
    else if (ag) c.misses++;
    else if (ap) c.falseAlarms++;
    else c.correctNegatives++;
  });
  return c;
}

/** FAR = FA/(hits + FA), POD = hits/(hits + misses), F1 = 2·hits/(2·hits + misses + FA); 0 when undefined. */
export function alertScores(c: Confusion): { far: number; pod: number; f1: number } {
  const div = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    far: div(c.falseAlarms, c.hits + c.falseAlarms),
    pod: div(c.hits, c.hits + c.misses),
    f1: div(2 * c.hits, 2 * c.hits + c.misses + c.falseAlarms),
  };
}

/**
 * CRPS of a categorical forecast with point masses p_i at the bin centres c_i against the observation y:
 * Σ_i p_i |c_i − y| − ½ Σ_ij p_i p_j |c_i − c_j|  (= ∫ (F(x) − 1[x ≥ y])² dx).
 */
export function crpsCategorical(p: ArrayLike<number>, y: number, centres: ArrayLike<number> = BIN_CENTRES): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    a += pi * Math.abs((centres[i] as number) - y);
    for (let j = 0; j < p.length; j++)
      b += pi * (p[j] as number) * Math.abs((centres[i] as number) - (centres[j] as number));
  }
  return a - 0.5 * b;
}

/** Standardisation statistics of the training months (May–August). */
export interface AirqStats {
  ozone: [number, number];
  temp: [number, number];
  wind: [number, number];
  solar: [number, number];
}

export const TRAIN_MONTHS = [5, 6, 7, 8];
export const TEST_MONTH = 9;

export function airqStats(days: readonly AirqDay[]): AirqStats {
  const ms = (xs: number[]): [number, number] => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return [m, Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1))];
  };
  const tr = days.filter((d) => TRAIN_MONTHS.includes(d.month));
  return {
    ozone: ms(tr.flatMap((d) => (d.ozone === null ? [] : [d.ozone]))),
    temp: ms(tr.map((d) => d.temp)),
    wind: ms(tr.map((d) => d.wind)),
    solar: ms(tr.flatMap((d) => (d.solar === null ? [] : [d.solar]))),
  };
}

/**
 * The observation for forecasting day t+h from issue day t: `forecasts[k]` is the episode's forecast (ppb) of
 * day t+1+k, used in place of observations after t.
 */
export function airqFeatures(
  days: readonly AirqDay[],
  st: AirqStats,
  t: number,
  h: number,
  forecasts: readonly number[],
  out: Float64Array = new Float64Array(OBS_DIM),
): Float64Array {
  const z = (x: number, [m, s]: [number, number]) => (x - m) / s;
  for (let l = 0; l < LAGS; l++) {
    const d = t + h - 1 - l; // the days before the target, latest first
    let v: number | null;
    if (d > t) v = forecasts[d - t - 1] as number;
    else v = d >= 0 ? (days[d] as AirqDay).ozone : null;
    out[l] = v === null ? 0 : z(v, st.ozone);
    out[LAGS + l] = v === null ? 1 : 0;
  }
  const today = days[t] as AirqDay;
  out[6] = z(today.temp, st.temp);
  out[7] = z(today.wind, st.wind);
  out[8] = today.solar === null ? 0 : z(today.solar, st.solar);
  out[9] = today.solar === null ? 1 : 0;
  out[10] = (h - 1) / 2;
  return out;
}

/** Issue days of training episodes: the day-1 target observed, every target day t+1..t+H within May–August. */
export function trainIssueDays(days: readonly AirqDay[], H: number): number[] {
  const out: number[] = [];
  for (let t = 0; t + H < days.length; t++) {
    if ((days[t + 1] as AirqDay).ozone === null) continue;
    let ok = true;
    for (let h = 1; h <= H; h++) if (!TRAIN_MONTHS.includes((days[t + h] as AirqDay).month)) ok = false;
    if (ok) out.push(t);
  }
  return out;
}

/** The environment: reset(seed) draws an issue day of the training period; H steps of forecasts. */
export class AirqEnv implements ControlEnv {
  readonly obsDim = OBS_DIM;
  readonly action: ActionSpace = { kind: "discrete", n: NUM_BINS };
  readonly horizon: number;
  readonly #o: AirqOptions;
  readonly #days: readonly AirqDay[];
  readonly #stats: AirqStats;
  readonly #issue: number[];
  #t = 0;
  #h = 1;
  #H = 1;
  #weights: Float64Array = new Float64Array(1);
  #forecasts: number[] = [];

  constructor(o: AirqOptions, days: readonly AirqDay[] = loadAirquality()) {
    this.#o = o;
    this.horizon = o.horizon;
    this.#days = days;
    this.#stats = airqStats(days);
    this.#issue = trainIssueDays(days, o.horizon);
  }

  /** The issue day of the current episode (an index into the data). */
  get issueDay(): number {
    return this.#t;
  }

  reset(seed: number, opts: { horizon?: number } = {}): Float64Array {
    this.#t = this.#issue[Rng.fromSeed(seed).int(0, this.#issue.length - 1)] as number;
    this.#H = Math.min(this.horizon, opts.horizon ?? this.horizon);
    this.#h = 1;
    this.#forecasts = [];
    const w = this.#o.stepWeights;
    this.#weights = stepWeights(this.#H, w.first, w.last);
    return airqFeatures(this.#days, this.#stats, this.#t, 1, []);
  }

  step(action: Float64Array): StepResult {
    const bin = action[0] as number;
    if (!Number.isInteger(bin) || bin < 0 || bin >= NUM_BINS)
      throw new CohortError(`airq: action ${bin} is not a bin index 0..${NUM_BINS - 1}`);
    const h = this.#h;
    const gt = (this.#days[this.#t + h] as AirqDay).ozone;
    const { thresholds, atEdge } = this.#o;
    const value = BIN_CENTRES[bin] as number;
    const r =
      gt === null
        ? 0
        : classReward(ozoneClass(gt, thresholds, atEdge), ozoneClass(value, thresholds, atEdge), this.#o.reward);
    this.#forecasts.push(value);
    this.#h++;
    // the episode is cut by its horizon (the rollout stops after H steps), never terminated
    const obs =
      h >= this.#H
        ? new Float64Array(OBS_DIM)
        : airqFeatures(this.#days, this.#stats, this.#t, this.#h, this.#forecasts);
    return { obs, reward: ((this.#weights[h - 1] as number) * r) / this.#H, done: false };
  }

  dispose(): void {}
}

/** Held-out forecasts (target day in September, observed): (issue day, horizon). */
export function testPairs(days: readonly AirqDay[], H: number): { t: number; h: number }[] {
  const out: { t: number; h: number }[] = [];
  for (let h = 1; h <= H; h++)
    for (let t = 0; t + h < days.length; t++) {
      const d = days[t + h] as AirqDay;
      if (d.month === TEST_MONTH && d.ozone !== null) out.push({ t, h });
    }
  return out;
}

/**
 * The ensemble forecast of issue day t: `members` sampled trajectories of H steps; returns the mean bin
 * probabilities at each horizon [H][NUM_BINS].
 */
export function ensembleForecast(
  policy: Policy,
  days: readonly AirqDay[],
  st: AirqStats,
  issue: readonly number[],
  H: number,
  members: number,
  rng: Rng,
): Float64Array[][] {
  const n = issue.length * members;
  const forecasts: number[][] = Array.from({ length: n }, () => []);
  const probs = issue.map(() => Array.from({ length: H }, () => new Float64Array(NUM_BINS)));
  for (let h = 1; h <= H; h++) {
    const obs = new Float64Array(n * OBS_DIM);
    for (let i = 0; i < n; i++)
      airqFeatures(
        days,
        st,
        issue[Math.floor(i / members)] as number,
        h,
        forecasts[i] as number[],
        obs.subarray(i * OBS_DIM, (i + 1) * OBS_DIM),
      );
    const s = policy.sample(obs, rng);
    const p = policyProbs(policy, obs, n);
    for (let i = 0; i < n; i++) {
      (forecasts[i] as number[]).push(BIN_CENTRES[s.actions[i] as number] as number);
      const acc = (probs[Math.floor(i / members)] as Float64Array[])[h - 1] as Float64Array;
      for (let b = 0; b < NUM_BINS; b++) acc[b] = (acc[b] as number) + (p[i * NUM_BINS + b] as number) / members;
    }
  }
  return probs;
}

/** π(bin | obs) for n observations, flat [n, NUM_BINS] (float64, no gradient). */
export function policyProbs(policy: Policy, obs: Float64Array, n: number): Float64Array {
  return noGrad(() =>
    tidy(() => {
      const snap = policy.snapshot(tensor(obs, { shape: [n, OBS_DIM], dtype: "f32" }));
      if (!("logits" in snap)) throw new CohortError("airq: the forecaster must be a categorical policy");
      return Float64Array.from(snap.logits.softmax(-1).to("f64").data() as Float64Array);
    }),
  );
}

/** The ensemble draws of a run's held-out evaluation (the same at every evaluation and in the SFT stage). */
export function airqEvalSeed(runSeed: number): number {
  return mix32(runSeed * 0x9e3779b1 + 0x0a1c);
}

/** Held-out metrics of a forecaster (module doc): eval_{far,pod,f1,crps}[_h1.._hH], counts of events. */
export function evaluateAirq(
  policy: Policy,
  o: AirqOptions,
  seed: number,
  days: readonly AirqDay[] = loadAirquality(),
): Record<string, number> {
  const st = airqStats(days);
  const H = o.horizon;
  const pairs = testPairs(days, H);
  const issue = [...new Set(pairs.map((p) => p.t))].sort((a, b) => a - b);
  const probs = ensembleForecast(policy, days, st, issue, H, o.evalMembers, Rng.fromSeed(seed));
  const at = new Map(issue.map((t, k) => [t, k]));
  const out: Record<string, number> = {};
  const pooled = { gt: [] as number[], pred: [] as number[], crps: [] as number[] };
  for (let h = 1; h <= H; h++) {
    const gt: number[] = [];
    const pred: number[] = [];
    const crps: number[] = [];
    for (const p of pairs.filter((q) => q.h === h)) {
      const pr = (probs[at.get(p.t) as number] as Float64Array[])[h - 1] as Float64Array;
      const y = (days[p.t + h] as AirqDay).ozone as number;
      const mass = [0, 0, 0, 0];
      pr.forEach((v, b) => {
        const c = ozoneClass(BIN_CENTRES[b] as number, o.thresholds, o.atEdge);
        mass[c] = (mass[c] as number) + v;
      });
      pred.push(mass.indexOf(Math.max(...mass)));
      gt.push(ozoneClass(y, o.thresholds, o.atEdge));
      crps.push(crpsCategorical(pr, y));
    }
    const s = alertScores(confusion(gt, pred));
    out[`eval_far_h${h}`] = s.far;
    out[`eval_pod_h${h}`] = s.pod;
    out[`eval_f1_h${h}`] = s.f1;
    out[`eval_crps_h${h}`] = crps.reduce((a, b) => a + b, 0) / crps.length;
    pooled.gt.push(...gt);
    pooled.pred.push(...pred);
    pooled.crps.push(...crps);
  }
  const c = confusion(pooled.gt, pooled.pred);
  const s = alertScores(c);
  out.eval_far = s.far;
  out.eval_pod = s.pod;
  out.eval_f1 = s.f1;
  out.eval_crps = pooled.crps.reduce((a, b) => a + b, 0) / pooled.crps.length;
  out.eval_alerts_issued = c.hits + c.falseAlarms;
  out.eval_alert_events = c.hits + c.misses;
  out.eval_exact_class = pooled.gt.filter((g, i) => g === pooled.pred[i]).length / pooled.gt.length;
  return out;
}
