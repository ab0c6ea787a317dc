// The NCCL backend: the collectives of test/parallel/collectives.test.ts with two ranks on two GPUs. Skipped, with
// the reason, without NCCL in this build or without two GPUs (NCCL puts each rank on its own GPU).
import assert from "node:assert/strict";
import { test } from "node:test";
import { availableBackends } from "../../src/parallel/group.js";
import { native } from "../../src/tensor/native.js";
import { twoRanks } from "../parallel/helpers.js";

const gpus = native.cudaAvailable() ? (native.cudaDeviceCount() as number) : 0;
const skip = !availableBackends().includes("nccl")
  ? "this build has no NCCL backend (build against a CUDA pip torch: docs/GPU.md)"
  : gpus < 2
    ? `NCCL needs a GPU per rank; this machine has ${gpus}`
    : false;

test(
  "nccl: all-reduce (bucketed, mixed dtypes), broadcast, sums, all-gathers, barrier on 2 GPUs",
  { skip },
  async () => {
    const rs = await twoRanks("ops", { DIST_BACKEND: "nccl" });
    for (const r of rs) {
      assert.deepEqual(r.allreduce, [[3, 4, 6], [30, 2, 4, 6], [0.5, 14], Array.from({ length: 40 }, (_, i) => 3 * i)]);
      assert.deepEqual(r.broadcast, [1, 1, 1]);
      assert.deepEqual(r.sum, [1, 2, 0.5]);
      assert.deepEqual(r.allgather, [[1], [2, 3, 4]]);
    }
  },
);
