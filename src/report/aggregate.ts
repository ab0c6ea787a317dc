/**
 * Aggregation across seeds: per preset, each metric's curve (mean, std, min, max over seeds at every step,
 * against the step and against cumulative training wall time), the final values with mean ± std, the ranking
 * and the within-noise mark (Welch's t-test, see stats.ts), and the summary.json written by `cohort compare`.
 *
 * Wall time of a run at step s is the sum of `time/step_s` over steps 1..s (sampling + training; evaluation
 * and start-up excluded, so runs that shared the machine differently stay comparable). The aggregated curve
 * plots, at each step, the mean of the seeds' wall times against the statistics of their values.
 * @module
 */
import type { MetricRow, ReportSource, RunData } from "./load.js";
import { NOISE_ALPHA, type SeedStats, seedStats, withinNoise } from "./stats.js";

export interface MetricSpec {
  key: string;
  title: string;
  /** true: higher is better (ranked, marked within noise); false: lower is better; undefined: no direction. */
  higherIsBetter?: boolean;
  /** Shown as a percentage. */
  percent?: boolean;
}

/** Metrics charted and tabulated, in report order (only those present in some run are shown). */
export const METRICS: readonly MetricSpec[] = [
  { key: "reward_mean", title: "Reward (batch mean)", higherIsBetter: true },
  { key: "eval_accuracy", title: "Held-out accuracy", higherIsBetter: true, percent: true },
  { key: "eval_format", title: "Held-out format rate", higherIsBetter: true, percent: true },
  { key: "entropy", title: "Entropy (nats/token)" },
  { key: "kl", title: "KL (k3, to reference or old policy)" },
  { key: "clip/region_ratio", title: "Clipped tokens (either bound)", percent: true },
  { key: "clip/low_ratio", title: "Clipped tokens (low bound)", percent: true },
  { key: "clip/high_ratio", title: "Clipped tokens (high bound)", percent: true },
  { key: "completions/mean_length", title: "Completion length (tokens)" },
  { key: "completions/clipped_ratio", title: "Truncated completions", percent: true },
  { key: "frac_reward_zero_std", title: "Groups with zero reward spread", percent: true },
  { key: "grad_norm", title: "Gradient norm (before clipping)" },
  { key: "loss", title: "Loss" },
];

/** Columns of the final table, in order (pass@k columns follow held-out accuracy). */
const TABLE_KEYS = [
  "eval_accuracy",
  "reward_mean",
  "eval_format",
  "entropy",
  "kl",
  "clip/region_ratio",
  "completions/mean_length",
];

const PASS_AT = /pass@\d+/;

/** The metric specs present in these runs: the fixed list, with any pass@k keys after held-out accuracy. */
export function presentMetrics(runs: readonly RunData[]): MetricSpec[] {
  const keys = new Set<string>();
  for (const r of runs) for (const m of r.metrics) for (const [k, v] of Object.entries(m)) if (isNum(v)) keys.add(k);
  const passKeys = [...keys].filter((k) => PASS_AT.test(k)).sort();
  const out: MetricSpec[] = [];
  const metric = accuracyMetric(runs);
  for (const s of METRICS) {
    if (keys.has(s.key))
      out.push(s.key === "eval_accuracy" && metric !== null ? { ...s, title: `${s.title} (${metric})` } : s);
    if (s.key === "eval_accuracy")
      for (const k of passKeys) out.push({ key: k, title: `Held-out ${k}`, higherIsBetter: true, percent: true });
  }
  return out;
}

/** What held-out accuracy counts when the runs' configs declare it (`eval.metric`): `reward "x" ≥ 1`. */
export function accuracyMetric(runs: readonly RunData[]): string | null {
  for (const r of runs) {
    const m = (r.config?.eval as { metric?: { reward?: unknown; pass?: unknown } } | undefined)?.metric;
    if (m !== undefined && m !== null)
      return `${typeof m.reward === "string" ? `reward "${m.reward}"` : "the success reward"} ≥ ${String(m.pass ?? 1)}`;
  }
  return null;
}

