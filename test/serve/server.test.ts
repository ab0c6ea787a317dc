// `cohort serve` as a real child process on loopback, serving models/arithmetic-tiny: the OpenAI wire format,
// log-probs equal to the model's own, validation errors, concurrency, streaming, disconnects and reloads.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { packBatch } from "../../src/model/batch.js";
import { CausalLM } from "../../src/model/llama.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { loadServedModel } from "../../src/serve/load.js";
import { noGrad, type Tensor, tidy } from "../../src/tensor/index.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { http, type ServeProcess, sleep, sse, startServe, waitFor } from "./helpers.js";

const MODEL = "models/arithmetic-tiny";

/** log softmax(logits / T)[token] of each completion token under `m`. */
function ownLogprobs(m: CausalLM, prompt: number[], tokens: number[], temperature: number): number[] {
  return noGrad(() =>
    tidy(() => {
      const b = packBatch([prompt], [tokens]);
      const lp = m.logprobs(b, { temperature }).lp.tolist() as number[][];
      return tokens.map((_, i) => lp[0]?.[b.promptLength + i] as number);
    }),
  );
}

describe("cohort serve", () => {
  let srv: ServeProcess;
  let model: CausalLM;
  let tok: Tokenizer;
  let weightsDir: string;
  const api = (p: string) => `${srv.url}/v1${p}`;

  before(async () => {
    weightsDir = mkdtempSync(join(tmpdir(), "cohort-reload-"));
    srv = await startServe(MODEL, ["--weights-dir", weightsDir]);
    ({ model, tokenizer: tok } = loadServedModel(MODEL));
  });
  after(async () => {
    model.dispose();
    assert.equal(await srv.stop(), 0, srv.stderr());
  });

  test("/v1/models lists the model with its context length", async () => {
    const r = await http(api("/models"), "GET");
    assert.equal(r.status, 200);
    const m = r.json().data[0];
    assert.equal(m.id, "arithmetic-tiny");
    assert.equal(m.max_model_len, 128);
  });

  test("completions: token ids and log-probs equal the model's own (< 1e-4), and LocalSampler's draws", async () => {
    const prompt = [tok.bosId as number, ...tok.encode("12+34=")];
    for (const temperature of [1, 0.7]) {
      const r = await http(api("/completions"), "POST", {
        model: "arithmetic-tiny",
        prompt: "12+34=",
        n: 3,
        max_tokens: 12,
        temperature,
        seed: 11,
        logprobs: 0,
        return_token_ids: true,
      });
      assert.equal(r.status, 200, r.body);
      const body = r.json();
      assert.equal(body.object, "text_completion");
      assert.equal(body.choices.length, 3);
      // the same seed through the in-process sampler: same tokens (row j draws from seed + j)
      const local = new LocalSampler(model, { padId: tok.padId }).generateSync([prompt, prompt, prompt], {
        maxTokens: 12,
        temperature,
        stopTokenIds: [tok.eosId],
        seed: 11,
      });
      let worst = 0;
      for (const [j, c] of body.choices.entries()) {
        assert.deepEqual(c.prompt_token_ids, prompt);
        assert.deepEqual(c.token_ids, local[j]?.tokens, `choice ${j}`);
        assert.equal(c.logprobs.token_logprobs.length, c.token_ids.length);
        const own = ownLogprobs(model, prompt, c.token_ids, temperature);
        own.forEach((x, i) => {
          worst = Math.max(worst, Math.abs(x - c.logprobs.token_logprobs[i]));
        });
        assert.equal(c.text, tok.decode(c.token_ids, { skipSpecialTokens: true }));
        assert.ok(["stop", "length"].includes(c.finish_reason));
      }
      assert.ok(worst < 1e-4, `max |Δ logprob| ${worst} at T=${temperature}`);
      assert.equal(body.usage.prompt_tokens, 3 * prompt.length);
    }
  });

  test("completions: token-id prompts, top log-probs, token_id:<id> spelling, stop strings cut the text", async () => {
    const prompt = [tok.bosId as number, ...tok.encode("5+7=")];
    const r = await http(api("/completions"), "POST", {
      prompt,
      max_tokens: 12,
      temperature: 0,
      logprobs: 2,
      return_tokens_as_token_ids: true,
      stop: ["</"],
    });
    assert.equal(r.status, 200, r.body);
    const c = r.json().choices[0];
    assert.equal(c.finish_reason, "stop");
    assert.ok(!c.text.includes("</"), c.text);
    const full = tok.decode(c.logprobs.tokens.map((t: string) => Number(t.slice(9))));
    assert.ok(full.startsWith(c.text) && full.includes("</"), `${full} vs ${c.text}`);
    for (const [i, alts] of c.logprobs.top_logprobs.entries()) {
      const vals = Object.values(alts as Record<string, number>);
      assert.equal(vals.length, 2);
      // greedy: the sampled token is the most likely one
      assert.ok(Math.abs(Math.max(...vals) - c.logprobs.token_logprobs[i]) < 1e-4);
    }
  });

  test("chat completions: the chat template, n choices, logprobs content and token ids", async () => {
    const r = await http(api("/chat/completions"), "POST", {
      messages: [{ role: "user", content: "3+4=" }],
      n: 2,
      max_tokens: 6,
      seed: 3,
      logprobs: true,
      top_logprobs: 1,
      return_token_ids: true,
    });
    assert.equal(r.status, 200, r.body);
    const body = r.json();
    assert.equal(body.object, "chat.completion");
    // BOS first, as in the trainer's prompts (this template does not write one)
    assert.deepEqual(body.prompt_token_ids, [
      tok.bosId,
      ...tok.encode(tok.applyChatTemplate([{ role: "user", content: "3+4=" }], { addGenerationPrompt: true })),
    ]);
    for (const c of body.choices) {
      assert.equal(c.message.role, "assistant");
      assert.equal(c.logprobs.content.length, c.token_ids.length);
      const own = ownLogprobs(model, body.prompt_token_ids, c.token_ids, 1);
      c.logprobs.content.forEach((e: { logprob: number }, i: number) => {
        assert.ok(Math.abs(e.logprob - (own[i] as number)) < 1e-4);
      });
    }
  });

  test("malformed JSON, invalid and oversized parameters: 4xx with a message naming the parameter", async () => {
    const bad = await http(api("/completions"), "POST", '{"prompt": "1+1=",');
    assert.equal(bad.status, 400);
    assert.match(bad.json().error.message, /not valid JSON/);
    assert.equal(bad.json().error.type, "invalid_request_error");
    const cases: [unknown, number, string | null, RegExp][] = [
      [{ prompt: "1+1=", temperature: -1 }, 400, "temperature", /temperature: Too small.*got -1/],
      [{ prompt: "1+1=", n: 1000 }, 400, "n", /exceeds this server's limit of 128/],
      [{ prompt: "1+1=", max_tokens: 1000 }, 400, "max_tokens", /exceed the context length 128/],
      [{ prompt: "1+1=", max_tokens: 0 }, 400, "max_tokens", /max_tokens/],
      [{ prompt: "1+1=", top_p: 0 }, 400, "top_p", /top_p/],
      [{ prompt: "1+1=", frequency_penalty: 0.5 }, 400, "frequency_penalty", /not supported/],
      [{ prompt: "1+1=", model: "gpt-4" }, 404, "model", /"gpt-4" is not served here/],
      [{ prompt: [1, 500] }, 400, "prompt", /token id 500 is outside the vocabulary/],
      [{ max_tokens: 3 }, 400, "prompt", /prompt/],
      [{ prompt: "1+1=", stop: Array(17).fill("x") }, 400, "stop", /at most 16 stop strings/],
      [{ prompt: "1+1=", seed: 1.5 }, 400, "seed", /seed/],
      [[1, 2], 400, null, /JSON object/],
    ];
    for (const [body, status, param, re] of cases) {
      const r = await http(api("/completions"), "POST", body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(r.json().error.param, param, r.body);
      assert.match(r.json().error.message, re);
    }
    const chat = await http(api("/chat/completions"), "POST", { messages: [], max_tokens: 2 });
    assert.equal(chat.status, 400);
    assert.equal(chat.json().error.param, "messages");
    const big = await http(api("/completions"), "POST", { prompt: "x".repeat(2 << 20) });
    assert.equal(big.status, 413);
    assert.equal((await http(api("/completions"), "GET")).status, 405);
    assert.equal((await http(`${srv.url}/v2/nothing`, "GET")).status, 404);
  });

  test("concurrent requests are batched together and all answered", async () => {
    const before = (await http(`${srv.url}/health`, "GET")).json();
    // a long request keeps the engine busy while the others queue, then they share one batch
    const long = http(api("/completions"), "POST", { prompt: "1+1=", n: 4, max_tokens: 100, ignore_eos: true });
    await sleep(50);
    const many = Array.from({ length: 6 }, (_, i) =>
      http(api("/completions"), "POST", { prompt: `${i}+${i}=`, max_tokens: 10, seed: i, return_token_ids: true }),
    );
    const rs = await Promise.all([long, ...many]);
    for (const r of rs) assert.equal(r.status, 200, r.body);
    assert.equal(rs[0]?.json().choices[0].token_ids, undefined);
    assert.equal(rs[0]?.json().usage.completion_tokens, 400);
    const after = (await http(`${srv.url}/health`, "GET")).json();
    assert.equal(after.completed - before.completed, 7);
    assert.ok(after.maxJobsPerBatch >= 2, `at most ${after.maxJobsPerBatch} requests shared a batch`);
    assert.ok(after.batches - before.batches < 7, `${after.batches - before.batches} batches for 7 requests`);
  });

  test("streaming: SSE chunks add up to the non-streamed completion and end with [DONE]", async () => {
    const body = { prompt: "23+19=", n: 2, max_tokens: 14, seed: 5, return_token_ids: true, stop: ["</"] };
    const plain = (await http(api("/completions"), "POST", body)).json();
    const s = await sse(api("/completions"), { ...body, stream: true, stream_options: { include_usage: true } });
    assert.equal(s.status, 200);
    assert.equal(s.events.at(-1), "[DONE]");
    const chunks = s.events.slice(0, -1).map((e) => JSON.parse(e));
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, plain.usage.completion_tokens);
    for (const j of [0, 1]) {
      const mine = chunks.filter((c) => c.choices[0]?.index === j).map((c) => c.choices[0]);
      assert.equal(mine.map((c) => c.text).join(""), plain.choices[j].text);
      assert.deepEqual(
        mine.flatMap((c) => c.token_ids),
        plain.choices[j].token_ids,
      );
      assert.deepEqual(mine[0].prompt_token_ids, plain.choices[j].prompt_token_ids);
      assert.equal(mine.at(-1).finish_reason, plain.choices[j].finish_reason);
    }
    const chat = await sse(api("/chat/completions"), {
      messages: [{ role: "user", content: "1+2=" }],
      max_tokens: 5,
      stream: true,
    });
    const deltas = chat.events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta);
    assert.equal(deltas[0].role, "assistant");
    assert.equal(chat.events.at(-1), "[DONE]");
  });

  test("a client that disconnects mid-stream is dropped; the server keeps serving others", async () => {
    const before = (await http(`${srv.url}/health`, "GET")).json();
    const other = http(api("/completions"), "POST", { prompt: "1+1=", n: 2, max_tokens: 60, ignore_eos: true });
    const s = await sse(
      api("/completions"),
      { prompt: "1+1=", n: 4, max_tokens: 120, ignore_eos: true, stream: true },
      (_data, abort) => abort(),
    );
    assert.ok(s.aborted);
    const r = await other;
    assert.equal(r.status, 200);
    assert.equal(r.json().usage.completion_tokens, 120);
    await waitFor(
      async () => (await http(`${srv.url}/health`, "GET")).json().cancelled > before.cancelled,
      "the cancelled count to rise",
    );
    const again = await http(api("/completions"), "POST", { prompt: "2+2=", max_tokens: 8 });
    assert.equal(again.status, 200);
  });

  test("/v1/reload swaps the weights between batches; in-flight requests finish on the old ones", async () => {
    const dir = weightsDir;
    const file = join(dir, "model.safetensors");
    // new weights: the model with its final norm scaled (changes every log-prob)
    const changed = tidy(() =>
      Object.fromEntries(
        model.namedParameters().map(([n, t]) => [n, n === "model.norm.weight" ? t.detach().mul(0.5) : t.detach()]),
      ),
    ) as Record<string, Tensor>;
    writeSafetensors(file, changed, { format: "pt" });
    const inflight = http(api("/completions"), "POST", {
      prompt: "1+1=",
      n: 4,
      max_tokens: 80,
      ignore_eos: true,
    });
    await sleep(30);
    const rl = await http(`${srv.url}/v1/reload`, "POST", { path: file });
    assert.equal(rl.status, 200, rl.body);
    assert.equal(rl.json().weights_version, 1);
    const old = await inflight;
    assert.equal(old.status, 200);
    assert.equal(old.json().system_fingerprint, "cohort-w0");
    const prompt = [tok.bosId as number, ...tok.encode("4+4=")];
    const r = (
      await http(api("/completions"), "POST", { prompt, max_tokens: 8, seed: 2, logprobs: 0, return_token_ids: true })
    ).json();
    assert.equal(r.system_fingerprint, "cohort-w1");
    const m2 = new CausalLM(model.config);
    m2.load({ tensors: changed, meta: {} });
    const own = ownLogprobs(m2, prompt, r.choices[0].token_ids, 1);
    m2.dispose();
    own.forEach((x, i) => assert.ok(Math.abs(x - r.choices[0].logprobs.token_logprobs[i]) < 1e-4));
    // a snapshot of another shape is refused and the weights stay
    const wrong = join(dir, "wrong.safetensors");
    writeSafetensors(wrong, { "model.norm.weight": changed["model.norm.weight"] as Tensor }, { format: "pt" });
    const bad = await http(`${srv.url}/v1/reload`, "POST", { path: wrong });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.param, "path");
    assert.match(bad.json().error.message, /missing/);
    // a path that resolves to nothing inside --weights-dir (test/serve/security.test.ts: and outside it)
    const missing = await http(`${srv.url}/v1/reload`, "POST", { path: join(dir, "nope.safetensors") });
    assert.equal(missing.status, 403);
    assert.equal((await http(`${srv.url}/health`, "GET")).json().weightsVersion, 1);
    // back to the original weights for the other tests
    writeSafetensors(file, Object.fromEntries(model.namedParameters()), { format: "pt" });
    assert.equal((await http(`${srv.url}/v1/reload`, "POST", { path: file })).json().weights_version, 2);
  });
});

