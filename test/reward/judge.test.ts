import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { judgeMessage, llmJudgePreference } from "../../src/reward/judge.js";
import { resolvePreference } from "../../src/reward/preference.js";
import { startServe } from "../serve/helpers.js";

/**
 * An external judge endpoint stand-in: answers chat requests by the two answers it is shown, with hand-set
 * first-token top log-probs (what an OpenAI-compatible server returns with logprobs + top_logprobs).
 */
const TOPS: Record<string, [string, number][]> = {
  "good|bad": [
    ["A", 0.6],
    [" B", 0.2],
    ["C", 0.2],
  ],
  "bad|good": [
    [" A", 0.3],
    ["B", 0.6],
    ["x", 0.1],
  ],
  "odd|bad": [
    ["x", 0.7],
    ["y", 0.3],
  ],
};

let server: Server;
let url = "";
const seen: Record<string, unknown>[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const r = JSON.parse(body);
      seen.push(r);
      const text = r.messages.at(-1).content as string;
      const a = /Answer A:\n(.*)\n/.exec(text)?.[1];
      const b = /Answer B:\n(.*)\n/.exec(text)?.[1];
      const top = TOPS[`${a}|${b}`] ?? [];
      const first = top[0] ?? ["?", 1];
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          id: "x",
          object: "chat.completion",
          created: 0,
          model: r.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: a === "good" ? "A" : "B is better" },
              logprobs: {
                content: [
                  {
                    token: first[0],
                    logprob: Math.log(first[1]),
                    top_logprobs: top.map(([token, p]) => ({ token, logprob: Math.log(p) })),
                  },
                ],
              },
              finish_reason: "length",
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => server.close());

const sample = (a: string, b: string) => ({ prompt: "q?", a, b, fields: {} });

describe("LLM judge preference", () => {
  test("log-prob mode: A-vs-B mass of each order, averaged over both orders", async () => {
    const p = llmJudgePreference({ baseUrl: url, model: "judge" });
    // p(good first) = 0.6/0.8 = 0.75; p(bad first) = 0.3/0.9; P = ½(0.75 + 1 − 1/3)
    const want = 0.5 * (0.75 + 1 - 1 / 3);
    assert.ok(Math.abs((await p(sample("good", "bad"))) - want) < 1e-12);
    assert.ok(Math.abs((await p(sample("bad", "good"))) - (1 - want)) < 1e-12);
    const req = seen.at(-1) as Record<string, unknown>;
    assert.equal(req.max_tokens, 1);
    assert.equal(req.logprobs, true);
    assert.equal(req.top_logprobs, 10);
    // one order only: the position-biased value
    const once = llmJudgePreference({ baseUrl: url, model: "judge", bothOrders: false });
    assert.ok(Math.abs((await once(sample("good", "bad"))) - 0.75) < 1e-12);
  });

  test("text mode reads the first letter; failures throw (the run scores them as ties)", async () => {
    const t = llmJudgePreference({ baseUrl: url, model: "judge", mode: "text", bothOrders: false });
    assert.equal(await t(sample("good", "bad")), 1);
    assert.equal(await t(sample("bad", "good")), 0);
    const p = llmJudgePreference({ baseUrl: url, model: "judge", bothOrders: false });
    await assert.rejects(async () => p(sample("odd", "bad")), /neither A nor B among the first token's top log-probs/);
  });

  test("config: {judge: …} resolves; bad options and a missing key variable are ConfigErrors", async () => {
    const r = await resolvePreference({ judge: { baseUrl: url, model: "judge" } });
    assert.equal(r.name, "judge");
    assert.throws(() => llmJudgePreference({ baseUrl: "nope", model: "m" }), ConfigError);
    assert.throws(
      () => llmJudgePreference({ baseUrl: url, model: "m", apiKeyEnv: "COHORT_TEST_UNSET_KEY" }),
      /COHORT_TEST_UNSET_KEY is not set/,
    );
    assert.equal(judgeMessage("{prompt}|{a}|{b}|{a}", "q", "x", "y"), "q|x|y|x");
  });

  test("against a real cohort serve: the request and the reply's log-probs are understood", async () => {
    const s = await startServe("models/arithmetic-tiny");
    try {
      const p = llmJudgePreference({ baseUrl: `${s.url}/v1`, model: "arithmetic-tiny", topLogprobs: 20 });
      // a character model for arithmetic: A and B may or may not be among its 20 likeliest first characters
      const r = await Promise.resolve(p(sample("12", "7"))).then(
        (v: number) => ({ v }),
        (e: Error) => ({ e }),
      );
      if ("v" in r) {
        assert.ok(r.v >= 0 && r.v <= 1);
        assert.ok(Math.abs(r.v + (await p(sample("7", "12"))) - 1) < 1e-12);
      } else assert.match(r.e.message, /neither A nor B among the first token's top log-probs \(.+\)/);
    } finally {
      await s.stop();
    }
  });
});