function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Cumulative training wall time (s) at each step of a run: step → Σ time/step_s over steps ≤ it. */
export function wallTimes(metrics: readonly MetricRow[]): Map<number, number> {
  const out = new Map<number, number>();
  let t = 0;
  for (const m of metrics) {
    const step = m.step as number;
    const dt = m["time/step_s"];
    if (step > 0 && isNum(dt)) t += dt;
    out.set(step, t);
  }
  return out;
}

/** One point of an aggregated curve. */
export interface CurvePoint {
  step: number;
  /** Mean over the seeds' cumulative wall time at this step (s). */
  wall: number;
  n: number;
  mean: number;
  std: number | null;
  min: number;
  max: number;
}

/** The curve of `key` across `runs` (one preset's seeds): statistics over the seeds that logged each step. */
export function aggregateCurve(runs: readonly RunData[], key: string): CurvePoint[] {
  const byStep = new Map<number, { vals: number[]; walls: number[] }>();
  for (const r of runs) {
    const walls = wallTimes(r.metrics);
    for (const m of r.metrics) {
      const v = m[key];
      if (!isNum(v)) continue;
      const step = m.step as number;
      let e = byStep.get(step);
      if (e === undefined) {
        e = { vals: [], walls: [] };
        byStep.set(step, e);
      }
      e.vals.push(v);
      e.walls.push(walls.get(step) ?? 0);
    }
  }
  return [...byStep.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([step, e]) => {
      const s = seedStats(e.vals) as SeedStats;
      const w = e.walls.reduce((a, b) => a + b, 0) / e.walls.length;
      return { step, wall: w, n: s.n, mean: s.mean, std: s.std, min: s.min, max: s.max };
    });
}

/** The last finite value of `key` in a run, with its step (null when never logged). */
export function finalValue(run: RunData, key: string): { step: number; value: number } | null {
  for (let i = run.metrics.length - 1; i >= 0; i--) {
    const m = run.metrics[i] as MetricRow;
    const v = m[key];
    if (isNum(v)) return { step: m.step as number, value: v };
  }
  return null;
}

/** Training wall time of a run: Σ time/step_s over its logged steps. */
export function runWallS(run: RunData): number {
  let t = 0;
  for (const m of run.metrics) if ((m.step as number) > 0 && isNum(m["time/step_s"])) t += m["time/step_s"] as number;
  return t;
}

export interface PresetGroup {
  preset: string;
  /** Every run of the preset (any status), ordered by seed. */
  runs: RunData[];
  /** Runs that logged at least one metric line (used for curves and final values). */
  withData: RunData[];
}

/** Runs grouped by preset, in first-seen order (compare.json order for a compare). */
export function groupByPreset(runs: readonly RunData[]): PresetGroup[] {
  const groups = new Map<string, RunData[]>();
  for (const r of runs) {
    const g = groups.get(r.preset) ?? [];
    g.push(r);
    groups.set(r.preset, g);
  }
  return [...groups.entries()].map(([preset, rs]) => {
    const sorted = [...rs].sort((a, b) => (a.seed ?? 0) - (b.seed ?? 0));
    return { preset, runs: sorted, withData: sorted.filter((r) => r.metrics.length > 0) };
  });
}

export interface FinalCell {
  /** Per-seed final values (seeds that logged the metric). */
  values: number[];
  stats: SeedStats | null;
  /** Only for ranked (higher/lower-is-better) metrics: */
  best?: boolean;
  withinNoise?: boolean | null;
  /** Welch p-value against the best preset (null: fewer than 2 seeds on a side; undefined for the best). */
  p?: number | null;
}

export interface FinalRow {
  preset: string;
  seeds: number[];
  finishedSeeds: number[];
  failed: { seed: number | null; error: string }[];
  stepsMin: number | null;
  stepsMax: number | null;
  plannedSteps: number | null;
  wallS: SeedStats | null;
  cells: Record<string, FinalCell>;
}

