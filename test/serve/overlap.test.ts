// sampler.overlap against stand-in workers whose completions depend only on the request: step k+1's requests are
// on the wire before step k's update (checked from a worker in another process), the prompts and the trained
// batches are those of overlap 0, and a run stopped with a batch under way resumes to the same trajectory.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { requestSeed, train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "../train/helpers.js";
import { http, sleep } from "./helpers.js";
import { type LoggedRequest, type StandIn, startStandIn } from "./standin.js";

const PARITY = resolve("test/fixtures/rewards/parity.ts");
const B = 3;
const G = 4;
const SEED = 5;

function config(root: string, name: string, baseUrl: string, sampler: Record<string, unknown>, steps: number) {
  return parseTrainConfig({
    name,
    outputDir: root,
    seed: SEED,
    threads: 1,
    model: { path: model },
    task: { name: "arithmetic", options: { digits: [1, 2] } },
    rewards: [`${PARITY}#parity`, "correctness"],
    train: { steps, promptsPerStep: B, groupSize: G, lr: 3e-3 },
    sampling: { maxNewTokens: 6 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    sampler: { kind: "openai", model: "stand-in", baseUrls: [`${baseUrl}/v1`], ...sampler },
  });
}

/** The step of a request, from its seed (requestSeed of the step's first row of the group). */
function stepOf(seed: number, steps: number): number {
  for (let k = 1; k <= steps; k++) for (let i = 0; i < B * G; i++) if (requestSeed(SEED, k, i) === seed) return k;
  throw new Error(`seed ${seed} is no request seed of steps 1..${steps}`);
}

/** Seed → prompt ids of the completions requests, and how often each seed was requested. */
function prompts(log: LoggedRequest[]) {
  const bySeed = new Map<number, string>();
  const times = new Map<number, number>();
  for (const r of log) {
    if (r.path !== "/v1/completions") continue;
    const s = r.seed as number;
    const p = JSON.stringify(r.prompt);
    const seen = bySeed.get(s);
    if (seen !== undefined) assert.equal(p, seen, `seed ${s} was sent with two different prompts`);
    bySeed.set(s, p);
    times.set(s, (times.get(s) ?? 0) + 1);
  }
  return { bySeed, times };
}

/** Deterministic metrics without the rollout bookkeeping (pool/…, rollout/…), which overlap changes by design. */
const trained = (ms: MetricRecord[]) =>
  ms.map((m) =>
    Object.fromEntries(
      Object.entries(deterministicPart(m)).filter(([k]) => !k.startsWith("pool/") && !k.startsWith("rollout/")),
    ),
  );

let model: string;
let standIn: StandIn;
before(async () => {
  model = tinyModelDir(2);
  standIn = await startStandIn();
});
after(() => standIn.stop());

test("overlap 1 draws the same prompts per step and trains the same batches as overlap 0", async () => {
  const root = tmpRunRoot();
  const run = async (overlap: number) => {
    standIn.log.length = 0;
    const r = await train(config(root, `o${overlap}`, standIn.url, { overlap }, 4), { log: () => {} });
    return { r, ...prompts(standIn.log) };
  };
  const o0 = await run(0);
  const o1 = await run(1);
  assert.equal(o0.bySeed.size, 4 * B, "one request per group");
  assert.deepEqual([...o1.bySeed.entries()].sort(), [...o0.bySeed.entries()].sort());
  assert.ok(
    new Set(o0.bySeed.values()).size > B,
    "different steps draw different prompts, so equal maps are not trivial",
  );
  // the stand-in's completions depend only on the request: the same batches, so the same updates
  assert.ok(
    o0.r.metrics.some((m) => (m.grad_norm as number) > 1e-3),
    "the run learns",
  );
  assert.deepEqual(trained(o1.r.metrics), trained(o0.r.metrics));
  assert.deepEqual(
    o1.r.metrics.map((m) => m["rollout/prefetched"]),
    [0, 1, 1, 1],
  );
  assert.equal(o0.r.metrics[0]?.["rollout/prefetched"], undefined, "overlap 0 logs no prefetch metrics");
  for (const m of [...o0.r.metrics, ...o1.r.metrics]) {
    assert.equal(m["pool/requests"], B, `step ${m.step}: the pool metrics cover exactly the step's requests`);
    assert.equal(typeof m["time/rollout_wait_s"], "number");
  }
});

test("a run stopped with a batch under way resumes to the uninterrupted trajectory; the batch is regenerated", async () => {
  const root = tmpRunRoot();
  standIn.log.length = 0;
  const full = await train(config(root, "full", standIn.url, { overlap: 1 }, 4), { log: () => {} });
  const fullPrompts = prompts(standIn.log);

  standIn.log.length = 0;
  const stop = { stop: false };
  const cfg = config(root, "stopped", standIn.url, { overlap: 1 }, 4);
  const first = await train(cfg, {
    log: () => {},
    stopSignal: stop,
    onStep: (m) => {
      if (m.step === 2) stop.stop = true;
    },
  });
  assert.equal(first.steps, 2);
  assert.ok(first.stoppedEarly);
  const resumed = await train(cfg, { resume: true, log: () => {} });
  assert.equal(resumed.steps, 4);
  const got = prompts(standIn.log);
  assert.deepEqual([...got.bySeed.entries()].sort(), [...fullPrompts.bySeed.entries()].sort());
  // step 3's batch was requested before the stop (during step 2's update), dropped, and requested again
  for (const [seed, n] of got.times) assert.equal(n, stepOf(seed, 4) === 3 ? 2 : 1, `seed of step ${stepOf(seed, 4)}`);
  assert.deepEqual(trained(resumed.metrics), trained(full.metrics));
});

test("overlap 1: step k+1's requests reach a worker in another process before step k's update; overlap 0: after", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "test/serve/standin.ts"]);
  let err = "";
  child.stderr.on("data", (d) => {
    err += d;
  });
  const exited = new Promise((r) => child.on("exit", r));
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) res(m[1] as string);
      });
      void exited.then(() => rej(new Error(`the stand-in exited:\n${err}`)));
    });
    const root = tmpRunRoot();
    const steps = 3;
    for (const overlap of [0, 1]) {
      // the synchronous part of step k (update, logging, onStep) is made 300 ms longer: the worker sees step
      // k+1's requests during it only if they were written before it began
      const blockEnd: number[] = [];
      const since = Date.now();
      await train(config(root, `t${overlap}`, url, { overlap }, steps), {
        log: () => {},
        onStep: (m) => {
          const end = Date.now() + 300;
          while (Date.now() < end);
          blockEnd[m.step as number] = Date.now();
        },
      });
      const log = ((await http(`${url}/log`, "GET")).json() as LoggedRequest[]).filter(
        (r) => r.path === "/v1/completions" && r.at >= since,
      );
      assert.equal(log.length, steps * B);
      for (const r of log) {
        const k = stepOf(r.seed as number, steps);
        if (k === 1) continue;
        const end = blockEnd[k - 1] as number;
        if (overlap === 1)
          assert.ok(r.at < end, `step ${k}'s request arrived ${r.at - end} ms after step ${k - 1}'s update block`);
        else assert.ok(r.at > end, `overlap 0: step ${k}'s request arrived before step ${k - 1}'s update ended`);
      }
    }
  } finally {
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(5_000)]);
  }
});

