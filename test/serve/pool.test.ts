// The trainer with `sampler: {kind: openai, baseUrls: […]}` over two real `cohort serve` child processes:
// both workers serve requests and load the pushed weights; a worker killed mid-run is dropped and its requests
// are retried on the other, with no sample lost.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { RolloutPool } from "../../src/serve/pool.js";
import { RemoteSampler, type VersionedCompletion } from "../../src/serve/remote-sampler.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tmpRunRoot } from "../train/helpers.js";
import { http, type ServeProcess, startServe } from "./helpers.js";

const MODEL = resolve("models/arithmetic-tiny");
const B = 3;
const G = 4;
/** The workers' --weights-dir; each run writes its snapshots below it. */
const root = tmpRunRoot();

function config(sampler: Record<string, unknown>, steps: number) {
  return parseTrainConfig({
    name: "pool",
    outputDir: mkdtempSync(join(root, "run-")),
    seed: 1,
    threads: 1,
    model: { path: MODEL },
    task: { name: "arithmetic", options: { ops: { add: 1, sub: 1 }, digits: [1, 2] } },
    train: { steps, promptsPerStep: B, groupSize: G, lr: 3e-4 },
    sampling: { maxNewTokens: 24 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    sampler: { kind: "openai", model: "arithmetic-tiny", ...sampler },
  });
}

const health = async (s: ServeProcess) => (await http(`${s.url}/health`, "GET")).json();

let a: ServeProcess;
let b: ServeProcess;
before(async () => {
  [a, b] = await Promise.all([startServe(MODEL, ["--weights-dir", root]), startServe(MODEL, ["--weights-dir", root])]);
});
after(async () => {
  assert.equal(await a.stop(), 0, a.stderr());
  await b.stop();
});

test("a pool of 2 workers: both serve, both load every pushed snapshot, IS correction applies", async () => {
  const r = await train(
    config(
      {
        baseUrls: [`${a.url}/v1`, `${b.url}/v1`],
        syncWeights: true,
        importanceSampling: { mode: "token_truncate", cap: 2 },
      },
      3,
    ),
    { log: () => {} },
  );
  assert.equal(r.steps, 3);
  for (const m of r.metrics) {
    assert.equal(m["pool/workers_up"], 2);
    assert.equal(m["pool/requests"], B, "one request per group");
    assert.equal(m["pool/requests_retried"], 0);
    assert.equal(m["pool/policy_lag_max"], 0, "weights are pushed before every step");
    const d = m["sampler/logprob_abs_diff_mean"] as number;
    assert.ok(d < 1e-4, `step ${m.step}: both workers sample the trained weights, yet |Δ| = ${d}`);
    assert.ok(Math.abs((m["sampler/is_ratio/mean"] as number) - 1) < 1e-3);
  }
  const last = r.metrics.at(-1) as Record<string, number>;
  assert.ok((last["pool/served/0"] as number) > 0 && (last["pool/served/1"] as number) > 0);
  for (const s of [a, b]) {
    const h = await health(s);
    assert.ok(h.completed > 0, `${s.url} served no request`);
    assert.equal(h.weightsVersion, 3, `${s.url} loaded ${h.weightsVersion} snapshots, not 3`);
  }
});

test("overlap 1: each step's batch is sampled one policy version behind, during the previous update", async () => {
  const before = await Promise.all([a, b].map(async (s) => (await health(s)).weightsVersion as number));
  const r = await train(
    config(
      {
        baseUrls: [`${a.url}/v1`, `${b.url}/v1`],
        syncWeights: true,
        overlap: 1,
        maxStaleness: 1,
        importanceSampling: { mode: "token_truncate", cap: 2 },
      },
      3,
    ),
    { log: () => {} },
  );
  assert.equal(r.steps, 3);
  const ms = r.metrics as Record<string, number>[];
  assert.deepEqual(
    ms.map((m) => m["rollout/prefetched"]),
    [0, 1, 1],
  );
  assert.deepEqual(
    ms.map((m) => m["pool/policy_lag_max"]),
    [0, 1, 1],
    "step 1 samples version 0; steps 2 and 3 sample the version before the one they train",
  );
  for (const m of ms) {
    assert.equal(m["pool/requests"], B);
    assert.equal(m["pool/workers_up"], 2);
    assert.ok(Number.isFinite(m["sampler/is_ratio/mean"]));
  }
  assert.ok((ms[0]?.["sampler/logprob_abs_diff_mean"] as number) < 1e-4, "step 1 trains the weights it sampled");
  assert.ok((ms[1]?.["sampler/logprob_abs_diff_mean"] as number) > 1e-6, "step 2 trains one update past them");
  // pushes of versions 0 (before step 1) and 1 (after step 2's batch, before step 3's); none after the last batch
  for (const [i, s] of [a, b].entries())
    assert.equal((await health(s)).weightsVersion, (before[i] as number) + 2, `${s.url}`);
});

test("a worker killed mid-run is dropped; its requests are retried on the other and no sample is lost", async () => {
  const aBefore = (await health(a)).weightsVersion as number;
  let killed = false;
  const r = await train(
    config(
      { baseUrls: [`${a.url}/v1`, `${b.url}/v1`], syncWeights: true, syncEvery: 2, maxStaleness: 1, backoffMs: 10 },
      3,
    ),
    {
      log: () => {},
      onStep: (m) => {
        if (m.step !== 1) return;
        // kill b after step 1: the pool still counts it up, so step 2 sends it requests, which fail at the
        // connection (refused or reset) and go to a (no weight push before step 2 with syncEvery 2)
        b.child.kill("SIGKILL");
        killed = true;
      },
    },
  );
  assert.ok(killed, "the worker was not killed");
  assert.equal(r.steps, 3, "the run completes");
  const [m1, m2, m3] = r.metrics as Record<string, number>[];
  assert.equal(m1?.["pool/workers_up"], 2);
  assert.ok((m2?.["pool/requests_retried"] as number) >= 1, "b's request was retried on a");
  assert.equal(m2?.["pool/requests"], B + (m2?.["pool/requests_retried"] as number));
  assert.equal(m2?.["pool/workers_down_events"], 1);
  assert.equal(m2?.["pool/workers_up"], 1);
  assert.equal(m2?.["pool/policy_lag_max"], 1, "step 2 samples version 0 while the policy is at 1");
  assert.equal(m3?.["pool/policy_lag_max"], 0, "the snapshot pushed before step 3 reached a");
  assert.equal(m3?.["pool/requests_retried"], 0);
  assert.equal((await health(a)).weightsVersion, aBefore + 2, "a loaded the pushes before steps 1 and 3");

  // the pool on its own: a dead worker's refused connections are retried, every group gets its G samples
  const pool = new RolloutPool({ baseUrls: [`${b.url}/v1`, `${a.url}/v1`], backoffMs: 10 });
  try {
    const prompts = [1, 2, 3, 4].flatMap((k) => Array.from({ length: G }, () => [k + 3, 5, k + 4]));
    const out = (await new RemoteSampler({ client: pool, model: "arithmetic-tiny" }).generate(prompts, {
      maxTokens: 8,
      seed: 7,
    })) as VersionedCompletion[];
    assert.equal(out.length, 4 * G);
    for (const c of out) {
      assert.ok(c.tokens.length > 0 && c.logprobs.length === c.tokens.length);
      assert.equal(c.policyVersion, 0);
    }
    const [wb, wa] = pool.workers();
    assert.equal(wb?.up, false);
    assert.equal(wb?.served, 0);
    assert.equal(wa?.served, 4);
    assert.ok((pool.takeMetrics()["pool/requests_retried"] as number) >= 1);
  } finally {
    pool.close();
  }
});

test("config: exactly one of baseUrl and baseUrls; maxStaleness needs syncWeights and covers syncEvery", () => {
  const bad = (sampler: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => config(sampler, 1),
      (e: unknown) => e instanceof ConfigError && e.path.startsWith("sampler") && re.test(e.message),
    );
  bad({}, /exactly one of sampler.baseUrl/);
  bad({ baseUrl: "http://127.0.0.1:1/v1", baseUrls: ["http://127.0.0.1:2/v1"] }, /exactly one/);
  bad({ baseUrls: [] }, /./);
  bad({ baseUrls: ["http://127.0.0.1:1/v1"], maxStaleness: 2 }, /syncWeights: true/);
  bad({ baseUrls: ["http://127.0.0.1:1/v1"], syncWeights: true, syncEvery: 4, maxStaleness: 2 }, /up to 3 versions/);
  const ok = config({ baseUrls: ["http://127.0.0.1:1/v1"], syncWeights: true, syncEvery: 2, maxStaleness: 1 }, 1);
  assert.equal(ok.sampler.kind === "openai" && ok.sampler.syncEvery, 2);
  assert.throws(() => new RolloutPool({ baseUrls: ["http://127.0.0.1:1/v1", "http://127.0.0.1:1"] }), /twice/);
});
