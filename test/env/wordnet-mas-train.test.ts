// MasHost HRPO through the real trainer on the system-construction environment (wordnet_mas): a few steps with
// finite losses, the step rewards (component rationality) change the update (λ = 0 differs), the agent
// presets run on the role ids, and a run resumes exactly from its checkpoint.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot, trainLeakFree } from "../train/helpers.js";

const model = tinyModelDir(3);
// the shipped starting model (models/wordnet-mas-tiny/PRETRAIN.md): its systems differ in outcome and structure
const shipped = fileURLToPath(new URL("../../models/wordnet-mas-tiny", import.meta.url));
const quiet = () => {};

function config(preset: string, extra: Record<string, unknown> = {}, root = tmpRunRoot()) {
  return parseTrainConfig({
    preset,
    seed: 1,
    model: { path: model },
    outputDir: root,
    env: { name: "wordnet_mas", options: { hops: [1, 2] }, maxTurns: 3, maxActionTokens: 6 },
    train: { steps: 2, promptsPerStep: 2, groupSize: 4, microBatchSize: 8 },
    sampling: { temperature: 1.5 },
    eval: { everySteps: 2, problems: 4 },
    checkpoint: { everySteps: 1 },
    ...extra,
  });
}

async function run(cfg: ReturnType<typeof config>): Promise<MetricRecord[]> {
  const r = await trainLeakFree(cfg);
  return r.metrics;
}

const steps = (ms: MetricRecord[]) => ms.filter((m) => typeof m.loss === "number");

for (const preset of ["mashost_hrpo", "grpo", "dr_mas"]) {
  test(`${preset} trains on wordnet_mas`, async () => {
    const ms = steps(await run(config(preset)));
    assert.equal(ms.length, 2);
    for (const m of ms) {
      assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.grad_norm as number), JSON.stringify(m));
      assert.ok((m["env/turns_mean"] as number) >= 1 && (m["env/turns_mean"] as number) <= 3);
      // the random model writes malformed actions: every one is −w, so the return is negative
      assert.ok((m["env/return_mean"] as number) < 0, String(m["env/return_mean"]));
    }
  });
}

const fromShipped = { model: { path: shipped }, env: { name: "wordnet_mas", options: { hops: [1, 2] } } };

test("mashost_hrpo uses the step rewards: λ = 0 gives another update", async () => {
  const a = steps(await run(config("mashost_hrpo", fromShipped)));
  const b = steps(
    await run(config("mashost_hrpo", { ...fromShipped, algo: { advantage: { options: { lambda: 0 } } } })),
  );
  assert.equal(a[0]?.["env/return_mean"], b[0]?.["env/return_mean"], "same episodes at step 1");
  assert.notEqual(a[0]?.loss, b[0]?.loss);
  assert.ok((a[0]?.grad_norm as number) > 0);
});

test("resume from a checkpoint continues exactly", async () => {
  const root = tmpRunRoot();
  const full = await run(config("mashost_hrpo", { ...fromShipped, name: "full" }, root));
  const cfg = config("mashost_hrpo", { ...fromShipped, name: "cut" }, root);
  await train(cfg, { log: quiet, stopAfterStep: 1 });
  const resumed = await train(cfg, { log: quiet, resume: true });
  const a = full.filter((m) => m.step === 2).map(deterministicPart);
  const b = resumed.metrics.filter((m) => m.step === 2).map(deterministicPart);
  assert.ok(a.length > 0);
  assert.ok((a[0]?.grad_norm as number) > 0, "the resumed step really updates");
  assert.deepEqual(b, a);
});

test("examples/mashost/wordnet_mas.yaml trains one step from the shipped model", async () => {
  const file = fileURLToPath(new URL("../../examples/mashost/wordnet_mas.yaml", import.meta.url));
  const cfg = loadTrainConfig(file, [
    `outputDir=${tmpRunRoot()}`,
    "train.steps=1",
    "train.promptsPerStep=2",
    "train.groupSize=3",
    "eval.everySteps=1",
    "eval.problems=4",
    "checkpoint.everySteps=1",
  ]);
  assert.equal(cfg.preset, "mashost_hrpo");
  const ms = steps(await run(cfg));
  assert.equal(ms.length, 1);
  assert.ok(Number.isFinite(ms[0]?.loss as number));
});
