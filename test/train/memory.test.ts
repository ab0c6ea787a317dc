// mem/peak_rss_gb: the process's peak resident memory over each training step.
import assert from "node:assert/strict";
import { test } from "node:test";
import { zeros } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { PeakRssMeter } from "../../src/train/memory.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

const GIB = 2 ** 30;

test("the peak over a span sees a big tensor that was freed before the span ended, and the next span does not", () => {
  const meter = new PeakRssMeter();
  meter.begin();
  const quiet = meter.end();
  meter.begin();
  const big = zeros([96 * 1024 * 1024]); // 384 MiB, written (zero-filled) so every page is resident
  big.dispose();
  const loud = meter.end();
  assert.ok(
    loud.gb - quiet.gb > 0.3,
    `peak ${loud.gb.toFixed(3)} GiB vs ${quiet.gb.toFixed(3)} GiB without the tensor`,
  );
  if (loud.scope === "span") {
    // the high-water mark was reset: a span without the tensor reports less again
    meter.begin();
    const after = meter.end();
    assert.ok(loud.gb - after.gb > 0.3, `the reset did not lower the peak (${after.gb} vs ${loud.gb} GiB)`);
  }
});

test("every step's metrics carry mem/peak_rss_gb; the last step's lies under the process peak", async () => {
  const cfg = parseTrainConfig({
    name: "mem",
    outputDir: tmpRunRoot(),
    seed: 1,
    threads: 1,
    model: { path: tinyModelDir() },
    task: { name: "arithmetic", options: { ops: { add: 1 }, digits: [1, 1] } },
    train: { steps: 2, promptsPerStep: 2, groupSize: 2 },
    sampling: { maxNewTokens: 4 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg);
  assert.equal(r.metrics.length, 2);
  // ru_maxrss is max(the high-water mark now, …); every step resets the mark, so only the last step's peak is
  // certain to lie under it (an earlier step's may have been higher than anything after its reset)
  const now = (process.resourceUsage().maxRSS * 1024) / GIB;
  for (const m of r.metrics) {
    const gb = m["mem/peak_rss_gb"];
    assert.equal(typeof gb, "number");
    assert.ok((gb as number) > 0.01, `peak ${gb} GiB`);
  }
  // the kernel batches each thread's RSS counter updates (64 page events a thread), so the two readings can
  // differ by a few pages a thread: 8 MiB of slack
  const last = r.metrics.at(-1)?.["mem/peak_rss_gb"] as number;
  assert.ok(last <= now + 8 / 1024, `the last step's peak ${last} GiB is above the process's ${now} GiB`);
});
