// The OpenAI-compatible client and RemoteSampler against scripted stand-in servers (retries, backoff, timeouts,
// concurrency, error messages, token-id parsing), and the importance-sampling weights of the mismatch correction.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { samplerImportanceWeights } from "../../src/algo/importance.js";
import { normalizeBaseUrl, OpenAIClient, OpenAIError } from "../../src/serve/client.js";
import { RemoteSampler } from "../../src/serve/remote-sampler.js";
import { tensor } from "../../src/tensor/index.js";
import { close } from "../helpers/close.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function stub(handler: Handler): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};

describe("OpenAIClient", () => {
  test("base URLs: a bare origin gets /v1; other schemes are refused", () => {
    assert.equal(normalizeBaseUrl("http://127.0.0.1:8000"), "http://127.0.0.1:8000/v1");
    assert.equal(normalizeBaseUrl("http://h:1/v1/"), "http://h:1/v1");
    assert.equal(normalizeBaseUrl("https://api.example.com/openai/v1"), "https://api.example.com/openai/v1");
    assert.throws(() => normalizeBaseUrl("ftp://x"), /only http/);
    assert.throws(() => normalizeBaseUrl("localhost:8000"), /not a URL|only http/);
  });

  test("retries 503/429 with backoff (honouring Retry-After), then succeeds", async () => {
    let calls = 0;
    const times: number[] = [];
    const s = await stub((_req, _body, res) => {
      calls++;
      times.push(Date.now());
      if (calls === 1) json(res, 503, { error: { message: "busy" } });
      else if (calls === 2) json(res, 429, { error: { message: "slow down" } }, { "retry-after": "0.2" });
      else json(res, 200, { object: "list", data: [{ id: "m" }] });
    });
    try {
      const c = new OpenAIClient({ baseUrl: s.url, backoffMs: 100, maxRetries: 3 });
      const r = await c.models();
      assert.equal(r.data[0]?.id, "m");
      assert.equal(calls, 3);
      assert.deepEqual(c.stats, { attempts: 3, retries: 2, failures: 0 });
      // first retry: backoff 100 ms × jitter in [0.5, 1.5); second: the server's Retry-After of 0.2 s
      assert.ok((times[1] as number) - (times[0] as number) >= 45, "the first retry waited for the backoff");
      assert.ok((times[2] as number) - (times[1] as number) >= 180, "Retry-After: 0.2 was honoured");
    } finally {
      await s.stop();
    }
  });

  test("4xx other than 408/409/425/429 fail at once with the server's message and param", async () => {
    let calls = 0;
    const s = await stub((_req, _body, res) => {
      calls++;
      json(res, 400, {
        error: { message: "temperature: Too small", param: "temperature", type: "invalid_request_error" },
      });
    });
    try {
      const c = new OpenAIClient({ baseUrl: s.url, backoffMs: 1 });
      await assert.rejects(c.completions({ prompt: "x", temperature: -1 }), (e: unknown) => {
        assert.ok(e instanceof OpenAIError);
        assert.equal(e.status, 400);
        assert.equal(e.param, "temperature");
        assert.match(e.message, /HTTP 400: temperature: Too small/);
        return true;
      });
      assert.equal(calls, 1);
    } finally {
      await s.stop();
    }
  });

  test("a server that never answers times out per attempt and fails after the retries", async () => {
    let calls = 0;
    const s = await stub(() => {
      calls++; // never responds
    });
    try {
      const c = new OpenAIClient({ baseUrl: s.url, timeoutMs: 100, maxRetries: 2, backoffMs: 5 });
      await assert.rejects(c.models(), /no response within 100 ms.*gave up after 3 attempts/);
      assert.equal(calls, 3);
    } finally {
      await s.stop();
    }
  });

  test("a refused connection is retried, then reported", async () => {
    const s = await stub(() => {});
    const url = s.url;
    await s.stop();
    const c = new OpenAIClient({ baseUrl: url, maxRetries: 1, backoffMs: 5 });
    await assert.rejects(c.models(), /ECONNREFUSED.*gave up after 2 attempts/);
  });

  test("no more than maxConcurrency requests are in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    const s = await stub((_req, _body, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, { data: [] });
      }, 30);
    });
    try {
      const c = new OpenAIClient({ baseUrl: s.url, maxConcurrency: 3 });
      await Promise.all(Array.from({ length: 10 }, () => c.models()));
      assert.equal(peak, 3);
    } finally {
      await s.stop();
    }
  });
});

