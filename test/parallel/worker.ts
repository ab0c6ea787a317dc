// One rank of the collective tests (spawned by collectives.test.ts with WORLD_SIZE/RANK/MASTER_PORT set):
//   node --import tsx test/parallel/worker.ts <mode> <out.json>
// mode "ops": every collective on known values; "grads": one optimizer step's loss and gradients over two ranks
// (all-reduce after backward, and overlapped with the last backward pass) against the same step on the combined
// batch in this process, then the overlapped reducer on parameters some ranks give no gradient;
// "hang": rank 1 stalls past rank 0's timeout.
import { writeFileSync } from "node:fs";
import { globalCounts } from "../../src/algo/aggregate.js";
import { createPolicyLoss } from "../../src/algo/policy-loss.js";
import { packBatch } from "../../src/model/batch.js";
import { modelConfig } from "../../src/model/config.js";
import { CausalLM } from "../../src/model/llama.js";
import { DataParallel } from "../../src/parallel/data-parallel.js";
import { ProcessGroup } from "../../src/parallel/group.js";
import { resolvePreset } from "../../src/presets/index.js";
import { type Device, noGrad, type Tensor, tensor, tidy, zeroGrad } from "../../src/tensor/index.js";

const [mode, out] = process.argv.slice(2) as [string, string];
const rank = Number(process.env.RANK);
const group = ProcessGroup.init({
  worldSize: Number(process.env.WORLD_SIZE),
  rank,
  masterAddr: "127.0.0.1",
  masterPort: Number(process.env.MASTER_PORT),
  timeoutMs: Number(process.env.TIMEOUT_MS ?? 20_000),
  rendezvousTimeoutMs: 30_000,
  bucketBytes: 64, // a few floats per bucket: exercises bucketing
  backend: (process.env.DIST_BACKEND ?? "gloo") as "gloo" | "nccl",
});
// NCCL reduces tensors on each rank's GPU (test/cuda/nccl.test.ts); Gloo CPU tensors
const dev = (process.env.DIST_BACKEND === "nccl" ? `cuda:${rank}` : "cpu") as Device;
const result: Record<string, unknown> = { rank };

