// Weight sync to SGLang workers (POST /update_weights_from_disk {model_path}) against a stand-in SGLang server
// that checks the request and loads model_path with readModelDir: the API is detected per worker, the snapshot
// is a Hugging Face model directory, a pool may mix SGLang and cohort serve, and a refusal names the worker.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { CohortError } from "../../src/errors.js";
import { readModelDir } from "../../src/io/hf.js";
import { OpenAIClient, OpenAIError } from "../../src/serve/client.js";
import { detectWorkerApi, loadWorkerWeights, RolloutPool } from "../../src/serve/pool.js";
import { dispose } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";
import { http, type ServeProcess, startServe } from "./helpers.js";
import { type StandIn, startStandIn } from "./standin.js";

function config(sampler: Record<string, unknown>, steps: number) {
  return parseTrainConfig({
    name: "sglang",
    outputDir: tmpRunRoot(),
    seed: 3,
    threads: 1,
    model: { path: model },
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    rewards: [`${resolve("test/fixtures/rewards/parity.ts")}#parity`],
    train: { steps, promptsPerStep: 2, groupSize: 4, lr: 1e-2 },
    sampling: { maxNewTokens: 6 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    sampler: { kind: "openai", model: "stand-in", syncWeights: true, ...sampler },
  });
}

const infoProbes = (s: StandIn) => s.log.filter((r) => r.path === "/get_model_info").length;

let model: string;
let shapes: Record<string, number[]>;
let cohort: ServeProcess;
before(async () => {
  model = tinyModelDir(4);
  const dir = readModelDir(model);
  shapes = Object.fromEntries(Object.entries(dir.tensors).map(([k, t]) => [k, [...t.shape]]));
  dispose(dir.tensors);
  cohort = await startServe(model, ["--model-name", "stand-in"]);
});
after(async () => {
  assert.equal(await cohort.stop(), 0, cohort.stderr());
});

test("a pool of cohort serve and SGLang: each worker's API is detected once; both load every pushed model dir", async () => {
  const sglang = await startStandIn({ sglang: true });
  try {
    const cohortBefore = (await http(`${cohort.url}/health`, "GET")).json().weightsVersion as number;
    const r = await train(config({ baseUrls: [`${cohort.url}/v1`, `${sglang.url}/v1`] }, 3), { log: () => {} });
    assert.equal(r.steps, 3);
    assert.deepEqual(sglang.refused, [], "every update_weights_from_disk request was well formed and loadable");
    assert.equal(sglang.loads.length, 3, "pushes before steps 1, 2 and 3");
    for (const l of sglang.loads) {
      assert.equal(l.modelPath, join(r.runDir, "sync", "model"));
      assert.deepEqual(l.shapes, shapes, "the snapshot holds the policy's tensors under their Hugging Face names");
    }
    const sums = sglang.loads.map((l) => l.checksum);
    assert.ok(sums[0] !== sums[1] && sums[1] !== sums[2], `each push carries the updated weights: ${sums}`);
    assert.equal(infoProbes(sglang), 1, "the API is detected once");
    assert.equal((await http(`${cohort.url}/health`, "GET")).json().weightsVersion, cohortBefore + 3);
    assert.ok(existsSync(join(r.runDir, "sync", "model", "config.json")));
    assert.ok(!existsSync(join(r.runDir, "sync", "model.safetensors")), "no file snapshot next to the directory");
    const last = r.metrics.at(-1) as Record<string, number>;
    assert.ok((last["pool/served/0"] as number) > 0 && (last["pool/served/1"] as number) > 0);
  } finally {
    await sglang.stop();
  }
});

test("one SGLang endpoint (baseUrl): detected, or named by workerApi without a probe", async () => {
  const sglang = await startStandIn({ sglang: true });
  try {
    await train(config({ baseUrl: `${sglang.url}/v1` }, 2), { log: () => {} });
    assert.equal(sglang.loads.length, 2);
    assert.equal(infoProbes(sglang), 1);
    await train(config({ baseUrl: `${sglang.url}/v1`, workerApi: "sglang" }, 1), { log: () => {} });
    assert.equal(sglang.loads.length, 3);
    assert.equal(infoProbes(sglang), 1, "workerApi: sglang needs no detection");
    // cohort serve (and vLLM) answer 404 to /get_model_info: cohort
    assert.equal(await detectWorkerApi(new OpenAIClient({ baseUrl: cohort.url })), "cohort");
    assert.equal(await detectWorkerApi(new OpenAIClient({ baseUrl: sglang.url })), "sglang");
  } finally {
    await sglang.stop();
  }
});

test("an SGLang refusal fails the sync with the worker, the path and its message", async () => {
  const message = "Failed to get weights iterator: size mismatch for model.norm.weight";
  for (const status of [400, 200]) {
    const sglang = await startStandIn({ sglang: true, updateResult: { status, success: false, message } });
    try {
      await assert.rejects(train(config({ baseUrls: [`${sglang.url}/v1`] }, 1), { log: () => {} }), (e: unknown) => {
        assert.ok(e instanceof CohortError);
        assert.match(
          e.message,
          new RegExp(
            `^weight sync: SGLang worker ${sglang.url} could not load the weights at \\S+/sync/model: ${message}; the SGLang worker must read`,
          ),
        );
        return true;
      });
    } finally {
      await sglang.stop();
    }
  }
  // the stand-in's own checks: a path that is no model directory is refused with SGLang's 400 and message
  const sglang = await startStandIn({ sglang: true });
  try {
    const client = new OpenAIClient({ baseUrl: sglang.url, maxRetries: 0 });
    const missing = join(tmpdir(), "cohort-no-such-model");
    await assert.rejects(
      client.updateWeightsFromDisk(missing),
      (e: unknown) =>
        e instanceof OpenAIError &&
        e.status === 400 &&
        e.message.startsWith(
          `SGLang worker ${sglang.url} could not load the weights at ${missing}: Failed to load weights`,
        ),
    );
    // a safetensors file is refused before any request: SGLang loads directories
    const file = join(mkdtempSync(join(tmpdir(), "cohort-snap-")), "model.safetensors");
    writeFileSync(file, "");
    await assert.rejects(
      loadWorkerWeights(client, "sglang", file),
      /loads a Hugging Face model directory .*not the file/,
    );
    const pool = new RolloutPool({ baseUrls: [`${sglang.url}/v1`], workerApi: "sglang" });
    assert.equal(await pool.needsModelDir(), true);
    pool.close();
    const cohortOnly = new RolloutPool({ baseUrls: [`${sglang.url}/v1`], workerApi: "cohort" });
    assert.equal(await cohortOnly.needsModelDir(), false);
    cohortOnly.close();
    assert.equal(sglang.loads.length, 0);
    assert.equal(infoProbes(sglang), 0, "an explicit workerApi is not probed");
  } finally {
    await sglang.stop();
  }
});

test("detection: a worker that answers /get_model_info with 503 is not taken for cohort serve but marked down", async () => {
  const server = createServer((_req, res) => {
    res.writeHead(503, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "loading" } }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pool = new RolloutPool({ baseUrls: [`${url}/v1`], healthIntervalMs: 60_000 });
  try {
    await assert.rejects(detectWorkerApi(new OpenAIClient({ baseUrl: url, maxRetries: 0 })), /HTTP 503: loading/);
    assert.equal(await pool.needsModelDir(), true, "undetected: the snapshot must suit SGLang too");
    const [w] = pool.workers();
    assert.equal(w?.up, false);
    assert.equal(w?.api, null);
    assert.match(w?.lastError ?? "", /^weight API detection: .*HTTP 503/);
  } finally {
    pool.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