/** The metric the table is ranked by: held-out accuracy when any run evaluated, else batch reward. */
export function rankingKey(runs: readonly RunData[]): string | null {
  const present = new Set(presentMetrics(runs).map((m) => m.key));
  if (present.has("eval_accuracy")) return "eval_accuracy";
  if (present.has("reward_mean")) return "reward_mean";
  return null;
}

/** The final table: per preset, each metric's final value over seeds, with best / within-noise marks. */
export function finalTable(runs: readonly RunData[]): {
  rows: FinalRow[];
  columns: MetricSpec[];
  rankBy: string | null;
} {
  const specs = presentMetrics(runs);
  const columns = [
    ...specs.filter((s) => s.key === "eval_accuracy"),
    ...specs.filter((s) => PASS_AT.test(s.key)),
    ...TABLE_KEYS.slice(1).flatMap((k) => specs.filter((s) => s.key === k)),
  ];
  const rows: FinalRow[] = groupByPreset(runs).map((g) => {
    const cells: Record<string, FinalCell> = {};
    for (const c of columns) {
      const values = g.withData.flatMap((r) => {
        const f = finalValue(r, c.key);
        return f === null ? [] : [f.value];
      });
      cells[c.key] = { values, stats: seedStats(values) };
    }
    const steps = g.withData.map((r) => (r.metrics.at(-1)?.step as number) ?? 0);
    const planned = g.runs.map((r) => r.plannedSteps).find((s) => s !== null) ?? null;
    return {
      preset: g.preset,
      seeds: g.runs.map((r) => r.seed).filter((s): s is number => s !== null),
      finishedSeeds: g.runs.filter((r) => r.status === "finished" && r.seed !== null).map((r) => r.seed as number),
      failed: g.runs
        .filter((r) => r.status === "failed")
        .map((r) => ({ seed: r.seed, error: r.error ?? "failed (no message recorded)" })),
      stepsMin: steps.length ? Math.min(...steps) : null,
      stepsMax: steps.length ? Math.max(...steps) : null,
      plannedSteps: planned,
      wallS: seedStats(g.withData.map(runWallS)),
      cells,
    };
  });
  for (const c of columns) {
    // a mark needs something to compare with: a direction and at least two presets with values
    if (c.higherIsBetter === undefined || rows.filter((r) => r.cells[c.key]?.stats).length < 2) continue;
    const sign = c.higherIsBetter ? 1 : -1;
    let best: FinalRow | null = null;
    for (const r of rows) {
      const s = r.cells[c.key]?.stats;
      if (!s) continue;
      const bs = best?.cells[c.key]?.stats;
      if (!bs || sign * s.mean > sign * bs.mean) best = r;
    }
    for (const r of rows) {
      const cell = r.cells[c.key] as FinalCell;
      if (cell.stats === null || best === null) continue;
      if (r === best) {
        cell.best = true;
        continue;
      }
      const w = withinNoise((best.cells[c.key] as FinalCell).values, cell.values);
      cell.best = false;
      cell.withinNoise = w.within;
      cell.p = w.p;
    }
  }
  const rankBy = rankingKey(runs);
  if (rankBy !== null) {
    rows.sort((a, b) => {
      const ma = a.cells[rankBy]?.stats?.mean;
      const mb = b.cells[rankBy]?.stats?.mean;
      if (ma === undefined && mb === undefined) return 0;
      if (ma === undefined) return 1;
      if (mb === undefined) return -1;
      return mb - ma;
    });
  }
  return { rows, columns, rankBy };
}

