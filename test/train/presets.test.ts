// Every preset trains end to end through the real trainer: a step runs, gradients flow, nothing leaks.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { advantageEstimators } from "../../src/algo/advantage.js";
import { getPreset, presetNames } from "../../src/presets/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { tinyModelDir, tmpRunRoot, trainLeakFree } from "./helpers.js";

const model = tinyModelDir(5);

/** Groups of 4, or twice what the estimator needs at least (pass@k: k + 1), so that the signal is likely. */
function minGroupSize(preset: string): number {
  const a = getPreset(preset).config.advantage ?? {};
  const def = advantageEstimators.get(a.estimator ?? "grpo");
  const min = def.minGroupSize?.(def.params.parse(a.options ?? {})) ?? 0;
  return Math.max(4, 2 * (min - 1));
}
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;
/** Presets whose data must carry extra structure the arithmetic task does not have. */
const NEEDS_RANKED_DATA = new Set(["rank_grpo"]);

for (const preset of presetNames()) {
  test(`preset ${preset} trains a step`, async () => {
    const raw = {
      preset,
      model: { path: model },
      outputDir: tmpRunRoot(),
      task: { name: "arithmetic", options: { digits: [1, 1] } },
      // a preset with one weight per reward function (safe_gdpo: task, safety) gets that many functions
      rewards: getPreset(preset).config.reward?.weights ? [parity, "correctness"] : ["correctness", "format", parity],
      // groups of 4, or as large as the estimator needs (pass@k: k + 1)
      train: { steps: 2, promptsPerStep: 3, groupSize: minGroupSize(preset), microBatchSize: 8 },
      sampling: { maxNewTokens: 6 },
      eval: { everySteps: 0 },
      checkpoint: { everySteps: 0 },
    };
    if (!(getPreset(preset).policies ?? ["language"]).includes("language")) {
      // control-only presets (a learned critic, a control environment's episodes) are refused for a language
      // model at config time
      assert.throws(() => parseTrainConfig(raw), /applies to control policies .*this run trains a language model/);
      return;
    }
    if (NEEDS_RANKED_DATA.has(preset)) {
      // refused when the config is checked, before any model is loaded
      assert.throws(
        () => parseTrainConfig(raw),
        /algo\.advantage\.estimator: "rank_grpo" needs the reward of every rank position .*need "rankRewards"/,
      );
      return;
    }
    // hop-grouped baselines group rows by a prompt field: the arithmetic problems' operation stands in for the hop count
    const cfg = parseTrainConfig(
      getPreset(preset).config.advantage?.estimator === "hop_grouped"
        ? { ...raw, algo: { advantage: { options: { field: "op" } } } }
        : raw,
    );
    const r = await trainLeakFree(cfg);
    assert.equal(r.steps, 2);
    for (const m of r.metrics.slice(1)) {
      assert.ok(Number.isFinite(m.loss as number), `loss ${m.loss}`);
      assert.ok(Number.isFinite(m.grad_norm as number), `grad_norm ${m.grad_norm}`);
      assert.equal(m.skipped_updates, 0);
    }
    // entropy-filtered (GTPO drops completions above 0.7 nats; a random model is far above) and
    // min-of-rewards (mostly 0 here) runs may see no signal; every other preset gets a gradient
    if (!["gtpo", "rm_ensemble_wco"].includes(preset)) {
      assert.ok(
        r.metrics.some((m) => (m.grad_norm as number) > 0),
        "a gradient reached the weights",
      );
    }
  });
}
