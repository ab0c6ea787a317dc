/**
 * `npm run bench:serve`: starts `cohort serve models/arithmetic-tiny` as a child process and drives it from
 * this process over loopback with a bounded load: C concurrent clients (default 8), each sending its share of
 * R requests (default 64) one after another to /v1/completions (an arithmetic prompt, n completions,
 * max_tokens fixed by ignore_eos, temperature 1). Reports completion tokens per second over the timed run
 * and the request latency percentiles. Then, with the server stopped, the same completions are decoded
 * in-process by `LocalSampler` in batches of C requests (peer: no HTTP, no queue), for the overhead ratio.
 * Last line: {"bench":"serve","ours_tok_s":…,"p50_ms":…,"p99_ms":…}.
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { readModelDir } from "../src/io/hf.js";
import { CausalLM } from "../src/model/llama.js";
import { LocalSampler } from "../src/model/sampler.js";
import { OpenAIClient } from "../src/serve/client.js";
import { dispose, setNumThreads } from "../src/tensor/index.js";
import { tokenizerFromFiles } from "../src/tokenizer/index.js";

const MODEL = "models/arithmetic-tiny";
const requests = Number(process.env.BENCH_REQUESTS ?? 64);
const clients = Number(process.env.BENCH_CLIENTS ?? 8);
const n = Number(process.env.BENCH_N ?? 1);
const maxTokens = Number(process.env.BENCH_MAX_TOKENS ?? 32);
const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

const prompt = (i: number) => `${(i * 37) % 100}+${(i * 53) % 100}=`;

async function main(): Promise<void> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", MODEL, "--port", "0", "--threads", String(threads)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.on("exit", (code) => reject(new Error(`cohort serve exited with ${code}`)));
  });
  // never leave the server behind, whatever happens below
  const killChild = () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.on("exit", killChild);
  const client = new OpenAIClient({ baseUrl: `${url}/v1`, maxConcurrency: clients, maxRetries: 0 });
  const body = (i: number) => ({
    prompt: prompt(i),
    n,
    max_tokens: maxTokens,
    ignore_eos: true,
    temperature: 1,
    seed: i,
  });
  await client.completions(body(requests)); // warm-up
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < requests; i = next++) {
        const t = performance.now();
        const r = await client.completions(body(i));
        latencies.push(performance.now() - t);
        tokens += r.usage?.completion_tokens ?? 0;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const health = (await (await fetch(`${url}/health`)).json()) as { batches: number; completed: number };
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  child.kill("SIGTERM");
  const code = await exited;
  process.off("exit", killChild);
  if (code !== 0) throw new Error(`cohort serve exited with ${code} after SIGTERM`);
  const oursTokS = tokens / wall;

  // peer: the same completions decoded in-process, C requests per generate call
  setNumThreads(threads);
  const dir = readModelDir(MODEL);
  const tok = tokenizerFromFiles(dir.tokenizer!.json, dir.tokenizer!.config);
  const model = CausalLM.fromHF(dir.config, dir.tensors);
  dispose(dir.tensors);
  const sampler = new LocalSampler(model, { padId: tok.padId });
  const ids = (i: number) => [tok.bosId as number, ...tok.encode(prompt(i))];
  sampler.generateSync([ids(requests)], { maxTokens, stopTokenIds: [] }); // warm-up
  let peerTokens = 0;
  const p0 = performance.now();
  for (let i = 0; i < requests; i += clients) {
    const batch = Array.from({ length: Math.min(clients, requests - i) }, (_, k) => i + k);
    const prompts = batch.flatMap((r) => Array.from({ length: n }, () => ids(r)));
    const out = sampler.generateSync(prompts, { maxTokens, temperature: 1, stopTokenIds: [] });
    peerTokens += out.reduce((a, c) => a + c.tokens.length, 0);
  }
  const peerTokS = peerTokens / ((performance.now() - p0) / 1000);
  model.dispose();
  console.log(
    JSON.stringify({
      settings: { model: MODEL, requests, clients, n, maxTokens, threads, tokens, wall_s: +wall.toFixed(3) },
      server_batches: health.batches,
      requests_per_batch: +(health.completed / Math.max(1, health.batches)).toFixed(2),
      peer: "LocalSampler in-process, batches of `clients` requests",
      peer_tok_s: Math.round(peerTokS),
      ratio: +(oursTokS / peerTokS).toFixed(3),
    }),
  );
  console.log(
    JSON.stringify({
      bench: "serve",
      ours_tok_s: Math.round(oursTokS),
      p50_ms: +percentile(latencies, 0.5).toFixed(1),
      p99_ms: +percentile(latencies, 0.99).toFixed(1),
    }),
  );
}

await main();
