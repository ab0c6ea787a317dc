// MQR (MathForge): every reformulation keeps the answer — checked on many problems by an independent oracle
// (Python reads the rewritten question, resolves its definitions and evaluates it); the knobs change which
// prompts are sampled and trained; rewards still see the original problem; the mathforge preset trains.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { MQR_ASPECTS, MQR_STORIES, MqrWrapper, reformulate, type WrapperHost } from "../../src/rollout/index.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem } from "../../src/task/types.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";

const PYTHON = "/usr/bin/python3";

/**
 * The oracle: for each text, replace "the <word>" by N for every "Call the number N the <word>.", every
 * standalone name X by (c+d) for "Let X be c+d.", drop those definitions and any story sentence, and evaluate
 * the arithmetic that is left ("a+b=" or "What is <expr>?"). Python's exact integers and floats.
 */
const ORACLE = String.raw`
import json, re, sys
out = []
for t in json.load(sys.stdin):
    m = re.fullmatch(r"The (\w+) of x and y is x([-+*])y\. The \1 of (\d+) and (\d+)=", t)
    if m:
        out.append(str(eval(m.group(3) + m.group(2) + m.group(4)))); continue
    for n, w in re.findall(r"Call the number (\d+) the (\w+)\. ", t):
        t = t.replace("Call the number %s the %s. " % (n, w), "").replace("the " + w, n)
    for x, c, d in re.findall(r"Let (\w+) be (\d+)\+(\d+)\. ", t):
        t = t.replace("Let %s be %s+%s. " % (x, c, d), "")
        t = re.sub(r"(?<![\w.])%s(?![\w])" % re.escape(x), "(%s+%s)" % (c, d), t)
    m = re.search(r"What is (.*)\?", t) or re.search(r"([(\d][-+*() \d]*)=$", t)
    out.append(repr(eval(m.group(1))) if m else "NO EXPRESSION: " + t)
print(json.dumps(out))
`;

import { emptyRollout } from "./fixtures/rollout.js";

function oracle(texts: string[]): string[] {
  return JSON.parse(execFileSync(PYTHON, ["-c", ORACLE], { input: JSON.stringify(texts), encoding: "utf8" }));
}

const haveOracle = existsSync(PYTHON);

test(
  "mqr keeps the answer of every arithmetic reformulation (2,400 problems × aspects, Python oracle)",
  { skip: !haveOracle },
  () => {
    const task = arithmeticTask({ digits: [1, 4], ops: { add: 1, sub: 1, mul: 1 }, negative: true });
    const rng = Rng.fromSeed(5n);
    const texts: string[] = [];
    const answers: string[] = [];
    for (let i = 0; i < 800; i++) {
      const p = task.sample(rng, "train");
      for (const aspect of MQR_ASPECTS) {
        const r = reformulate(p, aspect, Rng.fromSeed(BigInt(i * 3 + 1)));
        assert.equal(r.applied, aspect);
        assert.notEqual(r.text, p.prompt);
        assert.ok(r.text.endsWith("="), "a continuation prompt still ends where the answer starts");
        assert.match(r.text, /^[\x20-\x7e]*$/, "printable ASCII: the char tokenizer encodes it");
        texts.push(r.text);
        answers.push(p.answer as string);
      }
    }
    assert.deepEqual(oracle(texts), answers);
  },
);