if (mode === "ops") {
  const a = tensor([1 + rank, 2, 3], { device: dev }); // [3]
  const b = tensor(
    [
      [10 * (rank + 1), 1],
      [2, 3],
    ],
    { device: dev },
  ); // [2, 2]
  const c = tensor(Float64Array.of(0.5 * rank, 7), { device: dev }); // f64: a bucket of its own
  const big = tensor(
    Float32Array.from({ length: 40 }, (_, i) => i * (rank + 1)),
    { device: dev },
  ); // > a bucket
  group.allreduce([a, b, c, big]);
  result.allreduce = [a, b, c, big].map((t) => Array.from(t.data() as ArrayLike<number>));
  const p = tensor([rank, rank, rank], { device: dev }).requireGrad();
  group.broadcast([p], 1);
  result.broadcast = Array.from(p.data() as Float32Array);
  result.broadcastKeepsGrad = p.requiresGrad;
  result.sum = group.sum([rank, 1, 0.25]);
  result.any = [group.any(rank === 1), group.any(false)];
  result.allgather = group.allgather(rank === 0 ? [1] : [2, 3, 4]);
  result.json = group.allgatherJson({ rank, text: "é".repeat(rank + 1) });
  group.barrier();
  result.peers = group.peers.map((x) => x.pid);
} else if (mode === "grads") {
  // Two groups of three completions (lengths differ, so the ranks' token counts differ); rank r holds group r.
  const prompts = [
    [1, 5, 6],
    [1, 5, 6],
    [1, 5, 6],
    [1, 7, 8, 9],
    [1, 7, 8, 9],
    [1, 7, 8, 9],
  ];
  const completions = [
    [10, 11, 12, 2],
    [13, 2],
    [14, 15, 16, 17, 18, 2],
    [19, 2],
    [20, 21, 22],
    [23, 24, 2],
  ];
  const adv = [1.2, -0.4, -0.8, 0.9, -1.1, 0.2];
  const cfg = modelConfig({
    vocabSize: 40,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 64,
    tieWordEmbeddings: true,
  });
  const model = new CausalLM(cfg, { seed: 11, initStd: 0.1 });
  const params = model.parameters();
  const dp = new DataParallel(group, "split", { overlap: false });
  const dpOverlap = new DataParallel(group, "split");
  dp.broadcastParameters(params);
  /**
   * Loss summed over micro-batches of `rows` with the given counts; gradients accumulate in `params`. With
   * `overlap`, its reducer is armed before the last micro-batch's backward pass, as the trainer does.
   */
  const run = (
    preset: string,
    rows: number[][],
    counts: ReturnType<typeof globalCounts>,
    overlap?: DataParallel,
  ): number => {
    const loss = createPolicyLoss(resolvePreset(preset, preset === "dr_grpo" ? { aggregate: { maxLength: 8 } } : {}));
    let total = 0;
    for (const [k, micro] of rows.entries()) {
      tidy(() => {
        const packed = packBatch(
          micro.map((r) => prompts[r] as number[]),
          micro.map((r) => completions[r] as number[]),
        );
        const P = packed.promptLength;
        const lp = model.logprobs(packed).lp.slice(1, P); // [n, C]
        const mask = packed.completionMask.slice(1, P);
        // a fixed, row-dependent ℓ_old so the ratios are not all 1
        const shift = tensor(
          micro.map((r) => 0.05 * (r - 2.5)),
          { shape: [micro.length, 1] },
        );
        const res = loss.compute(
          {
            logprobs: lp,
            oldLogprobs: lp.detach().add(shift),
            refLogprobs: lp.detach().sub(shift.mul(0.5)), // for the presets with a KL term
            advantages: tensor(micro.map((r) => adv[r] as number)),
            mask,
            groupIndex: Int32Array.from(micro, (r) => (r < 3 ? 0 : 1)),
            rewards: Float64Array.from(micro, (r) => ((adv[r] as number) > 0 ? 1 : 0)),
          },
          counts,
        );
        total += res.loss.item();
        if (k === rows.length - 1) overlap?.beforeLastBackward(params);
        res.loss.backward();
      });
    }
    return total;
  };
  const masksOf = (rows: number[][]): Tensor[] =>
    rows.map((micro) => {
      const packed = packBatch(
        micro.map((r) => prompts[r] as number[]),
        micro.map((r) => completions[r] as number[]),
      );
      return packed.completionMask.slice(1, packed.promptLength);
    });
  const flatGrads = (): number[] =>
    params.flatMap((p) => {
      const g = p.grad as Tensor;
      const v = Array.from(g.data() as Float32Array);
      g.dispose();
      return v;
    });
  const presets: Record<string, unknown>[] = [];
  for (const preset of ["grpo", "dapo", "dr_grpo"]) {
    // one process, the combined batch: micro-batches of 4 rows
    zeroGrad(params);
    const all = [
      [0, 1, 2, 3],
      [4, 5],
    ];
    const refCounts = noGrad(() => globalCounts(masksOf(all)));
    const refLoss = run(preset, all, refCounts);
    const ref = flatGrads();
    // two ranks: this rank's group in micro-batches of 2, counts summed over ranks, gradients all-reduced
    zeroGrad(params);
    const mine = rank === 0 ? [[0, 1], [2]] : [[3, 4], [5]];
    const counts = dp.reduceCounts(noGrad(() => globalCounts(masksOf(mine))));
    const localLoss = run(preset, mine, counts);
    const finite = dp.reduceGradients(params, Number.isFinite(localLoss));
    const dpLoss = group.sum([localLoss])[0] as number;
    const grads = flatGrads();
    // the same rows with the all-reduce overlapped with the last backward pass
    zeroGrad(params);
    const overlapLoss = run(preset, mine, counts, dpOverlap);
    const overlapFinite = dpOverlap.reduceGradients(params, Number.isFinite(overlapLoss));
    const overlapGrads = flatGrads();
    let maxDiff = 0;
    let maxRef = 0;
    let maxOverlapDiff = 0;
    let overlapVsAfter = 0;
    ref.forEach((x, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(x - (grads[i] as number)));
      maxRef = Math.max(maxRef, Math.abs(x));
      maxOverlapDiff = Math.max(maxOverlapDiff, Math.abs(x - (overlapGrads[i] as number)));
      overlapVsAfter = Math.max(overlapVsAfter, Math.abs((grads[i] as number) - (overlapGrads[i] as number)));
    });
    presets.push({
      preset,
      refLoss,
      dpLoss,
      localLoss,
      finite,
      maxDiff,
      maxRef,
      refTokens: refCounts.tokens,
      dpTokens: counts.tokens,
      gradSum: grads.reduce((a, b) => a + b, 0),
      overlapFinite,
      maxOverlapDiff,
      overlapVsAfter,
      overlapStats: dpOverlap.overlapStats(),
      params: params.length,
    });
  }
  result.presets = presets;
  dpOverlap.close();

  // The overlapped reducer on three parameters, one bucket each (> 64 bytes but c), buckets in reverse order
  // (b, a, c): `a` has a gradient on both ranks, `b` on rank 0 only (rank 1 takes part with zeros), `c` on none
  // (left without one). Rank 0 launches b's and a's buckets during backward, rank 1 none (b's gradient never
  // comes, and buckets go in order). Rank 1's loss is not finite, so neither rank's is.
  const a = tensor(Float32Array.from({ length: 20 }, (_, i) => i)).requireGrad();
  const b = tensor(Float32Array.from({ length: 17 }, (_, i) => i - 8)).requireGrad();
  const c = tensor([6]).requireGrad();
  const few = [c, a, b];
  const red = new DataParallel(group, "split");
  red.beforeLastBackward(few);
  tidy(() => {
    const used =
      rank === 0
        ? a
            .mul(rank + 1)
            .sum()
            .add(b.mul(b).sum())
        : a.mul(rank + 1).sum();
    used.backward();
  });
  const inBackward = red.overlapStats();
  const fewFinite = red.reduceGradients(few, rank === 0);
  result.few = {
    finite: fewFinite,
    grads: few.map((p) => {
      const g = p.grad;
      if (g === null) return null;
      const v = Array.from(g.data() as Float32Array);
      g.dispose();
      return v;
    }),
    stats: red.overlapStats(),
    statsBeforeFinish: inBackward,
  };
  // finish without prepare: every bucket after the backward pass
  zeroGrad(few);
  tidy(() => a.sum().backward());
  red.reduceGradients(few, true);
  result.fewUnarmed = red.overlapStats();
  red.close();
} else if (mode === "hang") {
  if (rank === 1) {
    const until = Date.now() + 3_000;
    while (Date.now() < until) {} // busy: no collective for 3 s
  }
  try {
    group.barrier();
    result.error = null;
  } catch (e) {
    result.error = (e as Error).message;
  }
}
writeFileSync(out, JSON.stringify(result));
if (mode === "hang") process.exit(0); // a timed-out group is not destroyed
group.destroy();