/** One preset of summary.json. */
export interface PresetSummary {
  preset: string;
  /** Seeds of this preset's runs (all of them, whatever their status). */
  seeds: number[];
  finished_seeds: number[];
  failed: { seed: number | null; error: string }[];
  /** Last step logged (min and max over seeds) and the steps asked for. */
  steps_min: number | null;
  steps_max: number | null;
  planned_steps: number | null;
  final_eval_accuracy_mean: number | null;
  /** Sample std over seeds (null with fewer than 2 seeds). */
  final_eval_accuracy_std: number | null;
  final_eval_accuracy_values: number[];
  final_reward_mean_mean: number | null;
  final_reward_mean_std: number | null;
  /** Training wall time (Σ time/step_s) averaged over seeds. */
  wall_s_mean: number | null;
  wall_s_std: number | null;
  /** Seconds the worker processes ran (compare only; includes start-up and evaluation). */
  process_wall_s_mean: number | null;
  /** 1 = best by the ranking metric. */
  rank: number | null;
  best: boolean;
  /** Welch p ≥ 0.05 against the best preset on the ranking metric; null when a side has < 2 seeds. */
  within_noise_of_best: boolean | null;
  p_value_vs_best: number | null;
}

export interface Summary {
  source: string;
  kind: ReportSource["kind"];
  generated_at: string;
  ranked_by: string | null;
  noise_test: string;
  /** What the fields mean. */
  definitions: Record<string, string>;
  best_preset: string | null;
  budget: Record<string, number> | null;
  presets: PresetSummary[];
}

export const NOISE_RULE =
  `within noise of the best = Welch's two-sided t-test on the per-seed final values gives p ≥ ${NOISE_ALPHA}` +
  " (not decided with fewer than 2 seeds on a side)";

const DEFINITIONS: Record<string, string> = {
  final: "each run's last logged value of the metric (eval_accuracy: the last evaluation)",
  mean_std: "mean and sample standard deviation (n − 1) over the preset's seeds; std is null with one seed",
  wall_s: "training wall time of a run: Σ time/step_s (sampling + training; evaluation and start-up excluded)",
  process_wall_s: "seconds the worker processes of cohort compare ran, start-up and evaluation included",
  rank: "order by the mean of ranked_by, highest first",
};

/** summary.json: per preset, the final scores over seeds, wall time, rank and the within-noise mark. */
export function summarize(src: ReportSource, now = new Date()): Summary {
  const { rows, rankBy } = finalTable(src.runs);
  const procWall = new Map<string, number[]>();
  for (const r of src.manifest?.runs ?? []) {
    if (r.status !== "finished" || r.processWallS === undefined) continue;
    const l = procWall.get(r.preset) ?? [];
    l.push(r.processWallS);
    procWall.set(r.preset, l);
  }
  const presets = rows.map((row, i): PresetSummary => {
    const acc = row.cells.eval_accuracy;
    const rew = row.cells.reward_mean;
    const rankCell = rankBy !== null ? row.cells[rankBy] : undefined;
    const pw = seedStats(procWall.get(row.preset) ?? []);
    return {
      preset: row.preset,
      seeds: row.seeds,
      finished_seeds: row.finishedSeeds,
      failed: row.failed,
      steps_min: row.stepsMin,
      steps_max: row.stepsMax,
      planned_steps: row.plannedSteps,
      final_eval_accuracy_mean: acc?.stats?.mean ?? null,
      final_eval_accuracy_std: acc?.stats?.std ?? null,
      final_eval_accuracy_values: acc?.values ?? [],
      final_reward_mean_mean: rew?.stats?.mean ?? null,
      final_reward_mean_std: rew?.stats?.std ?? null,
      wall_s_mean: row.wallS?.mean ?? null,
      wall_s_std: row.wallS?.std ?? null,
      process_wall_s_mean: pw?.mean ?? null,
      rank: rankCell?.stats ? i + 1 : null,
      best: rankCell?.best === true,
      within_noise_of_best: rankCell?.best === true ? true : (rankCell?.withinNoise ?? null),
      p_value_vs_best: rankCell?.p ?? null,
    };
  });
  return {
    source: src.dir,
    kind: src.kind,
    generated_at: now.toISOString(),
    ranked_by: rankBy,
    noise_test: NOISE_RULE,
    definitions: DEFINITIONS,
    best_preset: presets.find((p) => p.best)?.preset ?? null,
    budget: src.manifest?.budget ?? null,
    presets,
  };
}