test(
  "mqr keeps the answer of text questions; no integer → background; only the question inside a chat prompt changes",
  { skip: !haveOracle },
  () => {
    const rng = Rng.fromSeed(9n);
    const problems: Problem[] = [];
    const shapes = [
      (a: number, b: number, c: number) => `What is ${a} + ${b} * ${c}?`,
      (a: number, b: number, c: number) => `Tom has 1.5 kg more. What is 1.5 + ${a} - ${b} + ${c}?`,
      (a: number, b: number, c: number) => `Let n be given. What is (${a} - ${b}) * ${c}?`,
      (a: number, b: number, c: number) => `For k in a set, what is ${a}*${b}? What is ${a} * ${b} + ${c}?`,
    ];
    for (let i = 0; i < 600; i++) {
      const [a, b, c] = [rng.int(0, 999), rng.int(0, 99), rng.int(2, 50)];
      const q = (shapes[i % shapes.length] as (a: number, b: number, c: number) => string)(a, b, c);
      problems.push({ id: `data.jsonl:${i}`, prompt: q, answer: "", meta: { prompt: q } });
    }
    const truth = oracle(problems.map((p) => p.prompt));
    const texts: string[] = [];
    const want: string[] = [];
    problems.forEach((p, i) => {
      for (const aspect of MQR_ASPECTS) {
        const r = reformulate(p, aspect, Rng.fromSeed(BigInt(i + 100)));
        assert.equal(r.applied, aspect);
        assert.notEqual(r.text, p.prompt);
        texts.push(r.text);
        want.push(truth[i] as string);
      }
    });
    assert.deepEqual(oracle(texts), want);
    // the integer is a whole number: "1.5" is not split, "n" is taken so the sub-problem names another
    const sub = reformulate(problems[2] as Problem, "subproblem", Rng.fromSeed(1n)).text;
    assert.match(sub, /^Let k be \d+\+\d+\. Let n be given\. What is \(k - /);
    // no integer literal: the background aspect instead
    const plain: Problem = { id: "x", prompt: "Name a prime.", answer: "2", meta: {} };
    const r = reformulate(plain, "term", Rng.fromSeed(2n));
    assert.equal(r.applied, "background");
    assert.ok(MQR_STORIES.some((s) => r.text === `${s} Name a prime.`));
    // a chat-templated prompt: only the question (meta.prompt) is rewritten
    const chat: Problem = {
      id: "c",
      prompt: "<|user|>\nWhat is 12 + 30?<|end|>\n<|assistant|>\n",
      answer: "42",
      meta: { prompt: "What is 12 + 30?" },
    };
    const t = reformulate(chat, "term", Rng.fromSeed(3n)).text;
    assert.match(t, /^<\|user\|>\nCall the number 12 the \w+\. What is the \w+ \+ 30\?<\|end\|>\n<\|assistant\|>\n$/);
  },
);

/** A host that records what is sampled; every row's reward is 1 when its original problem is 7+0. */
function fakeHost(step = 1) {
  const sampled: (string | undefined)[][] = [];
  const rewardProblems: Problem[] = [];
  const host: WrapperHost<string> = {
    step,
    groupSize: 2,
    async sample(problems, counts, texts) {
      sampled.push(problems.map((_, b) => texts?.[b]));
      const rows = emptyRollout();
      const gi: number[] = [];
      problems.forEach((p, b) => {
        for (let j = 0; j < (counts[b] as number); j++) {
          rows.prompts.push([...(texts?.[b] ?? p.prompt)].map((c) => c.charCodeAt(0)));
          rows.completions.push("c");
          rows.texts.push("c");
          rows.problems.push(p);
          rewardProblems.push(p);
          gi.push(b);
        }
      });
      return { ...rows, groupIndex: Int32Array.from(gi), byFn: [new Float64Array(gi.length)] };
    },
    generate: async () => assert.fail("MQR writes no text with the policy"),
    success: () => false,
    reward: () => 0,
    successIndex: 0,
    task: arithmeticTask(),
    offPolicy: async () => assert.fail("no off-policy rows"),
  };
  return { host, sampled, rewardProblems };
}

const draw = (n: number): Problem[] => {
  const task = arithmeticTask({ digits: [1, 2] });
  const rng = Rng.fromSeed(4n);
  return Array.from({ length: n }, () => task.sample(rng, "train"));
};

test("mqr wrapper: the knobs change what is sampled and trained; rewards see the original problems", async () => {
  const ps = draw(200);
  const counts = ps.map(() => 2);
  const run = async (opts: Record<string, unknown>, step = 1) => {
    const h = fakeHost(step);
    const res = await new MqrWrapper(opts, "algo.rollout.wrapper.options").rollout(h.host, ps, counts);
    for (const p of h.rewardProblems) assert.ok(ps.includes(p), "the reward sees the original problem");
    return { ...h, res, texts: h.sampled[0] as (string | undefined)[] };
  };
  const all = await run({});
  const originals = all.texts.filter((t) => t === undefined).length;
  assert.ok(originals > 25 && originals < 75, `about 1 in 4 drawn as itself: ${originals}/200`);
  assert.equal(all.res.metrics["mqr/reformulated_rate"], (200 - originals) / 200);
  for (const a of MQR_ASPECTS) assert.ok((all.res.metrics[`mqr/${a}`] as number) > 25, a);
  // the trained prompt tokens are the reformulated ones
  const b = all.res.batch;
  ps.forEach((p, i) => {
    const text = all.texts[i] ?? p.prompt;
    assert.equal(String.fromCharCode(...(b.prompts[2 * i] as number[])), text);
    assert.equal(b.problems[2 * i], p);
  });
  const none = await run({ keepOriginal: false });
  assert.equal(none.res.metrics["mqr/reformulated_rate"], 1);
  const story = await run({ aspects: ["background"], keepOriginal: false });
  for (const t of story.texts)
    assert.ok(
      MQR_STORIES.some((s) => t?.startsWith(`${s} `)),
      t,
    );
  const term = await run({ aspects: ["term"], keepOriginal: false });
  for (const t of term.texts) assert.match(t as string, /^The \w+ of x and y is/);
  const sub = await run({ aspects: ["subproblem"], keepOriginal: false });
  for (const t of sub.texts) assert.match(t as string, /^Let n be \d+\+\d+\. /);
  // the draw is a function of (step, position, problem): the same step repeats, another step differs
  assert.deepEqual((await run({})).texts, all.texts);
  assert.notDeepEqual((await run({}, 2)).texts, all.texts);
  assert.throws(
    () => new MqrWrapper({ aspects: ["story"] }, "algo.rollout.wrapper.options"),
    (e: unknown) => e instanceof ConfigError && e.path === "algo.rollout.wrapper.options.aspects[0]",
  );
  assert.throws(
    () => new MqrWrapper({ aspects: ["term", "term"] }, "p"),
    (e: unknown) => e instanceof ConfigError && /aspects must not repeat/.test(e.message),
  );
});

const model = tinyModelDir(5);
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;

test("mathforge preset trains DGPO on reformulated questions; dgpo alone samples the originals", async () => {
  const run = async (preset: string, algo: Record<string, unknown> = {}) => {
    const r = await train(
      parseTrainConfig({
        name: "run",
        preset,
        seed: 3,
        model: { path: model },
        outputDir: tmpRunRoot(),
        task: { name: "arithmetic", options: { digits: [1, 1], ops: { add: 1 } } },
        rewards: ["correctness", parity],
        train: { steps: 2, promptsPerStep: 4, groupSize: 4, microBatchSize: 16 },
        sampling: { maxNewTokens: 5 },
        eval: { everySteps: 0 },
        checkpoint: { everySteps: 0 },
        algo,
      }),
      { log: () => {} },
    );
    return r.metrics.filter((m) => typeof m.loss === "number");
  };
  const mf = await run("mathforge", { rollout: { wrapper: { name: "mqr", options: { keepOriginal: false } } } });
  assert.equal(mf.length, 2);
  for (const m of mf) {
    assert.ok(Number.isFinite(m.loss as number));
    assert.equal(m["mqr/reformulated_rate"], 1);
    assert.equal(m["rollout/sampled"], 16);
  }
  const dg = await run("dgpo");
  assert.equal(dg[0]?.["mqr/reformulated_rate"], undefined);
  assert.notEqual(mf[0]?.loss, dg[0]?.loss, "the reformulated prompts change the trained step");
});
