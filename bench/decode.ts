/**
 * `npm run bench:decode`: samples 64 sequences × 128 new tokens (prompts of 16 tokens, temperature 1, no
 * stop tokens) from the small Llama-style GPT (4 layers, d_model 256, 4 heads, MLP 1024, vocab 512, fp32)
 * through Cohort's LocalSampler and through a PyTorch KV-cache loop (bench/peers/decode_peer.py, run with
 * /usr/bin/python3) on the same weights and prompts, in the same run. Each side runs in its own process
 * at each of its thread settings (OpenBLAS threads are fixed at library load), interleaved with the other
 * side, then twice more at its best setting; each side's fastest run is kept.
 * Throughput counts every sampled token over prefill + decoding. Last line: JSON with ratio = ours/peer
 * (higher is better). `BENCH_DEVICE=cuda` puts both models on the GPU (both sample there); `BENCH_PRECISION=bf16` runs ours in bf16.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.js";
import { configToHF, modelConfig } from "../src/model/config.js";
import { CausalLM } from "../src/model/llama.js";
import { LocalSampler } from "../src/model/sampler.js";
import { type Device, dispose, getNumThreads, setNumThreads, torchVersion } from "../src/tensor/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 64;
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS ?? 128);
const PROMPT_LEN = 16;
const SEED = 1234;
const DEVICE = (process.env.BENCH_DEVICE ?? "cpu") as Device;
const PRECISION = process.env.BENCH_PRECISION === "bf16" ? "bf16" : "fp32";

const config = modelConfig({
  modelType: "llama",
  vocabSize: 512,
  hiddenSize: 256,
  intermediateSize: 1024,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 4,
  maxPositionEmbeddings: 1024,
  tieWordEmbeddings: false,
  eosTokenId: null,
});

interface Result {
  tok_s: number;
  seconds: number;
  cpu_seconds: number;
  mean_logprob: number;
  tokens: number;
  threads: number;
  env: Record<string, string>;
}

/** Worker: loads the weights, warms up, times one generate() of the whole batch. */
function worker(dir: string, threads: number): void {
  setNumThreads(threads);
  const model = new CausalLM(config, { device: DEVICE, precision: PRECISION });
  const { tensors } = readSafetensors(join(dir, "model.safetensors"));
  model.load({ tensors, meta: {} });
  dispose(tensors);
  const prompts = JSON.parse(readFileSync(join(dir, "prompts.json"), "utf8")) as number[][];
  const sampler = new LocalSampler(model, { maxBatch: BATCH });
  sampler.generateSync(prompts.slice(0, 8), { maxTokens: 16, seed: 0 }); // warm-up
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const out = sampler.generateSync(prompts, { maxTokens: NEW_TOKENS, temperature: 1, stopTokenIds: [], seed: SEED });
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const tokens = out.reduce((a, o) => a + o.tokens.length, 0);
  const meanLogprob = out.reduce((a, o) => a + o.logprobs.reduce((x, y) => x + y, 0), 0) / tokens;
  console.log(
    JSON.stringify({
      tok_s: tokens / seconds,
      seconds,
      cpu_seconds: (c.user + c.system) / 1e6,
      tokens,
      threads: getNumThreads(),
      mean_logprob: meanLogprob,
    }),
  );
}

function run(cmd: string, args: string[], env: Record<string, string>): Result {
  const out = execFileSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { ...JSON.parse(out.trim().split("\n").pop() as string), env };
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "cohort-bench-decode-"));
  try {
    const model = new CausalLM(config, { seed: SEED });
    writeSafetensors(join(dir, "model.safetensors"), model.state().tensors);
    writeFileSync(join(dir, "config.json"), JSON.stringify(configToHF(config)));
    let s = SEED;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s;
    };
    const prompts = Array.from({ length: BATCH }, () =>
      Array.from({ length: PROMPT_LEN }, () => rnd() % config.vocabSize),
    );
    writeFileSync(join(dir, "prompts.json"), JSON.stringify(prompts));
    model.dispose();

    const settings: { env: Record<string, string>; threads: number }[] = [
      { env: { OPENBLAS_NUM_THREADS: "1" }, threads: 1 },
      { env: { OPENBLAS_NUM_THREADS: "1" }, threads: 2 },
      { env: {}, threads: 2 },
    ];
    const self = fileURLToPath(import.meta.url);
    const runOurs = ({ env, threads }: (typeof settings)[number]) =>
      run(process.execPath, ["--import", "tsx", self, "--worker", dir, String(threads)], env);
    const runPeer = ({ env, threads }: (typeof settings)[number]) =>
      run(
        process.env.BENCH_PYTHON ?? "/usr/bin/python3", // a Python with torch (gpu-check.sh passes its own)
        [
          join(here, "peers", "decode_peer.py"),
          dir,
          ...["--threads", String(threads), "--new-tokens", String(NEW_TOKENS), "--device", DEVICE],
        ],
        { OMP_WAIT_POLICY: "PASSIVE", ...env },
      );
    // Interleaved, so a change in machine load hits both sides alike; then each side's best setting twice
    // more. Load from other processes only ever slows a run down, so each side's fastest run counts.
    const ours: Result[] = [];
    const peers: Result[] = [];
    for (const st of settings) {
      ours.push(runOurs(st));
      peers.push(runPeer(st));
    }
    const best = (rs: Result[]) => rs.reduce((a, b) => (b.tok_s > a.tok_s ? b : a));
    const settingOf = (r: Result) => ({
      env: Object.fromEntries(Object.entries(r.env).filter(([k]) => k !== "OMP_WAIT_POLICY")),
      threads: r.threads,
    });
    const bestOurs = settingOf(best(ours));
    const bestPeer = settingOf(best(peers));
    for (let i = 0; i < 2; i++) {
      ours.push(runOurs(bestOurs));
      peers.push(runPeer(bestPeer));
    }
    const o = best(ours);
    const p = best(peers);
    console.log(
      `torch ${torchVersion()}; ${BATCH} sequences × ${NEW_TOKENS} new tokens, prompts of ${PROMPT_LEN}; device ${DEVICE}, ours ${PRECISION}`,
    );
    for (const [who, rs] of [
      ["ours", ours],
      ["peer", peers],
    ] as const) {
      for (const r of rs) {
        console.log(
          `${who} threads=${r.threads} env=${JSON.stringify(r.env)}: ${r.tok_s.toFixed(0)} tok/s ` +
            `(${r.seconds.toFixed(2)} s wall, ${r.cpu_seconds.toFixed(2)} s cpu, mean logprob ${r.mean_logprob.toFixed(3)})`,
        );
      }
    }
    console.log(
      JSON.stringify({
        bench: "decode",
        device: DEVICE,
        precision: PRECISION,
        ours_tok_s: Math.round(o.tok_s),
        peer_tok_s: Math.round(p.tok_s),
        ratio: Number((o.tok_s / p.tok_s).toFixed(3)),
        ours_settings: { threads: o.threads, OMP_WAIT_POLICY: "PASSIVE", ...o.env },
        peer_settings: { threads: p.threads, ...p.env },
        ours_tok_per_cpu_s: Math.round(o.tokens / o.cpu_seconds),
        peer_tok_per_cpu_s: Math.round(p.tokens / p.cpu_seconds),
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const wi = process.argv.indexOf("--worker");
if (wi >= 0) worker(process.argv[wi + 1] as string, Number(process.argv[wi + 2]));
else main();
