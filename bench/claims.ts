/**
 * The claim line every method-vs-baseline bench prints (one JSON object per comparison):
 * `{bench, method, metric, ours, baseline, baseline_method, seeds, claim_holds, p?, within_noise?, …fields,
 * ours_per_seed, baseline_per_seed}` — `ours`/`baseline` are means over seeds, `p` Welch's two-sided test,
 * `claim_holds` the direction of the paper's claim (ours ≥ baseline, or ≤ where lower is better) unless given.
 */
import { NOISE_ALPHA, welchTTest } from "../src/report/stats.js";

export const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
export const round = (x: number, d = 4) => Number(x.toFixed(d));

export interface Claim {
  bench: string;
  method: string;
  metric: string;
  ours: readonly number[];
  base: readonly number[];
  baselineMethod: string;
  /** Direction of the claim (default true: higher is better). */
  higherIsBetter?: boolean;
  /** The verdict, when it is not the direction of the means. */
  holds?: boolean;
  /** Add `within_noise` (p ≥ NOISE_ALPHA). */
  noiseFlag?: boolean;
  fields?: object;
}

/** Prints the claim's JSON line and returns it. */
export function claimLine(c: Claim): Record<string, unknown> {
  const w = welchTTest([...c.ours], [...c.base]);
  const up = c.higherIsBetter ?? true;
  const holds = c.holds ?? (up ? mean(c.ours) >= mean(c.base) : mean(c.ours) <= mean(c.base));
  const line = {
    bench: c.bench,
    method: c.method,
    metric: c.metric,
    ours: round(mean(c.ours)),
    baseline: round(mean(c.base)),
    baseline_method: c.baselineMethod,
    seeds: c.ours.length,
    claim_holds: holds,
    ...(w ? { p: round(w.p), ...(c.noiseFlag ? { within_noise: w.p >= NOISE_ALPHA } : {}) } : {}),
    ours_per_seed: c.ours.map((x) => round(x)),
    baseline_per_seed: c.base.map((x) => round(x)),
    ...c.fields,
  };
  console.log(JSON.stringify(line));
  return line;
}

/**
 * Prints a bench's last line: `{…head, summary: true, comparisons, claim_holds, claim_fails, …tail}` over the
 * claim lines it printed (`claimLine`'s results).
 */
export function claimSummary(
  head: Record<string, unknown>,
  lines: readonly Record<string, unknown>[],
  tail: Record<string, unknown> = {},
): void {
  const held = lines.filter((l) => l.claim_holds).length;
  console.log(
    JSON.stringify({
      ...head,
      summary: true,
      comparisons: lines.length,
      claim_holds: held,
      claim_fails: lines.length - held,
      ...tail,
    }),
  );
}