describe("cohort serve: limits and shutdown", () => {
  test("a full queue answers 429; SIGTERM mid-stream finishes the stream, refuses new work and exits 0", async () => {
    const srv = await startServe(MODEL, ["--max-queue", "1", "--max-concurrency", "1"]);
    const api = `${srv.url}/v1/completions`;
    const long = { prompt: "1+1=", n: 8, max_tokens: 110, ignore_eos: true };
    const running = http(api, "POST", long);
    await waitFor(async () => (await http(`${srv.url}/health`, "GET")).json().active === 1, "a running request");
    const queued = http(api, "POST", long);
    await waitFor(async () => (await http(`${srv.url}/health`, "GET")).json().queued === 1, "a queued request");
    const full = await http(api, "POST", { prompt: "1+1=", max_tokens: 2 });
    assert.equal(full.status, 429, full.body);
    assert.equal(full.headers["retry-after"], "1");
    assert.match(full.json().error.message, /queue is full/);
    assert.equal((await running).status, 200);
    assert.equal((await queued).status, 200);

    let signalled = false;
    let afterSignal = 0;
    const stream = sse(api, { ...long, stream: true }, () => {
      if (signalled) afterSignal++;
      else {
        signalled = true;
        srv.child.kill("SIGTERM");
      }
    });
    const s = await stream;
    assert.equal(s.events.at(-1), "[DONE]", "the stream ended cleanly");
    assert.ok(afterSignal > 0, "chunks kept coming after SIGTERM");
    const finished = s.events
      .slice(0, -1)
      .map((e) => JSON.parse(e).choices[0])
      .filter((c) => c.finish_reason !== null);
    assert.equal(finished.length, 8);
    assert.ok(finished.every((c) => c.finish_reason === "length"));
    assert.equal(await srv.exited, 0, srv.stderr());
    assert.match(srv.stderr(), /SIGTERM: finishing running requests/);
    await assert.rejects(http(api, "POST", { prompt: "1+1=", max_tokens: 2 }));
  });
});
