/**
 * `npm run bench:core`: one forward + backward + AdamW step of the small GPT (4 layers, d_model 256,
 * 4 heads, MLP 1024, vocab 512, batch 8 × seq 128, fp32) through Cohort and through PyTorch
 * (/usr/bin/python3, same weights, same batch) in the same run. Medians over the timed steps after
 * warm-up. The peer runs at each of its thread settings and its best is kept. Last line: JSON with the
 * ratio ours/peer (lower is better).
 *
 * `BENCH_DEVICE=cuda` runs both sides on the GPU; the peer then needs a Python whose torch has CUDA
 * (`BENCH_PYTHON=/path/to/python`, default /usr/bin/python3).
 */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AdamW,
  checkBlas,
  type Device,
  Generator,
  getNumThreads,
  manualSeed,
  randint,
  torchVersion,
} from "../src/tensor/index.js";
import { BENCH_GPT, initGpt, trainStep } from "./gpt.js";

const here = dirname(fileURLToPath(import.meta.url));
const steps = Number(process.env.BENCH_STEPS ?? 20);
const warmup = Number(process.env.BENCH_WARMUP ?? 5);
const batch = 8;
const seed = 1234;
const device = (process.env.BENCH_DEVICE ?? "cpu") as Device;
const python = process.env.BENCH_PYTHON ?? "/usr/bin/python3";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function ours(): { ms: number; losses: number[] } {
  manualSeed(seed);
  const g = initGpt(BENCH_GPT);
  if (device !== "cpu") {
    for (const [k, p] of Object.entries(g.params)) {
      const d = p.detach().to(device).requireGrad();
      d.kept = true;
      p.dispose();
      g.params[k] = d;
    }
  }
  const opt = new AdamW(Object.values(g.params), { lr: 1e-3, weightDecay: 0.01 });
  const ids = randint(0, BENCH_GPT.vocab, [batch, BENCH_GPT.seq + 1], { generator: new Generator(seed + 1) }).to(
    device,
  );
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    losses.push(trainStep(g, opt, ids));
    const dt = performance.now() - t0;
    if (i >= warmup) times.push(dt);
  }
  return { ms: median(times), losses };
}

function peer(env: Record<string, string>): { peer_ms: number; losses: number[]; threads: number } {
  const cfg = JSON.stringify({ ...BENCH_GPT, batch, seed, steps, warmup, device });
  const out = execFileSync(python, [join(here, "peers", "train_step_peer.py"), cfg], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return JSON.parse(out.trim().split("\n").pop() as string);
}

if (device === "cpu") checkBlas();
const mine = ours();
const settings: Record<string, string>[] = [{}, { OMP_WAIT_POLICY: "PASSIVE" }];
const peers = settings.map((env) => ({ env, ...peer(env) }));
const best = peers.reduce((a, b) => (b.peer_ms < a.peer_ms ? b : a));
const lossDiff = Math.max(...mine.losses.slice(0, 3).map((l, i) => Math.abs(l - (best.losses[i] as number))));

console.log(
  `torch ${torchVersion()}, device ${device}, cohort threads ${getNumThreads()}, OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}`,
);
for (const p of peers) console.log(`peer env ${JSON.stringify(p.env)}: ${p.peer_ms.toFixed(1)} ms/step`);
console.log(`ours: ${mine.ms.toFixed(1)} ms/step; first-3-step loss |Δ| vs peer: ${lossDiff.toExponential(2)}`);
console.log(
  JSON.stringify({
    bench: "train-step",
    device,
    ours_ms: Number(mine.ms.toFixed(2)),
    peer_ms: Number(best.peer_ms.toFixed(2)),
    ratio: Number((mine.ms / best.peer_ms).toFixed(3)),
    peer_env: best.env,
    loss_max_abs_diff: lossDiff,
  }),
);
