// `cohort serve` beyond localhost (docs/SECURITY.md), in-process on 127.0.0.1 serving models/arithmetic-tiny:
// API and admin keys (401 with OpenAI's error body; /health open), reloads confined to --weights-dir (one 403
// for outside paths whether or not they exist, symlinks included), SHA-256 checks that leave the weights as they
// were, pushed snapshots and their size cap, the refusal to listen beyond loopback without a key, and the
// trainer's pool and client sending the keys end to end.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { CohortError, ConfigError } from "../../src/errors.js";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { Auth, checkBind, isLoopbackHost } from "../../src/serve/auth.js";
import { OpenAIClient, OpenAIError } from "../../src/serve/client.js";
import { loadServedModel, type ServedModel } from "../../src/serve/load.js";
import { RolloutPool } from "../../src/serve/pool.js";
import { remoteRollouts } from "../../src/serve/remote-sampler.js";
import { defaultMaxPushBytes, type RunningServer, startServer } from "../../src/serve/server.js";
import { dispose, type Tensor, tidy } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { http } from "./helpers.js";

const MODEL = resolve("models/arithmetic-tiny");
const API = "api-key-for-tests-1";
const ADMIN = "admin-key-for-tests-2";
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let served: ServedModel;
let srv: RunningServer;
let weights: string; // the server's --weights-dir
let outside: string; // a directory next to it
let original: Buffer; // the served weights as a snapshot
let changed: Buffer; // weights with the final norm halved (every log-prob moves)

/** Log-probs and tokens of one seeded completion: what a weight swap would change. */
async function probe(s: RunningServer = srv): Promise<{ tokens: number[]; lps: number[]; version: string }> {
  const r = await http(
    `${s.url}/v1/completions`,
    "POST",
    { prompt: "4+4=", max_tokens: 8, seed: 2, logprobs: 0, return_token_ids: true },
    bearer(API),
  );
  assert.equal(r.status, 200, r.body);
  const c = r.json().choices[0];
  return { tokens: c.token_ids, lps: c.logprobs.token_logprobs, version: r.json().system_fingerprint };
}

const reload = (body: unknown, key = ADMIN) => http(`${srv.url}/v1/reload`, "POST", body, bearer(key));
const push = (bytes: Uint8Array, headers: Record<string, string> = {}, key = ADMIN) =>
  http(`${srv.url}/v1/reload`, "POST", bytes, {
    "content-type": "application/octet-stream",
    ...bearer(key),
    ...headers,
  });
const version = async (s: RunningServer = srv) => (await http(`${s.url}/health`, "GET")).json().weightsVersion;

before(async () => {
  weights = mkdtempSync(join(tmpdir(), "cohort-weights-"));
  outside = mkdtempSync(join(tmpdir(), "cohort-outside-"));
  served = loadServedModel(MODEL);
  const m = served.model;
  const file = (name: string, scale: number) => {
    const t = tidy(() =>
      Object.fromEntries(
        m.namedParameters().map(([n, p]) => [n, n === "model.norm.weight" ? p.detach().mul(scale) : p.detach()]),
      ),
    ) as Record<string, Tensor>;
    const path = join(outside, name);
    writeSafetensors(path, t, { format: "pt" });
    dispose(t);
    return readFileSync(path);
  };
  original = file("original.safetensors", 1);
  changed = file("model.safetensors", 0.5);
  srv = await startServer(served, { port: 0, apiKey: API, adminKey: ADMIN, weightsDir: weights, seed: 0 });
});

after(async () => {
  await srv.close();
  served.model.dispose();
});

