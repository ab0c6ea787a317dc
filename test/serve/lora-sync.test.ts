// LoRA weight sync with the adapters only: the trainer writes lora_A/lora_B and the scale; `cohort serve`
// folds them into the base weights it started from (W₀ + scale·B·A). Folding gives the adapted model's
// log-probs; every push restarts from W₀ (no drift); bad snapshots change nothing; a LoRA training run
// against a real server samples the trained policy while pushing a fraction of the weights.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { readSafetensors } from "../../src/io/safetensors.js";
import { packBatch } from "../../src/model/batch.js";
import type { CausalLM } from "../../src/model/llama.js";
import { applyLora } from "../../src/model/lora.js";
import { adapterScaleOf, clearAdapterBase, foldAdapters, writeAdapterSnapshot } from "../../src/serve/adapters.js";
import { readReloadWeights } from "../../src/serve/load.js";
import { dispose, liveTensors, noGrad, type Tensor, tidy } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { copyOf, maxAbsDiff, randomModel, SAMPLE_COMPLETIONS, SAMPLE_PROMPTS, smallConfig } from "../model/helpers.js";
import { tmpRunRoot } from "../train/helpers.js";
import { http, startServe } from "./helpers.js";

const lpOf = (m: CausalLM) =>
  noGrad(() => tidy(() => m.logprobs(packBatch(SAMPLE_PROMPTS, SAMPLE_COMPLETIONS, { padId: 0 })).lp.toArray()));
const weightsOf = (m: CausalLM) => tidy(() => m.namedParameters().map(([, t]) => t.toArray()));

test("folded adapters give the adapted model's log-probs; each push restarts from W0; bad snapshots change nothing", () => {
  const before = liveTensors();
  const trained = randomModel(smallConfig(), 31);
  const served = copyOf(trained, {});
  const w0 = weightsOf(served);
  const lora = applyLora(trained, { rank: 2, alpha: 6, targets: ["q", "v", "down"], seed: 4 });
  const base = new Map<string, Tensor>();
  const file = join(mkdtempSync(join(tmpdir(), "cohort-adapters-")), "adapters.safetensors");
  try {
    for (const round of [1, 2, 3]) {
      tidy(() => {
        for (const p of lora.parameters()) p.copy_(p.add(0.03 * round)); // new adapters each round
      });
      writeAdapterSnapshot(file, lora);
      const r = readReloadWeights(file);
      assert.equal(r.adapterScale, 3);
      foldAdapters(served, base, r.tensors, r.adapterScale as number, file);
      dispose(r.tensors);
      const d = maxAbsDiff(lpOf(served), lpOf(trained));
      assert.ok(d < 1e-5, `round ${round}: served vs trained log-probs ${d}`);
    }
    assert.equal(base.size, 2 * 3, "W0 kept for q, v and down of both layers");
    // a snapshot that adapts fewer projections puts the others back to W0
    const { tensors } = readSafetensors(file);
    const qOnly = Object.fromEntries(Object.entries(tensors).filter(([k]) => k.includes("q_proj")));
    foldAdapters(served, base, qOnly, 3, file);
    const names = served.namedParameters().map(([n]) => n);
    weightsOf(served).forEach((w, i) => {
      const n = names[i] as string;
      if (n.includes("v_proj") || n.includes("down_proj")) assert.deepEqual(w, w0[i], `${n} back to W0`);
    });
    // bad snapshots: the error names the problem and no weight moves
    const now = weightsOf(served);
    const aKey = Object.keys(qOnly).find((k) => k.endsWith("lora_A.weight")) as string;
    const bad: [Record<string, Tensor>, RegExp][] = [
      [{ [aKey]: qOnly[aKey] as Tensor }, /has no lora_B partner/],
      [
        { ...qOnly, "model.layers.0.self_attn.x_proj.lora_A.weight": qOnly[aKey] as Tensor },
        /no lora_B partner|no weight/,
      ],
      [{ ...qOnly, "model.norm.weight": qOnly[aKey] as Tensor }, /not an adapter tensor/],
      [
        {
          [aKey]: qOnly[aKey.replace("lora_A", "lora_B")] as Tensor,
          [aKey.replace("lora_A", "lora_B")]: qOnly[aKey] as Tensor,
        },
        /shapes A/,
      ],
    ];
    for (const [t, re] of bad) assert.throws(() => foldAdapters(served, base, t, 3, file), re);
    assert.deepEqual(weightsOf(served), now);
    assert.throws(() => adapterScaleOf({ "cohort.lora_scale": "x" }, file), /not a number/);
    dispose(Object.values(tensors));
  } finally {
    clearAdapterBase(base);
    lora.detach();
    trained.dispose();
    served.dispose();
  }
  assert.equal(liveTensors(), before, "no tensor outlives the test");
});

test("a LoRA run against cohort serve pushes only the adapters and samples the trained policy", async () => {
  const model = resolve("models/arithmetic-tiny");
  const root = tmpRunRoot();
  const srv = await startServe(model, ["--weights-dir", root]);
  try {
    const r = await train(
      parseTrainConfig({
        name: "lora-sync",
        outputDir: root,
        seed: 1,
        threads: 1,
        model: { path: model, lora: { rank: 4, alpha: 8, targets: ["q", "v"] } },
        task: { name: "arithmetic", options: { ops: { add: 1, sub: 1 }, digits: [1, 2] } },
        train: { steps: 3, promptsPerStep: 3, groupSize: 4, lr: 3e-3 },
        sampling: { maxNewTokens: 24 },
        eval: { everySteps: 0 },
        checkpoint: { everySteps: 0 },
        sampler: { kind: "openai", baseUrl: `${srv.url}/v1`, model: "arithmetic-tiny", syncWeights: true },
      }),
      { log: () => {} },
    );
    assert.ok(r.metrics.some((m) => (m.grad_norm as number) > 0));
    for (const m of r.metrics) {
      const d = m["sampler/logprob_abs_diff_mean"] as number;
      assert.ok(d < 1e-4, `step ${m.step}: the server folded the trained adapters, yet |Δ| = ${d}`);
    }
    assert.equal((await http(`${srv.url}/health`, "GET")).json().weightsVersion, 3);
    const adapters = join(r.runDir, "sync", "adapters.safetensors");
    assert.ok(existsSync(adapters));
    assert.ok(!existsSync(join(r.runDir, "sync", "model.safetensors")), "no full-weight snapshot");
    const ratio = statSync(adapters).size / statSync(join(model, "model.safetensors")).size;
    assert.ok(ratio < 0.2, `the adapter snapshot is ${(100 * ratio).toFixed(1)}% of the weights`);
  } finally {
    await srv.stop();
  }
});
