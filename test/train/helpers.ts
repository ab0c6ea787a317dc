// Shared set-up for trainer tests: a small random-weight char model saved as a model directory.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeModelDir } from "../../src/io/hf.js";
import { configToHF, modelConfig } from "../../src/model/config.js";
import { CausalLM } from "../../src/model/llama.js";
import { liveTensors } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import type { TrainConfig } from "../../src/train/config.js";
import { type TrainResult, train } from "../../src/train/trainer.js";

export function tinyModelDir(seed = 0): string {
  const dir = mkdtempSync(join(tmpdir(), "cohort-model-"));
  const tok = new CharTokenizer();
  const cfg = modelConfig({
    vocabSize: tok.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 64,
    tieWordEmbeddings: true,
    bosTokenId: tok.bosId,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  });
  const m = new CausalLM(cfg, { seed, initStd: 0.1 });
  writeModelDir(dir, { config: configToHF(cfg), tensors: m.state().tensors, tokenizerFiles: tok.toFiles() });
  m.dispose();
  return dir;
}

export function tmpRunRoot(): string {
  return mkdtempSync(join(tmpdir(), "cohort-runs-"));
}

/** Metrics without the wall-clock and memory fields, for comparing runs. */
export function deterministicPart(m: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(m).filter(
      ([k]) => !k.startsWith("time/") && !k.startsWith("tokens_per_s/") && !k.startsWith("mem/"),
    ),
  );
}

/** `train(cfg)` quietly, asserting that no tensor outlives the run. */
export async function trainLeakFree(cfg: TrainConfig): Promise<TrainResult> {
  const before = liveTensors();
  const r = await train(cfg, { log: () => {} });
  assert.equal(liveTensors(), before, "no tensor outlives the run");
  return r;
}
