/**
 * `npm run bench:ddp`: the scaling efficiency of 2 data-parallel ranks against 1 process on this machine.
 * Workload: train steps of the small GPT of bench:core (4 layers, d_model 256, 3.4M parameters, fp32) on
 * 4 sequences × 128 tokens per rank: forward, backward, gradient all-reduce (Gloo over loopback, 4 MiB
 * buckets, 13.7 MB per step), AdamW.
 *
 * - `efficiency` (weak scaling, the headline): 1 process with 1 thread on 4 sequences vs 2 ranks with 1 thread
 *   each on 4 sequences each (8 in all): t(1 rank) / t(2 ranks), with the all-reduce overlapped with the
 *   backward pass (the trainer's default). 1.0 = the second rank costs nothing; below it are the all-reduce
 *   the backward pass did not hide, the synchronisation and what the two processes take from each other
 *   (cores, memory bandwidth). On a 2-core box this measures the overhead of data parallelism, not a speed-up.
 * - `efficiency_no_overlap`: the same with every bucket launched after the backward pass
 *   (`train.overlapAllreduce: false`), measured in the same rounds.
 * - `speedup_vs_2_threads` (strong scaling, for reference): 1 process with 2 threads on all 8 sequences vs the
 *   2 ranks: > 1 would mean 2 ranks use the 2 cores better than 2 threads in one process.
 *
 * Every configuration runs in its own processes, one after the other, in `BENCH_ROUNDS` (default 3) interleaved
 * rounds; each configuration's fastest round counts (load from other processes only ever slows a run down).
 * Within a round: the median over the timed steps. Last line: JSON
 * `{"bench":"ddp","ranks":2,"efficiency":…,"efficiency_no_overlap":…}`.
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { DataParallel } from "../src/parallel/data-parallel.js";
import { ProcessGroup } from "../src/parallel/group.js";
import { freePort } from "../src/parallel/launch.js";
import { AdamW, Generator, manualSeed, randint, setNumThreads, tidy, torchVersion } from "../src/tensor/index.js";
import { BENCH_GPT, gptLoss, initGpt } from "./gpt.js";

const steps = Number(process.env.BENCH_STEPS ?? 10);
const warmup = Number(process.env.BENCH_WARMUP ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const perRank = 4; // sequences per rank
const seed = 1234;

interface Timing {
  ms: number;
  /** Time inside reduceGradients: the all-reduce not hidden behind the backward pass. */
  comm_ms: number;
  loss: number;
  /** Buckets launched before the backward pass returned, of all (overlap only). */
  in_backward: number;
  buckets: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * One process: `batch` sequences per step; with WORLD_SIZE set, one rank of a group (gradients all-reduced,
 * overlapped with the backward pass unless BENCH_OVERLAP=0).
 */
function worker(threads: number, batch: number): void {
  setNumThreads(threads);
  manualSeed(seed);
  const worldSize = Number(process.env.WORLD_SIZE ?? 1);
  const rank = Number(process.env.RANK ?? 0);
  const group =
    worldSize > 1
      ? ProcessGroup.init({ worldSize, rank, masterAddr: "127.0.0.1", masterPort: Number(process.env.MASTER_PORT) })
      : null;
  const dp = group ? new DataParallel(group, "split", { overlap: process.env.BENCH_OVERLAP !== "0" }) : null;
  const g = initGpt(BENCH_GPT);
  const params = Object.values(g.params);
  dp?.broadcastParameters(params);
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.01 });
  // rank r trains on its own rows of one global batch
  const ids = randint(0, BENCH_GPT.vocab, [batch, BENCH_GPT.seq + 1], { generator: new Generator(seed + 1 + rank) });
  const times: number[] = [];
  const comm: number[] = [];
  let loss = 0;
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    let tc = 0;
    tidy(() => {
      opt.zeroGrad();
      const l = gptLoss(g, ids).div(worldSize); // the mean over all ranks' rows once summed
      dp?.beforeLastBackward(params);
      l.backward();
      const c0 = performance.now();
      dp?.reduceGradients(params, true);
      tc = performance.now() - c0;
      opt.step();
      loss = l.item() * worldSize;
    });
    if (i >= warmup) {
      times.push(performance.now() - t0);
      comm.push(tc);
    }
  }
  const st = dp?.overlapStats();
  dp?.close();
  group?.destroy();
  const out: Timing = {
    ms: median(times),
    comm_ms: median(comm),
    loss,
    in_backward: st?.launchedInBackward ?? 0,
    buckets: st?.buckets ?? 0,
  };
  console.log(JSON.stringify(out));
}