describe("RemoteSampler", () => {
  test("groups of identical prompts become one request with n; token ids from token_id:<id> log-prob tokens", async () => {
    const bodies: Record<string, unknown>[] = [];
    const s = await stub((_req, body, res) => {
      const b = JSON.parse(body) as { prompt: number[]; n: number; seed: number };
      bodies.push(b);
      json(res, 200, {
        id: "x",
        object: "text_completion",
        model: "m",
        choices: Array.from({ length: b.n }, (_, j) => ({
          index: b.n - 1 - j, // out of order on purpose
          text: "",
          finish_reason: j % 2 ? "length" : "stop",
          logprobs: {
            tokens: [`token_id:${b.prompt[0]}`, `token_id:${b.n - 1 - j}`],
            token_logprobs: [-0.5, -(b.n - 1 - j)],
            top_logprobs: null,
            text_offset: [0, 0],
          },
        })),
      });
    });
    try {
      const rs = new RemoteSampler({ client: new OpenAIClient({ baseUrl: s.url }), model: "m" });
      const out = await rs.generate([[7, 1], [7, 1], [7, 1], [9], [9]], {
        maxTokens: 4,
        temperature: 0.5,
        seed: 100,
        topK: 5,
      });
      assert.equal(bodies.length, 2);
      const first = bodies.find((b) => (b.prompt as number[])[0] === 7) as Record<string, unknown>;
      assert.equal(first.n, 3);
      assert.equal(first.seed, 100);
      assert.equal(first.top_k, 5);
      assert.equal(first.return_token_ids, true);
      assert.equal(first.logprobs, 0);
      assert.equal((bodies.find((b) => (b.prompt as number[])[0] === 9) as Record<string, unknown>).seed, 103);
      assert.deepEqual(
        out.map((c) => c.tokens),
        [
          [7, 0],
          [7, 1],
          [7, 2],
          [9, 0],
          [9, 1],
        ],
      );
      assert.deepEqual(out[2]?.logprobs, [-0.5, -2]);
    } finally {
      await s.stop();
    }
  });

  test("a server that returns neither token_ids nor token-id log-prob tokens is an error that says what is needed", async () => {
    const s = await stub((_req, _body, res) =>
      json(res, 200, { choices: [{ index: 0, text: "hi", finish_reason: "stop", logprobs: null }] }),
    );
    try {
      const rs = new RemoteSampler({ client: new OpenAIClient({ baseUrl: s.url }), model: "m" });
      await assert.rejects(rs.generate([[1]], { maxTokens: 2 }), /returned no token ids.*return_token_ids/);
    } finally {
      await s.stop();
    }
  });
});

describe("sampler importance-sampling weights", () => {
  // two rows, three columns; row 1's last column is padding (mask 0)
  const old = tensor([0, -1, -2, -0.5, -0.5, 0], { shape: [2, 3], dtype: "f32" });
  const smp = tensor([-0.5, -1, -1, -0.5, -2, 3], { shape: [2, 3], dtype: "f32" });
  const mask = tensor([1, 1, 1, 1, 1, 0], { shape: [2, 3], dtype: "f32" });
  // d = ℓ_old − ℓ_sampler = [0.5, 0, −1 | 0, 1.5, (masked)]
  const e = Math.exp;

  test("token_truncate caps exp(d) at C; token_mask zeroes the tokens above C", () => {
    const t = samplerImportanceWeights(old, smp, mask, "token_truncate", 2);
    close(t.weights.toArray() as number[], [e(0.5), 1, e(-1), 1, 2, 1], 1e-6);
    assert.equal(t.stats.count, 5);
    close([t.stats.min, t.stats.max, t.stats.sum], [e(-1), 2, e(0.5) + 1 + e(-1) + 1 + 2], 1e-6);
    const m = samplerImportanceWeights(old, smp, mask, "token_mask", 2);
    close(m.weights.toArray() as number[], [e(0.5), 1, e(-1), 1, 0, 1], 1e-6);
    assert.equal(m.stats.masked, 1);
  });

  test("sequence modes use exp(Σ_t d) per row; excluded rows keep weight 1", () => {
    const t = samplerImportanceWeights(old, smp, mask, "sequence_truncate", 3);
    close(t.weights.toArray() as number[], [e(-0.5), e(-0.5), e(-0.5), 3, 3, 1], 1e-6);
    assert.equal(t.stats.count, 2);
    const m = samplerImportanceWeights(old, smp, mask, "sequence_mask", 3);
    close(m.weights.toArray() as number[], [e(-0.5), e(-0.5), e(-0.5), 0, 0, 1], 1e-6);
    const x = samplerImportanceWeights(old, smp, mask, "sequence_mask", 3, Uint8Array.from([0, 1]));
    close(x.weights.toArray() as number[], [e(-0.5), e(-0.5), e(-0.5), 1, 1, 1], 1e-6);
    assert.equal(x.stats.count, 1);
  });
});
