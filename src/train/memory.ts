/**
 * Peak resident memory (RSS) of this process over a span of work, for the per-step metric
 * `mem/peak_rss_gb` (GiB).
 *
 *   begin():  write "5" to /proc/self/clear_refs — Linux resets the process's RSS high-water mark (VmHWM)
 *             to its current RSS (proc(5), since Linux 4.0)
 *   end():    VmHWM of /proc/self/status: the largest RSS since begin()
 *
 * Where the reset is not allowed or /proc is missing (macOS, some sandboxes) the figure falls back to
 * `process.resourceUsage().maxRSS`, the peak since the process started; `scope` says which one it is.
 * Native tensor memory counts (it is resident memory of the process), which is the point: the JS heap
 * statistics do not see it.
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";

export interface PeakRss {
  /** Peak RSS in GiB. */
  gb: number;
  /** `span`: since the last `begin()`; `process`: since the process started (the reset was not possible). */
  scope: "span" | "process";
}

export class PeakRssMeter {
  #reset = false;

  /** Starts a span: resets the kernel's high-water mark when allowed. */
  begin(): void {
    try {
      writeFileSync("/proc/self/clear_refs", "5");
      this.#reset = true;
    } catch {
      this.#reset = false;
    }
  }

  /** The peak since `begin()` (or since the process started, when the reset was not possible). */
  end(): PeakRss {
    if (this.#reset) {
      const kb = vmHwmKb();
      if (kb !== null) return { gb: (kb * 1024) / 2 ** 30, scope: "span" };
    }
    return { gb: (process.resourceUsage().maxRSS * 1024) / 2 ** 30, scope: "process" };
  }
}

/** VmHWM of /proc/self/status in kB, or null where there is no such file. */
function vmHwmKb(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
