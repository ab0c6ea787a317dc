// sampler.overlap with data parallelism: `cohort train --nproc 2` with overlap 1 against a stand-in worker whose
// completions depend only on the request follows the trajectory of one process with overlap 0 (the ranks' rollout
// batches run ahead of their updates without touching the collectives).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { assertSameTrajectory, cohort } from "../parallel/helpers.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";
import { startStandIn } from "./standin.js";

test("--nproc 2 with overlap 1 follows the trajectory of one process with overlap 0", async () => {
  const standIn = await startStandIn();
  try {
    const root = tmpRunRoot();
    const model = tinyModelDir(3);
    const write = (name: string, overlap: number) => {
      const file = join(root, `${name}.json`);
      const cfg = {
        name,
        outputDir: root,
        seed: 7,
        model: { path: model },
        task: { name: "arithmetic", options: { digits: [1, 1] } },
        rewards: [`${resolve("test/fixtures/rewards/parity.ts")}#parity`, "correctness"],
        train: { steps: 3, promptsPerStep: 4, groupSize: 4, microBatchSize: 4, lr: 0.003 },
        sampling: { maxNewTokens: 6 },
        eval: { everySteps: 0 },
        checkpoint: { everySteps: 0 },
        sampler: { kind: "openai", model: "stand-in", baseUrls: [`${standIn.url}/v1`], overlap },
      };
      writeFileSync(file, JSON.stringify(cfg));
      return file;
    };
    const one = await train(loadTrainConfig(write("one", 0)), { log: () => {} });
    const run = cohort([write("two", 1), "--nproc", "2", "--quiet"]);
    const { code } = await run.exited;
    assert.equal(code, 0, run.out.stderr);
    const two = new MetricsLog(join(root, "two", "metrics.jsonl")).read();
    assert.deepEqual(
      two.map((m) => m["rollout/prefetched"]),
      [0, 1, 1],
    );
    assert.ok(
      one.metrics.some((m) => (m.grad_norm as number) > 1e-3),
      "the run learns",
    );
    const core = (ms: typeof two) =>
      ms.map((m) =>
        Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("pool/") && !k.startsWith("rollout/"))),
      );
    assertSameTrajectory(core(two), core(one.metrics), 1e-5, "2 ranks with overlap 1 vs 1 process with overlap 0");
  } finally {
    await standIn.stop();
  }
});
