// The data-parallel plumbing that needs no second rank: rendezvous flags and variables, the --nproc command
// line, the prompt split, the world-size check on resume, how step metrics combine, and the launcher's handling
// of a failed rank.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { launchRanks, nprocOf, withoutNproc } from "../../src/parallel/cli.js";
import { checkResumeWorldSize, DataParallel, rankSeed } from "../../src/parallel/data-parallel.js";
import { launchLocal } from "../../src/parallel/launch.js";
import { combineStepMetrics, type RankStep, type StepFacts } from "../../src/parallel/metrics.js";
import { DEFAULT_MASTER_PORT, resolveRendezvous } from "../../src/parallel/rendezvous.js";

test("rendezvous: flags win over WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT; world size 1 means no group", () => {
  const env = { WORLD_SIZE: "4", RANK: "3", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234" };
  assert.deepEqual(resolveRendezvous({}, env), {
    worldSize: 4,
    rank: 3,
    masterAddr: "10.0.0.1",
    masterPort: 1234,
    timeoutMs: 30 * 60 * 1000,
    backend: "gloo",
  });
  const r = resolveRendezvous({ rank: "1", masterPort: "2000", timeoutS: "5" }, env);
  assert.equal(r?.rank, 1);
  assert.equal(r?.masterPort, 2000);
  assert.equal(r?.timeoutMs, 5000);
  assert.equal(resolveRendezvous({ worldSize: "2", rank: "0" }, {})?.masterPort, DEFAULT_MASTER_PORT);
  assert.equal(resolveRendezvous({ worldSize: "2", rank: "0" }, {})?.masterAddr, "127.0.0.1");
  assert.equal(resolveRendezvous({}, {}), null);
  assert.equal(resolveRendezvous({ worldSize: "1" }, { RANK: "0" }), null);
});

test("rendezvous: malformed or missing values name the flag and its variable", () => {
  assert.throws(
    () => resolveRendezvous({ worldSize: "2" }, {}),
    /world size 2 but no rank: start each process with its own --rank \(or RANK\) in 0\.\.1, or use --nproc N/,
  );
  assert.throws(
    () => resolveRendezvous({ worldSize: "2", rank: "2" }, {}),
    /--rank \(RANK\): expected an integer in 0\.\.1, received "2"/,
  );
  assert.throws(() => resolveRendezvous({ worldSize: "two" }, {}), /--world-size \(WORLD_SIZE\): expected an integer/);
  assert.throws(
    () => resolveRendezvous({}, { WORLD_SIZE: "2", RANK: "0", MASTER_PORT: "70000" }),
    /--master-port \(MASTER_PORT\): expected an integer in 1\.\.65535, received "70000"/,
  );
  assert.throws(
    () => resolveRendezvous({ worldSize: "2", rank: "0", backend: "mpi" }, {}),
    /--dist-backend \(COHORT_DIST_BACKEND\): expected gloo or nccl, received "mpi"/,
  );
  assert.throws(() => resolveRendezvous({ rank: "1" }, {}), /--rank needs --world-size \(or WORLD_SIZE\)/);
});

test("--nproc: parsed, refused with --world-size, removed from the ranks' command line", async () => {
  assert.equal(nprocOf({}), null);
  assert.equal(nprocOf({ nproc: "2" }), 2);
  assert.throws(() => nprocOf({ nproc: "0" }), /--nproc: expected an integer in 1\.\.64/);
  assert.throws(() => nprocOf({ nproc: "2", "world-size": "2" }), /--nproc starts every rank itself/);
  assert.deepEqual(withoutNproc(["c.yaml", "--nproc", "2", "--resume", "--nproc=3", "--quiet"]), [
    "c.yaml",
    "--resume",
    "--quiet",
  ]);
  // B not divisible by N is refused before any rank starts
  await assert.rejects(launchRanks(3, 16, ["c.yaml", "--nproc", "3"]), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(
      e.message,
      "train.promptsPerStep: 16 prompts per step do not split over 3 ranks: each rank samples whole prompt groups, " +
        "the same number on every rank. Use a multiple of 3 (e.g. 15 or 18), or another number of ranks",
    );
    return true;
  });
  assert.doesNotThrow(() => DataParallel.checkPrompts(16, 4));
});

test("rank seeds: rank 0 keeps the run's seed, the others get distinct derived ones", () => {
  assert.equal(rankSeed(7, 0), 7);
  const seeds = [1, 2, 3, 4, 5, 6, 7].map((r) => rankSeed(7, r));
  assert.equal(new Set([7, ...seeds]).size, 8);
  assert.equal(rankSeed(7, 1), rankSeed(7, 1));
  assert.notEqual(rankSeed(8, 1), rankSeed(7, 1));
});