/** Runs `n` worker processes at once and returns their timings (rank order). */
async function run(n: number, threads: number, batch: number, overlap = true): Promise<Timing[]> {
  const port = await freePort();
  const script = fileURLToPath(import.meta.url);
  const procs = Array.from({ length: n }, (_, rank) => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    if (n > 1)
      Object.assign(env, {
        WORLD_SIZE: String(n),
        RANK: String(rank),
        MASTER_PORT: String(port),
        BENCH_OVERLAP: overlap ? "1" : "0",
      });
    else delete env.WORLD_SIZE;
    const child = spawn(process.execPath, [...process.execArgv, script, "--worker", String(threads), String(batch)], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    return new Promise<Timing>((resolve, reject) =>
      child.on("exit", (code) =>
        code === 0
          ? resolve(JSON.parse(out.trim().split("\n").pop() as string) as Timing)
          : reject(new Error(`bench worker exited with ${code}`)),
      ),
    );
  });
  return await Promise.all(procs);
}

async function main(): Promise<void> {
  const ones: Timing[] = [];
  const twos: Timing[][] = [];
  const twosOff: Timing[][] = [];
  const solos: Timing[] = [];
  for (let r = 0; r < rounds; r++) {
    ones.push(...(await run(1, 1, perRank)));
    twos.push(await run(2, 1, perRank));
    twosOff.push(await run(2, 1, perRank, false));
    solos.push(...(await run(1, 2, 2 * perRank)));
  }
  const fastest = (ts: Timing[]) => ts.reduce((a, b) => (b.ms < a.ms ? b : a));
  // a step of 2 ranks ends when the slower rank ends
  const slower = (pair: Timing[]) => Math.max(...pair.map((t) => t.ms));
  const one = fastest(ones);
  const solo2 = fastest(solos);
  const best = (runs: Timing[][]) => runs.reduce((a, b) => (slower(b) < slower(a) ? b : a));
  const two = best(twos);
  const twoOff = best(twosOff);
  const t2 = slower(two);
  const t2Off = slower(twoOff);
  // time inside reduceGradients: the rank that arrives last mostly transfers (with overlap: what the backward
  // pass did not hide), the other one also waits for it
  const transfer = Math.min(...two.map((t) => t.comm_ms));
  const wait = Math.max(...two.map((t) => t.comm_ms)) - transfer;
  const transferOff = Math.min(...twoOff.map((t) => t.comm_ms));
  const waitOff = Math.max(...twoOff.map((t) => t.comm_ms)) - transferOff;
  const efficiency = one.ms / t2;
  const inBackward = `${Math.min(...two.map((t) => t.in_backward))}/${two[0]?.buckets ?? 0}`;
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
  console.log(
    `torch ${torchVersion()}, ${availableParallelism()} cores, ${steps} timed steps after ${warmup}, ` +
      `fastest of ${rounds} rounds`,
  );
  console.log(
    `rounds (ms/step): 1 rank ${list(ones.map((t) => t.ms))}; 2 ranks ${list(twos.map(slower))}; ` +
      `2 ranks, no overlap ${list(twosOff.map(slower))}; 1 process with 2 threads ${list(solos.map((t) => t.ms))}`,
  );
  console.log(`1 rank,  1 thread, ${perRank} seq:          ${one.ms.toFixed(1)} ms/step`);
  console.log(
    `2 ranks, 1 thread each, ${perRank} seq each: ${t2.toFixed(1)} ms/step, all-reduce overlapped with backward ` +
      `(${inBackward} buckets launched in backward; after it: all-reduce ${transfer.toFixed(1)} ms, waiting for ` +
      `the slower rank ${wait.toFixed(1)} ms)`,
  );
  console.log(
    `2 ranks, 1 thread each, ${perRank} seq each: ${t2Off.toFixed(1)} ms/step, all-reduce after backward ` +
      `(all-reduce ${transferOff.toFixed(1)} ms, waiting for the slower rank ${waitOff.toFixed(1)} ms)`,
  );
  console.log(`1 process, 2 threads, ${2 * perRank} seq:     ${solo2.ms.toFixed(1)} ms/step`);
  console.log(
    JSON.stringify({
      bench: "ddp",
      ranks: 2,
      efficiency: Number(efficiency.toFixed(3)),
      efficiency_no_overlap: Number((one.ms / t2Off).toFixed(3)),
      one_rank_ms: Number(one.ms.toFixed(1)),
      two_ranks_ms: Number(t2.toFixed(1)),
      two_ranks_no_overlap_ms: Number(t2Off.toFixed(1)),
      allreduce_ms: Number(transfer.toFixed(1)),
      rank_wait_ms: Number(wait.toFixed(1)),
      allreduce_no_overlap_ms: Number(transferOff.toFixed(1)),
      rank_wait_no_overlap_ms: Number(waitOff.toFixed(1)),
      buckets_in_backward: inBackward,
      speedup_vs_2_threads: Number((solo2.ms / t2).toFixed(3)),
      one_process_2_threads_ms: Number(solo2.ms.toFixed(1)),
      seqs_per_rank: perRank,
      rounds,
      cores: availableParallelism(),
    }),
  );
}

const wi = process.argv.indexOf("--worker");
if (wi >= 0) worker(Number(process.argv[wi + 1]), Number(process.argv[wi + 2]));
else await main();
