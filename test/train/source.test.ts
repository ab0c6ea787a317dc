// A rollout source defined here, outside the library, plugs into the training loop without editing it: the loop
// asks it for each step's scored rollouts, logs its metrics and checkpoints its state.
import assert from "node:assert/strict";
import { test } from "node:test";
import { latestCheckpoint, readCheckpointState } from "../../src/train/checkpoint.js";
import { parseTrainConfig } from "../../src/train/config.js";
import type { Run } from "../../src/train/context.js";
import type { Collected, RolloutSource } from "../../src/train/sources.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

/** Two fixed prompts, 4 completions each from the run's own sampler; reward: 1 for an even-length completion. */
function evenLengthSource(run: Run, calls: number[]): RolloutSource {
  let drawn = 0;
  return {
    async collect(step): Promise<Collected> {
      calls.push(step);
      const prompts = ["1+1=", "2+2="].flatMap((p) =>
        Array.from({ length: 4 }, () => [run.tok.bosId as number, ...run.tok.encode(p)]),
      );
      const completions = run.sampler.generateSync(prompts, {
        maxTokens: 5,
        temperature: 1,
        stopTokenIds: run.stopIds,
        seed: prompts.map((_, i) => 1000 * step + i),
      });
      drawn += completions.length;
      const reward = Float64Array.from(completions, (c) => (c.tokens.length % 2 === 0 ? 1 : 0));
      return {
        ro: {
          prompts,
          completions,
          texts: completions.map((c) => run.tok.decode(c.tokens)),
          problems: prompts.map((_, i) => ({ id: `p${i >> 2}`, prompt: "", answer: "", meta: {} })),
          groupIndex: Int32Array.from(prompts, (_, i) => i >> 2),
        },
        byFn: [reward],
        failures: 0,
        sampledTokens: completions.reduce((a, c) => a + c.tokens.length, 0),
        samplingMs: 0,
        metrics: { "custom/drawn": drawn },
      };
    },
    state: () => ({ drawn }),
    load: (s) => {
      drawn = s.drawn as number;
    },
  };
}

test("a rollout source defined in a test file trains through the unchanged loop", async () => {
  const calls: number[] = [];
  const cfg = parseTrainConfig({
    model: { path: tinyModelDir(8) },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    rewards: ["correctness"],
    algo: { regularizers: [] },
    train: { steps: 3, promptsPerStep: 2, groupSize: 4, lr: 0.01 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 1 },
  });
  const r = await train(cfg, { log: () => {}, source: (run) => evenLengthSource(run, calls) });
  assert.deepEqual(calls, [1, 2, 3]);
  const steps = r.metrics.filter((m) => (m.step as number) > 0);
  assert.deepEqual(
    steps.map((m) => m["custom/drawn"]),
    [8, 16, 24],
    "the source's metrics reach metrics.jsonl",
  );
  assert.ok(
    steps.some((m) => (m.grad_norm as number) > 0),
    "its rewards train the policy",
  );
  assert.equal(readCheckpointState(latestCheckpoint(r.runDir) as string).drawn, 24, "its state is checkpointed");
});