test("resume: another world size is refused with what to do", () => {
  assert.doesNotThrow(() => checkResumeWorldSize({}, 1, "ck"));
  assert.doesNotThrow(() => checkResumeWorldSize({ worldSize: 4 }, 4, "ck"));
  assert.throws(
    () => checkResumeWorldSize({}, 2, "runs/a/checkpoints/step-000004"),
    (e: Error) =>
      e.message ===
      "checkpoint runs/a/checkpoints/step-000004 was written by one process (no --nproc), but this run has 2 ranks " +
        "(--nproc 2 or --world-size 2). Each rank's data stream and RNG are saved per rank, so resume with one " +
        "process (no --nproc), or start a new run (another name or outputDir).",
  );
});

function facts(p: Partial<StepFacts>): StepFacts {
  return {
    rewards: [],
    rewardsByFn: {},
    lengths: [],
    truncated: 0,
    groups: 0,
    zeroStdGroups: 0,
    entropyTokens: 0,
    mismatchTokens: 0,
    sampledTokens: 0,
    trainedTokens: 0,
    microBatchValues: {},
    ...p,
  };
}

test("step metrics combine as one process over the whole batch would log them", () => {
  const parts: RankStep[] = [
    {
      metrics: {
        step: 3,
        reward_mean: 0.5,
        reward_std: 0.5,
        "reward/c/mean": 1,
        loss: 0.25,
        grad_norm: 2,
        entropy: 1,
        "clip/ratio": 0.1,
        "rollout/rounds": 1,
        reward_failures: 1,
        custom: 10,
        "time/step_s": 1,
        "completions/clipped_ratio": 1,
        frac_reward_zero_std: 0,
      },
      facts: facts({
        rewards: [0, 1],
        rewardsByFn: { c: [1, 1] },
        lengths: [4, 6],
        truncated: 2,
        groups: 1,
        entropyTokens: 10,
        microBatchValues: { "clip/ratio": 1 },
      }),
    },
    {
      metrics: {
        step: 3,
        reward_mean: 1,
        reward_std: 0,
        "reward/c/mean": 0,
        loss: -0.05,
        grad_norm: 2,
        entropy: 4,
        "clip/ratio": 0.4,
        "rollout/rounds": 3,
        reward_failures: 2,
        custom: 20,
        "time/step_s": 2,
        "completions/clipped_ratio": 0,
        frac_reward_zero_std: 1,
      },
      facts: facts({
        rewards: [1, 1, 1, 1],
        rewardsByFn: { c: [0, 0, 0, 0] },
        lengths: [1, 1, 2, 2],
        groups: 1,
        zeroStdGroups: 1,
        entropyTokens: 30,
        microBatchValues: { "clip/ratio": 3 },
      }),
    },
  ];
  const m = combineStepMetrics(parts);
  assert.equal(m.step, 3);
  assert.equal(m.reward_mean, 5 / 6);
  assert.ok(Math.abs((m.reward_std as number) - Math.sqrt(5 / 36)) < 1e-12);
  assert.equal(m["reward/c/mean"], 2 / 6);
  assert.ok(Math.abs((m.loss as number) - 0.2) < 1e-12, "losses add up (each is divided by global counts)");
  assert.equal(m.grad_norm, 2);
  assert.equal(m.entropy, (1 * 10 + 4 * 30) / 40);
  assert.equal(m["clip/ratio"], (0.1 * 1 + 0.4 * 3) / 4);
  assert.equal(m["rollout/rounds"], 3);
  assert.equal(m.reward_failures, 3);
  assert.equal(m.custom, (10 * 2 + 20 * 4) / 6);
  assert.equal(m["time/step_s"], 2);
  assert.equal(m["completions/clipped_ratio"], 2 / 6);
  assert.equal(m["completions/mean_length"], 16 / 6);
  assert.equal(m["completions/max_length"], 6);
  assert.equal(m.frac_reward_zero_std, 0.5);
});

test("launcher: a failed rank is named, the others get the grace period, then are terminated", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cohort-launch-"));
  const script = join(dir, "rank.mjs");
  // rank 1 fails at once; rank 0 would run for a minute
  writeFileSync(
    script,
    'if (process.env.RANK === "1") process.exit(3); setTimeout(() => {}, 60_000); process.channel?.unref();\n',
  );
  const lines: string[] = [];
  const t0 = Date.now();
  const code = await launchLocal({ nproc: 2, args: [], script, execArgv: [], graceMs: 300, log: (l) => lines.push(l) });
  assert.equal(code, 3);
  assert.ok(Date.now() - t0 < 20_000);
  assert.match(
    lines.join("\n"),
    /cohort: rank 1 \(pid \d+\) exited with code 3; waiting up to 0\.3 s for rank 0 to stop/,
  );
  assert.match(lines.join("\n"), /cohort: rank 0 \(pid \d+\) did not stop within 0\.3 s; terminating it/);
});
