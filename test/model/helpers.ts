// Shared fixtures of the model tests: small configs and weights randomised beyond the default init
// (non-trivial norms and biases, so every term of the equations is exercised).

import { type ModelConfig, modelConfig } from "../../src/model/config.js";
import { CausalLM, type ModelOptions } from "../../src/model/llama.js";
import { Generator, randn, tidy } from "../../src/tensor/index.js";

export function smallConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({
    modelType: "qwen2",
    vocabSize: 61,
    hiddenSize: 32,
    intermediateSize: 48,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    ropeTheta: 5000,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: false,
    ...over,
  });
}

/** A model whose every weight (norms and biases included) is random, from `seed`. */
export function randomModel(config: ModelConfig, seed = 7): CausalLM {
  const m = new CausalLM(config, { seed });
  const g = new Generator(seed + 1000);
  tidy(() => {
    for (const [name, p] of m.namedParameters()) {
      const r = randn(p.shape, { generator: g });
      if (name.endsWith("norm.weight")) p.copy_(r.mul(0.2).add(1));
      else p.copy_(r.mul(name.includes("embed") ? 1 : 0.25));
    }
  });
  return m;
}

export function maxAbsDiff(a: number[], b: number[]): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Prompts of 3 rows (rows 0 and 2 share theirs) and completions of unequal length, for batch-shape tests. */
export const SAMPLE_PROMPTS = [
  [3, 14, 15],
  [8, 9],
  [3, 14, 15],
];
export const SAMPLE_COMPLETIONS = [
  [9, 26, 5, 35],
  [7, 9],
  [2, 6, 1],
];

/** `m`'s weights in a new model with other placement options (device, precision). */
export function copyOf(m: CausalLM, place: Pick<ModelOptions, "device" | "precision">): CausalLM {
  const st = m.state();
  return CausalLM.fromHF(st.meta.config as Record<string, unknown>, st.tensors, place);
}
