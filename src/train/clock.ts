/**
 * Elapsed time, ETA and throughput for progress lines (`cohort train`, `cohort pretrain`, `cohort compare`).
 * @module
 */

/** Seconds as `42s`, `3m05s` or `1h02m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A rate as `850 tok/s`, `12.3k tok/s`. */
export function formatRate(perSecond: number, unit = "tok/s"): string {
  if (!Number.isFinite(perSecond) || perSecond < 0) return `– ${unit}`;
  return perSecond >= 10_000 ? `${(perSecond / 1000).toFixed(1)}k ${unit}` : `${Math.round(perSecond)} ${unit}`;
}

/**
 * Progress of `total` units of work timed from `t0`: elapsed time, and an ETA from the mean time per unit done
 * since the first update (a resumed run counts from where it resumed; the first unit carries the start-up).
 */
export class Progress {
  readonly #t0: number;
  #base: number | null = null;
  #done = 0;
  #now: number;

  /** `done`: units already finished at `t0` (a resumed run), when known; else the first update's minus one. */
  constructor(
    readonly total: number,
    t0 = performance.now(),
    done?: number,
  ) {
    this.#t0 = t0;
    this.#now = t0;
    if (done !== undefined) {
      this.#base = done;
      this.#done = done;
    }
  }

  /** Records that `done` units are finished (at `nowMs`). */
  update(done: number, nowMs = performance.now()): void {
    this.#base ??= Math.max(0, done - 1);
    this.#done = done;
    this.#now = nowMs;
  }

  get done(): number {
    return this.#done;
  }

  get elapsedS(): number {
    return (this.#now - this.#t0) / 1000;
  }

  /** Seconds left at the mean pace so far (NaN before the first unit). */
  get etaS(): number {
    const units = this.#done - (this.#base ?? this.#done);
    if (units <= 0) return Number.NaN;
    return (this.elapsedS / units) * Math.max(0, this.total - this.#done);
  }

  /** `elapsed 1m05s, ETA 3m10s` */
  text(): string {
    return `elapsed ${formatDuration(this.elapsedS)}, ETA ${formatDuration(this.etaS)}`;
  }
}