describe("keys", () => {
  test("/health needs no key; every other route needs the API key, else 401 with OpenAI's error body", async () => {
    assert.equal((await http(`${srv.url}/health`, "GET")).status, 200);
    const none = await http(`${srv.url}/v1/models`, "GET");
    assert.equal(none.status, 401);
    assert.equal(none.headers["www-authenticate"], "Bearer");
    assert.deepEqual(Object.keys(none.json().error).sort(), ["code", "message", "param", "type"]);
    assert.equal(none.json().error.type, "invalid_request_error");
    assert.equal(none.json().error.code, "invalid_api_key");
    assert.match(none.json().error.message, /^missing API key: .*Authorization: Bearer <key>/);
    for (const wrong of [`${API}x`, API.slice(0, -1), "k", ADMIN.replace("2", "3")]) {
      const r = await http(`${srv.url}/v1/models`, "GET", undefined, bearer(wrong));
      assert.equal(r.status, 401, wrong);
      assert.equal(r.json().error.code, "invalid_api_key");
      assert.match(r.json().error.message, /^invalid API key/);
    }
    const basic = await http(`${srv.url}/v1/models`, "GET", undefined, { authorization: `Basic ${API}` });
    assert.equal(basic.status, 401, "only bearer tokens count");
    for (const k of [API, ADMIN])
      assert.equal((await http(`${srv.url}/v1/models`, "GET", undefined, bearer(k))).status, 200);
    const body = { prompt: "1+1=", max_tokens: 2 };
    assert.equal((await http(`${srv.url}/v1/completions`, "POST", body)).status, 401);
    assert.equal((await http(`${srv.url}/v1/chat/completions`, "POST", { messages: [] })).status, 401);
    assert.equal((await http(`${srv.url}/v1/completions`, "POST", body, bearer(API))).status, 200);
    // routes are not told apart before the key is checked
    assert.equal((await http(`${srv.url}/v1/nothing`, "GET")).status, 401);
    assert.equal((await http(`${srv.url}/v1/nothing`, "GET", undefined, bearer(API))).status, 404);
  });

  test("loading weights needs the admin key; the API key alone is refused", async () => {
    const v = await version();
    const file = join(weights, "keys.safetensors");
    writeFileSync(file, changed);
    for (const key of [API, "nope"]) {
      const r = await reload({ path: file }, key);
      assert.equal(r.status, 401, r.body);
      assert.equal(r.json().error.code, "invalid_api_key");
      assert.match(r.json().error.message, /admin key \(--admin-key or COHORT_ADMIN_KEY\)/);
      assert.equal((await push(changed, {}, key)).status, 401);
    }
    assert.equal((await http(`${srv.url}/v1/reload`, "POST", { path: file })).status, 401);
    assert.equal(await version(), v, "no reload happened");
  });

  test("Auth refuses unusable keys; an OpenAIClient without the key gets the 401 at once (not retried)", async () => {
    assert.throws(() => new Auth({ apiKey: "has space" }), ConfigError);
    assert.throws(() => new Auth({ apiKey: "" }), ConfigError);
    assert.throws(() => new Auth({ apiKey: "same", adminKey: "same" }), /protects nothing more/);
    const client = new OpenAIClient({ baseUrl: srv.url, maxRetries: 3, backoffMs: 1 });
    await assert.rejects(
      client.completions({ prompt: "1+1=", max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAIError && e.status === 401 && /missing API key/.test(e.message),
    );
    assert.equal(client.stats.attempts, 1);
    client.close();
  });
});

describe("reloads", () => {
  test("a path outside --weights-dir is one 403, whether it exists or not, symlinks and .. included", async () => {
    const v = await version();
    const base = await probe();
    symlinkSync(join(outside, "model.safetensors"), join(weights, "escape.safetensors"));
    symlinkSync(outside, join(weights, "link"));
    // a model directory inside whose weights file escapes
    const dir = join(weights, "dir");
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), readFileSync(join(MODEL, "config.json")));
    symlinkSync(join(outside, "model.safetensors"), join(dir, "model.safetensors"));
    const paths = [
      join(outside, "model.safetensors"), // exists, loadable
      join(outside, "missing.safetensors"), // does not exist
      join(weights, "escape.safetensors"), // a symlink out
      join(weights, "link", "model.safetensors"), // through a symlinked directory
      join(weights, "link", "missing.safetensors"),
      join(weights, "..", basename(outside), "model.safetensors"), // ..
      dir,
      "/etc/passwd",
      "/nonexistent/x.safetensors",
      join(weights, "missing.safetensors"), // inside, but nothing there
    ];
    let first: string | null = null;
    for (const p of paths) {
      const r = await reload({ path: p });
      assert.equal(r.status, 403, `${p}: ${r.body}`);
      first ??= r.body;
      assert.equal(r.body, first, `${p}: the answer must not tell whether the path exists`);
    }
    const err = JSON.parse(first as string).error;
    assert.equal(err.param, "path");
    assert.match(err.message, new RegExp(`inside its weights directory ${weights} \\(--weights-dir\\)`));
    assert.equal(await version(), v);
    assert.deepEqual(await probe(), base, "the weights are unchanged");

    // inside: loads (and the probe sees it), then the original weights come back by push
    const inside = join(weights, "model.safetensors");
    writeFileSync(inside, changed);
    const ok = await reload({ path: inside });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json().sha256, sha256(changed));
    assert.notDeepEqual((await probe()).lps, base.lps, "the reload changed the log-probs");
    const back = await push(original, { "x-cohort-sha256": sha256(original) });
    assert.equal(back.status, 200, back.body);
    assert.equal(back.json().bytes, original.length);
    const again = await probe();
    assert.deepEqual({ tokens: again.tokens, lps: again.lps }, { tokens: base.tokens, lps: base.lps });
  });

  test("a sha256 mismatch answers 400 and leaves the weights (and log-probs) as they were", async () => {
    const inside = join(weights, "checked.safetensors");
    writeFileSync(inside, changed);
    const v = await version();
    const base = await probe();
    const wrong = sha256(original); // a real hash, of other bytes
    const r = await reload({ path: inside, sha256: wrong });
    assert.equal(r.status, 400, r.body);
    assert.equal(r.json().error.param, "sha256");
    assert.match(r.json().error.message, new RegExp(`hashes to sha256 ${sha256(changed)}, not the ${wrong}`));
    const malformed = await reload({ path: inside, sha256: "abc" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json().error.param, "sha256");
    assert.match(malformed.json().error.message, /64 hex digits/);
    const pushed = await push(changed, { "x-cohort-sha256": wrong });
    assert.equal(pushed.status, 400, pushed.body);
    assert.equal(pushed.json().error.param, "X-Cohort-Sha256");
    assert.equal((await push(changed, { "x-cohort-sha256": "zz" })).status, 400);
    // a torn push: the right hash, bytes cut short
    const torn = await push(changed.subarray(0, changed.length - 100), { "x-cohort-sha256": sha256(changed) });
    assert.equal(torn.status, 400);
    assert.equal(await version(), v, "no swap happened");
    assert.deepEqual(await probe(), base, "same tokens and log-probs as before the refused loads");
    // the right hash loads (upper-case hex is the same hash)
    const good = await reload({ path: inside, sha256: sha256(changed).toUpperCase() });
    assert.equal(good.status, 200, good.body);
    assert.equal(await version(), v + 1);
    assert.equal((await push(original, { "x-cohort-sha256": sha256(original) })).status, 200);
  });

  test("a push over --max-push-mb answers 413 before the body is read; the default fits the model's fp32 weights", async () => {
    assert.equal(srv.maxPushBytes, defaultMaxPushBytes(served.model));
    assert.ok(srv.maxPushBytes >= original.length && srv.maxPushBytes < 2 * original.length + (2 << 20));
    const v = await version();
    const r = await new Promise<{ status: number; body: string }>((res, rej) => {
      const req = request(
        `${srv.url}/v1/reload`,
        {
          method: "POST",
          headers: {
            ...bearer(ADMIN),
            "content-type": "application/octet-stream",
            "content-length": String(srv.maxPushBytes + 1),
          },
        },
        (resp) => {
          let body = "";
          resp.on("data", (c) => {
            body += c;
          });
          resp.on("end", () => res({ status: resp.statusCode ?? 0, body }));
        },
      );
      req.on("error", rej);
      req.write(Buffer.alloc(1024)); // the rest never comes: the declared length is refused
    });
    assert.equal(r.status, 413, r.body);
    assert.match(JSON.parse(r.body).error.message, new RegExp(`limit is ${srv.maxPushBytes} \\(--max-push-mb`));
    // a streamed (chunked) body over a small cap: 413, or the connection is cut mid-upload
    const small = await startServer(served, { port: 0, weightsDir: weights, maxPushBytes: 4096 });
    try {
      const status = await new Promise<number | string>((res) => {
        const req = request(
          `${small.url}/v1/reload`,
          { method: "POST", headers: { "content-type": "application/octet-stream", "transfer-encoding": "chunked" } },
          (resp) => {
            resp.resume();
            resp.on("end", () => res(resp.statusCode ?? 0));
          },
        );
        req.on("error", (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
        for (let i = 0; i < 8; i++) req.write(original.subarray(i * 2048, (i + 1) * 2048));
        req.end();
      });
      assert.ok(status === 413 || status === "ECONNRESET" || status === "EPIPE", `got ${status}`);
      assert.equal(await version(small), 0);
    } finally {
      await small.close();
    }
    assert.equal(await version(), v);
  });
});

describe("listening beyond loopback", () => {
  test("loopback is 127.0.0.0/8, ::1 and localhost; nothing else", () => {
    for (const h of ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "192.0.2.7", "::ffff:10.0.0.1", "example.com", "127.1"])
      assert.ok(!isLoopbackHost(h), h);
  });

  test("without an API key any other address is refused before anything listens", async () => {
    for (const host of ["0.0.0.0", "::", "10.1.2.3"]) {
      assert.throws(
        () => checkBind(host, false, false),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message.startsWith(`--host ${host} is not a loopback address`) &&
          /--api-key or COHORT_API_KEY/.test(e.message) &&
          /--insecure-no-auth/.test(e.message),
      );
      checkBind(host, true, false);
      checkBind(host, false, true);
    }
    checkBind("127.0.0.1", false, false);
    // startServer checks first; a TEST-NET address (never this machine's) keeps a regression from listening
    await assert.rejects(startServer(served, { host: "192.0.2.7", port: 0 }), /--insecure-no-auth/);
    await assert.rejects(startServer(served, { host: "192.0.2.7", port: 0, adminKey: ADMIN }), ConfigError);
  });

  test("cohort serve --host <not loopback> without a key exits 2 naming --api-key and --insecure-no-auth", async () => {
    const env = { ...process.env };
    delete env.COHORT_API_KEY;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "serve",
        MODEL,
        "--host",
        "192.0.2.7",
        "--port",
        "0",
        "--admin-key",
        ADMIN,
      ],
      { env },
    );
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    assert.equal(code, 2, err);
    assert.equal(out, "", "it never listened");
    assert.match(err, /^cohort serve: --host 192\.0\.2\.7 is not a loopback address/);
    assert.match(err, /--api-key/);
    assert.match(err, /--insecure-no-auth/);
  });
});