test("config: overlap needs remote workers and fits in maxStaleness", () => {
  const bad = (sampler: Record<string, unknown>, path: string, re: RegExp) =>
    assert.throws(
      () => parseTrainConfig({ model: { path: "m" }, task: { name: "arithmetic" }, sampler }),
      (e: unknown) => e instanceof ConfigError && e.path === path && re.test(e.message),
    );
  bad({ kind: "local", overlap: 1 }, "sampler.overlap", /remote workers .* Use sampler.kind openai/);
  const pool = { kind: "openai", model: "m", baseUrls: ["http://127.0.0.1:1/v1"], syncWeights: true };
  bad(
    { ...pool, overlap: 2, maxStaleness: 1 },
    "sampler.overlap",
    /up to 2 policy versions .* raise maxStaleness to 2/,
  );
  bad({ ...pool, overlap: 1, syncEvery: 2, maxStaleness: 1 }, "sampler.overlap", /up to 2 policy versions/);
  bad({ ...pool, overlap: -1 }, "sampler.overlap", />=0/);
  const ok = parseTrainConfig({
    model: { path: "m" },
    task: { name: "arithmetic" },
    sampler: { ...pool, overlap: 1, maxStaleness: 1 },
  });
  assert.equal(ok.sampler.kind === "openai" && ok.sampler.overlap, 1);
  assert.equal(
    parseTrainConfig({ model: { path: "m" }, task: { name: "arithmetic" }, sampler: { kind: "local", overlap: 0 } })
      .sampler.kind,
    "local",
  );
});
