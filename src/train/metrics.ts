/**
 * The run's metric log: one JSON object per line in `<run>/metrics.jsonl` (and sample completions in
 * `samples.jsonl`). Lines are appended and flushed at each step; on resume, lines past the checkpoint's
 * step are dropped so the log reads as one uninterrupted run.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";
import { appendLines } from "./rundir.js";

export type MetricRecord = Record<string, number | string | null | boolean>;

export class MetricsLog {
  constructor(readonly path: string) {}

  /** Appends one record; a failed write (a full disk) is a CohortError naming the file. */
  append(record: MetricRecord): void {
    appendLines(this.path, [JSON.stringify(record)]);
  }

  /** All records so far. */
  read(): MetricRecord[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as MetricRecord];
        } catch {
          return []; // a line cut by a crash mid-write
        }
      });
  }

  /** Keeps only records with `step <= step` (rewritten atomically). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = this.read().filter((r) => typeof r.step === "number" && r.step <= step);
    writeFileAtomic(this.path, kept.map((r) => `${JSON.stringify(r)}\n`).join(""));
  }
}

/** Mean, std (population), min, max of a list; zeros for an empty list. */
export function stats(xs: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  const n = xs.length;
  if (n === 0) return { mean: 0, std: 0, min: 0, max: 0 };
  let s = 0;
  let mn = Number.POSITIVE_INFINITY;
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const x = xs[i] as number;
    s += x;
    mn = Math.min(mn, x);
    mx = Math.max(mx, x);
  }
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += ((xs[i] as number) - mean) ** 2;
  return { mean, std: Math.sqrt(v / n), min: mn, max: mx };
}