describe("the trainer sends the keys", () => {
  const trainConfig = (outputDir: string, sampler: Record<string, unknown>) =>
    parseTrainConfig({
      name: "keys",
      outputDir,
      seed: 1,
      threads: 1,
      model: { path: MODEL },
      task: { name: "arithmetic", options: { ops: { add: 1, sub: 1 }, digits: [1, 2] } },
      train: { steps: 2, promptsPerStep: 2, groupSize: 4, lr: 3e-4 },
      sampling: { maxNewTokens: 16 },
      eval: { everySteps: 0 },
      checkpoint: { everySteps: 0 },
      sampler: { kind: "openai", model: "arithmetic-tiny", apiKeyEnv: "COHORT_TEST_API_KEY", ...sampler },
    });

  const withKeys = async <T>(admin: string | undefined, f: () => Promise<T>): Promise<T> => {
    const saved = { api: process.env.COHORT_TEST_API_KEY, admin: process.env.COHORT_ADMIN_KEY };
    process.env.COHORT_TEST_API_KEY = API;
    if (admin === undefined) delete process.env.COHORT_ADMIN_KEY;
    else process.env.COHORT_ADMIN_KEY = admin;
    try {
      return await f();
    } finally {
      for (const [k, v] of [
        ["COHORT_TEST_API_KEY", saved.api],
        ["COHORT_ADMIN_KEY", saved.admin],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };

  test("one endpoint, weightSync disk: rollouts carry the API key, reloads the admin key and the sha256", async () => {
    const v = await version();
    const r = await withKeys(ADMIN, () =>
      train(trainConfig(mkdtempSync(join(weights, "runs-")), { baseUrl: `${srv.url}/v1`, syncWeights: true }), {
        log: () => {},
      }),
    );
    assert.equal(r.steps, 2);
    assert.equal(await version(), v + 2, "both pushes loaded");
    for (const m of r.metrics) assert.ok((m["sampler/logprob_abs_diff_mean"] as number) < 1e-4);
    assert.equal((await push(original, { "x-cohort-sha256": sha256(original) })).status, 200);
  });

  test("a pool with weightSync push: workers whose --weights-dir holds no run still load every step", async () => {
    const otherModel = loadServedModel(MODEL);
    const empty = mkdtempSync(join(tmpdir(), "cohort-empty-"));
    const b = await startServer(otherModel, { port: 0, apiKey: API, adminKey: ADMIN, weightsDir: empty });
    try {
      const before = [await version(), await version(b)];
      const cfg = trainConfig(mkdtempSync(join(tmpdir(), "cohort-runs-")), {
        baseUrls: [`${srv.url}/v1`, `${b.url}/v1`],
        syncWeights: true,
        weightSync: "push",
      });
      const r = await withKeys(ADMIN, () => train(cfg, { log: () => {} }));
      assert.equal(r.steps, 2);
      assert.deepEqual([await version(), await version(b)], [before[0] + 2, before[1] + 2]);
      for (const m of r.metrics) {
        assert.equal(m["pool/workers_up"], 2);
        assert.ok((m["sampler/logprob_abs_diff_mean"] as number) < 1e-4, "both workers sample the trained weights");
      }
      const last = r.metrics.at(-1) as Record<string, number>;
      assert.ok((last["pool/served/0"] as number) > 0 && (last["pool/served/1"] as number) > 0);
    } finally {
      await b.close();
      otherModel.model.dispose();
    }
    assert.equal((await push(original, { "x-cohort-sha256": sha256(original) })).status, 200);
  });

  test("a sync without the admin key, or outside the worker's --weights-dir, fails naming the fix", async () => {
    const file = join(outside, "model.safetensors");
    const noAdmin = new RolloutPool({ baseUrls: [`${srv.url}/v1`], client: { apiKey: API }, workerApi: "cohort" });
    await assert.rejects(
      noAdmin.sync(join(weights, "model.safetensors"), 1),
      (e: unknown) =>
        e instanceof CohortError && /HTTP 401: .*admin key/.test(e.message) && /COHORT_ADMIN_KEY/.test(e.message),
    );
    noAdmin.close();
    const admin = new RolloutPool({
      baseUrls: [`${srv.url}/v1`],
      client: { apiKey: API, adminKey: ADMIN },
      workerApi: "cohort",
    });
    await assert.rejects(
      admin.sync(file, 1),
      (e: unknown) =>
        e instanceof CohortError &&
        /HTTP 403/.test(e.message) &&
        /--weights-dir covering .*weightSync: push/.test(e.message),
    );
    admin.close();
    // config: weightSync is disk or push, and push needs syncWeights and cohort serve workers
    const base = { baseUrl: "http://127.0.0.1:1/v1" };
    const cfg = trainConfig(tmpdir(), base);
    assert.equal(cfg.sampler.kind === "openai" && cfg.sampler.weightSync, "disk");
    assert.throws(
      () => trainConfig(tmpdir(), { ...base, weightSync: "ftp" }),
      (e: unknown) => e instanceof ConfigError && e.path === "sampler.weightSync",
    );
    for (const [extra, re] of [
      [{ weightSync: "push" }, /syncWeights is off/],
      [{ weightSync: "push", syncWeights: true, workerApi: "sglang" }, /only cohort serve accepts/],
    ] as const) {
      const c = trainConfig(tmpdir(), { ...base, ...extra });
      assert.ok(c.sampler.kind === "openai");
      await withKeys(undefined, async () =>
        assert.throws(() => remoteRollouts(c.sampler as Parameters<typeof remoteRollouts>[0], tmpdir(), () => {}), re),
      );
    }
  });
});
