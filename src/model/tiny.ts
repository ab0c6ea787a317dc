/**
 * The tiny char-level Llama that Cohort's shipped models start from, and the optimizer of supervised
 * pre-training (task SFT in src/train/pretrain.ts, scripted-episode SFT in src/env/sft.ts).
 * @module
 */
import { AdamW, type ScheduleOptions } from "../tensor/index.js";
import type { CharTokenizer } from "../tokenizer/char.js";
import { type ModelConfig, modelConfig } from "./config.js";
import { CausalLM } from "./llama.js";

export interface SftRunOptions {
  out: string;
  seed?: number;
  maxSteps?: number;
  batchSize?: number;
  lr?: number;
  warmupSteps?: number;
  evalEvery?: number;
  evalProblems?: number;
  /** Stop once greedy held-out accuracy (success rate) reaches this (0–1); 1 trains for maxSteps. */
  targetAccuracy?: number;
  hiddenSize?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediateSize?: number;
  /** The command line that produced the checkpoint, recorded next to it. */
  command?: string;
  log?: (line: string) => void;
}

/** The tiny char-level Llama both pre-training paths start from (d 128, 4 layers, 4 heads, 2 KV, MLP 384, tied). */
export function tinyCharModel(
  o: SftRunOptions,
  tok: CharTokenizer,
  maxPositions: number,
  seed: number,
): { cfg: ModelConfig; model: CausalLM } {
  const cfg = modelConfig({
    vocabSize: tok.vocabSize,
    hiddenSize: o.hiddenSize ?? 128,
    intermediateSize: o.intermediateSize ?? 384,
    numHiddenLayers: o.layers ?? 4,
    numAttentionHeads: o.heads ?? 4,
    numKeyValueHeads: o.kvHeads ?? 2,
    maxPositionEmbeddings: maxPositions,
    tieWordEmbeddings: true,
    bosTokenId: tok.bosId,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  });
  return { cfg, model: new CausalLM(cfg, { seed }) };
}

/** AdamW (β 0.9/0.98, weight decay 0.01) with a cosine schedule to 10% after `warmupSteps` (default given). */
export function sftOptimizer(
  model: CausalLM,
  o: SftRunOptions,
  maxSteps: number,
  defaultWarmup: number,
): { opt: AdamW; schedule: ScheduleOptions } {
  const lr = o.lr ?? 3e-3;
  const opt = new AdamW(model.parameters(), { lr, betas: [0.9, 0.98], weightDecay: 0.01 });
  const schedule: ScheduleOptions = {
    kind: "cosine",
    lr,
    warmupSteps: o.warmupSteps ?? defaultWarmup,
    totalSteps: maxSteps,
    minLrRatio: 0.1,
  };
  return { opt, schedule };
}
