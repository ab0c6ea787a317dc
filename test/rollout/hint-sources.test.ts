// Where the hints come from: SAGE's policy-written hints (the text the policy wrote for the hint prompt is
// exactly the hint, reproduced independently with the real sampler and the same request seeds), Scaf-GRPO's
// concept → step → answer tiers, and its plateau trigger (moves only after a plateau, survives a checkpoint).
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { CohortError, ConfigError } from "../../src/errors.js";
import { readModelDir } from "../../src/io/hf.js";
import { CausalLM } from "../../src/model/llama.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { resolvePreset } from "../../src/presets/index.js";
import {
  RolloutPlan,
  SAGE_INSTRUCTIONS,
  SageWrapper,
  ScafGrpoWrapper,
  type ScoredRollout,
  type WrapperHost,
} from "../../src/rollout/index.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";
import type { Problem, Task } from "../../src/task/types.js";
import { liveTensors } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { encodePrompt, type Generate, planSource, requestSeed, textGenerate } from "../../src/train/sources.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "../train/helpers.js";
import { emptyRollout } from "./fixtures/rollout.js";

const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
const decode = (ids: readonly number[]) => String.fromCharCode(...ids);
const charTok = new CharTokenizer();
const exactTask: Task = {
  name: "exact",
  sample: () => assert.fail("the wrappers draw no problems"),
  verify: (p, c) => ({ correct: c === p.answer, format: true, parsed: c }),
};

/**
 * A host whose policy is `gen(promptText, problem)` for solving rows and `write(hintPrompt, n)` for hint
 * writing (n counts the texts written); the reward is 1 when the completion is the answer.
 */
function fakeHost(
  gen: (text: string, p: Problem) => string,
  opts: { write?: (text: string, n: number) => string; step?: number; task?: Task } = {},
) {
  const sampleCalls: {
    problems: readonly Problem[];
    counts: readonly number[];
    texts?: readonly (string | undefined)[];
  }[] = [];
  const writeCalls: string[][] = [];
  const rewardInputs: Problem[] = [];
  let written = 0;
  const host: WrapperHost<string> = {
    step: opts.step ?? 1,
    groupSize: 4,
    async sample(problems, counts, texts) {
      sampleCalls.push({ problems, counts, ...(texts ? { texts } : {}) });
      const out = emptyRollout();
      const gi: number[] = [];
      const r: number[] = [];
      let g = 0;
      problems.forEach((p, b) => {
        const k = counts[b] as number;
        if (k <= 0) return;
        const text = texts?.[b] ?? p.prompt;
        for (let j = 0; j < k; j++) {
          const c = gen(text, p);
          out.prompts.push(encode(text));
          out.completions.push(c);
          out.texts.push(c);
          out.problems.push(p);
          gi.push(g);
          rewardInputs.push(p);
          r.push(c === p.answer ? 1 : 0);
        }
        g++;
      });
      return { ...out, groupIndex: Int32Array.from(gi), byFn: [Float64Array.from(r)] };
    },
    async generate(texts) {
      writeCalls.push([...texts]);
      return texts.map((t) => (opts.write ?? ((x: string, n: number) => ` w${n}[${x.length}] `))(t, written++));
    },
    success: (b, i) => ((b.byFn[0] as Float64Array)[i] as number) > 0.5,
    reward: (b, i) => (b.byFn[0] as Float64Array)[i] as number,
    successIndex: 0,
    task: opts.task ?? exactTask,
    offPolicy: async () => assert.fail("no off-policy rows"),
  };
  return { host, sampleCalls, writeCalls, rewardInputs };
}

const prob = (prompt: string, answer: string, meta: Record<string, unknown> = {}): Problem => ({
  id: `t/${prompt}`,
  prompt,
  answer,
  meta,
});

function rowsOf(batch: ScoredRollout<string>, g: number): number[] {
  return [...batch.groupIndex.keys()].filter((i) => batch.groupIndex[i] === g);
}

// ---- SAGE: policy-written hints ------------------------------------------------------------------

test("sage policy hints: the hint is exactly the policy's text for a prompt holding the reference; escalation stops at the first success", async () => {
  const ps = [
    prob("3+4=", "7", { solution: "3 and 4 make 7" }),
    prob("5+7=", "12"),
    prob("2+3=", "5"),
    prob("8+1=", "9"),
  ];
  // p0 never succeeds; p1 succeeds with the 2nd hint written for it; p2 unhinted; p3 with its 1st hint
  const gen = (text: string, p: Problem) => {
    if (p === ps[2]) return "5";
    if (p === ps[1] && text.includes("Method or a step.")) return "12";
    if (p === ps[3] && text.includes("HINT-FOR-8+1")) return "9";
    return "x";
  };
  // the policy echoes the level's instruction (so the hinted prompts can be told apart), with padding to trim
  const write = (t: string, n: number) => {
    const instr = SAGE_INSTRUCTIONS.find((s) => t.includes(s)) as string;
    return t.includes("8+1=") ? `  HINT-FOR-8+1 ${n}\n` : `  ${instr} #${n} `;
  };
  const { host, sampleCalls, writeCalls, rewardInputs } = fakeHost(gen, { write });
  const w = new SageWrapper({}, "algo.rollout.wrapper.options");
  const res = await w.rollout(host, ps, [4, 4, 4, 4]);

  // the hint prompts: the problem, its reference (meta.solution, else the answer) and the level's instruction
  const req = (q: string, ref: string, k: number) => `Q: ${q}\nA: ${ref}\n${SAGE_INSTRUCTIONS[k - 1]}\nHint:`;
  assert.deepEqual(writeCalls, [
    [req("3+4=", "3 and 4 make 7", 1), req("5+7=", "12", 1), req("8+1=", "9", 1)],
    [req("3+4=", "3 and 4 make 7", 2), req("5+7=", "12", 2)],
    [req("3+4=", "3 and 4 make 7", 3)],
  ]);
  // the hinted prompts hold exactly the written texts (trimmed), in request order
  assert.deepEqual(
    sampleCalls.map((c) => c.texts),
    [
      undefined,
      ["Hint: Key idea only. #0\n3+4=", "Hint: Key idea only. #1\n5+7=", "Hint: HINT-FOR-8+1 2\n8+1="],
      ["Hint: Method or a step. #3\n3+4=", "Hint: Method or a step. #4\n5+7="],
      ["Hint: Detailed, no answer. #5\n3+4="],
    ],
  );
  assert.deepEqual(
    sampleCalls.map((c) => c.counts),
    [[4, 4, 4, 4], [4, 4, 4], [4, 4], [4]],
  );
  // rewards: only the original problems
  for (const p of rewardInputs) assert.ok(ps.includes(p));
  // the trained rows: the hint-writing texts are not rows; groups keep G rows on the prompt sampled from
  const b = res.batch;
  assert.equal(b.completions.length, 16);
  for (const i of rowsOf(b, 0)) assert.deepEqual(b.prompts[i], encode("Hint: Detailed, no answer. #5\n3+4="));
  for (const i of rowsOf(b, 1)) assert.deepEqual(b.prompts[i], encode("Hint: Method or a step. #4\n5+7="));
  for (const i of rowsOf(b, 2)) assert.deepEqual(b.prompts[i], encode("2+3="));
  for (const i of rowsOf(b, 3)) assert.deepEqual(b.prompts[i], encode("Hint: HINT-FOR-8+1 2\n8+1="));
  assert.deepEqual([...(b.byFn[0] as Float64Array)], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(res.metrics, {
    "rollout/hint_rate": 3 / 4,
    "rollout/hint_level_mean": (3 + 2 + 1) / 3,
    "rollout/sampled": 16 + 12 + 8 + 4,
    "sage/unresolved": 3,
    "sage/resolved_by_hint": 2,
    "sage/hints_written": 6,
    "sage/hints_empty": 0,
  });
});

test("sage policy hints: knobs (solutionField, hintPrompt, instructions, empty hints) change what is sampled", async () => {
  const p = prob("3+4=", "7", { work: "three plus four" });
  const never = () => "x";
  // solutionField: the reference is meta.work instead of the answer
  const a = fakeHost(never);
  await new SageWrapper({ solutionField: "work", levels: 1, instructions: ["I"] }, "p").rollout(a.host, [p], [2]);
  assert.deepEqual(a.writeCalls, [["Q: 3+4=\nA: three plus four\nI\nHint:"]]);
  const b = fakeHost(never);
  await new SageWrapper({ levels: 1, instructions: ["I"], hintPrompt: "{reference}|{prompt}|{level}" }, "p").rollout(
    b.host,
    [p],
    [2],
  );
  assert.deepEqual(b.writeCalls, [["7|3+4=|1"]]);
  // an empty hint skips the level for that group (it is not re-sampled at that level)
  const c = fakeHost(never, { write: (_t, n) => (n === 0 ? "  \n" : "h") });
  const res = await new SageWrapper({}, "p").rollout(c.host, [p], [2]);
  assert.deepEqual(
    c.sampleCalls.map((x) => x.texts),
    [undefined, ["Hint: h\n3+4="], ["Hint: h\n3+4="]],
  );
  assert.equal(res.metrics["sage/hints_empty"], 1);
  assert.equal(res.metrics["rollout/hint_level_mean"], 3);
  // answer_prefix: no text is written
  const d = fakeHost(never);
  await new SageWrapper({ hints: "answer_prefix" }, "p").rollout(d.host, [p], [2]);
  assert.equal(d.writeCalls.length, 0);
  assert.throws(
    () => new SageWrapper({ levels: 2 }, "algo.rollout.wrapper.options"),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.path === "algo.rollout.wrapper.options.instructions" &&
      /one instruction per level: 2 levels, 3 instructions/.test(e.message),
  );
  assert.throws(
    () => new SageWrapper({ hintPrompt: "{prompt} Hint:" }, "p"),
    (e: unknown) => e instanceof ConfigError && /must contain "\{prompt\}" and "\{reference\}"/.test(e.message),
  );
});

// ---- Scaf-GRPO: tiers ------------------------------------------------------------------------------

test("scaf_grpo tiers: meta hints give concept → step → answer levels, parts cumulative; the lowest successful level wins", async () => {
  const meta = { hints: { concept: "carry tens", step: ["7+5=12", "4+8+1=13"], answer: "132" } };
  const p = prob("47+85=", "132", meta);
  const w = new ScafGrpoWrapper({ trigger: "warmup", warmupSteps: 0 }, "p");
  assert.deepEqual(w.ladder(exactTask, p), [
    "Concept: carry tens",
    "Step: 7+5=12",
    "Step: 7+5=12 4+8+1=13",
    "Answer: 132",
  ]);
  assert.deepEqual(new ScafGrpoWrapper({ maxPartsPerTier: 1 }, "p").ladder(exactTask, p), [
    "Concept: carry tens",
    "Step: 7+5=12",
    "Answer: 132",
  ]);
  assert.deepEqual(new ScafGrpoWrapper({ hintsField: "tiers" }, "p").ladder(exactTask, p), [
    "1...",
    "13...",
    "132",
    "132",
  ]);
  assert.deepEqual(new ScafGrpoWrapper({ hints: "answer_prefix", levels: 2 }, "p").ladder(exactTask, p), [
    "13...",
    "132",
  ]);
  // success only once a step is shown: the first Step level replaces the last of G
  const { host, sampleCalls } = fakeHost((text, q) => (text.includes("Step:") ? (q.answer as string) : "x"));
  const res = await w.rollout(host, [p], [4]);
  assert.deepEqual(sampleCalls[1]?.texts, [
    "Hint: Concept: carry tens\n47+85=",
    "Hint: Step: 7+5=12\n47+85=",
    "Hint: Step: 7+5=12 4+8+1=13\n47+85=",
    "Hint: Answer: 132\n47+85=",
  ]);
  assert.deepEqual(
    res.batch.prompts.map((x) => decode(x)),
    ["47+85=", "47+85=", "47+85=", "Hint: Step: 7+5=12\n47+85="],
  );
  assert.equal(res.metrics["rollout/hint_level_mean"], 2);
  // built-in arithmetic: derived tiers (the digit trace's steps but the last, which would give the answer)
  const task = arithmeticTask({ digits: [2, 2] }) as Task;
  const ar: Problem = {
    id: "arithmetic/47+85",
    prompt: "47+85=",
    answer: "132",
    meta: { op: "add", a: "47", b: "85" },
  };
  assert.deepEqual(w.ladder(task, ar), [
    "Concept: add digits right to left, carry tens",
    "Step: 7+5=12",
    "Answer: the answer is 132",
  ]);
  assert.throws(
    () => w.ladder(exactTask, prob("1+1=", "2", { hints: { step: 3 } })),
    (e: unknown) => e instanceof CohortError && /meta\.hints must be \{concept\?, step\?, answer\?\}/.test(e.message),
  );
});

// ---- Scaf-GRPO: plateau trigger ---------------------------------------------------------------------

/** Success rate of the unhinted rows at step t: rising 0, .25, .5, .75 and then flat at .75. */
const RATE = [0, 0, 0.25, 0.5, 0.75];
const rateAt = (t: number) => RATE[Math.min(t, 4)] as number;
const PS = [0, 1, 2, 3].map((j) => prob(`${j}+0=`, String(j)));

/** One step of the wrapper: problem j's rows succeed (unhinted) when j < 4·rate; hinted rows always succeed. */
async function step(w: ScafGrpoWrapper, t: number) {
  const gen = (text: string, p: Problem) =>
    text.startsWith("Hint") || PS.indexOf(p) < 4 * rateAt(t) ? (p.answer as string) : "x";
  const res = await w.rollout(fakeHost(gen, { step: t }).host, PS, [4, 4, 4, 4]);
  return res.metrics;
}

async function activeSteps(opts: Record<string, unknown>, steps = 10): Promise<number[]> {
  const w = new ScafGrpoWrapper(opts, "p");
  const out: number[] = [];
  for (let t = 1; t <= steps; t++) out.push((await step(w, t))["scaf/active"] as number);
  return out;
}

test("scaf_grpo plateau trigger: switches on only after W steps without a gain > δ, never during the warm-up", async () => {
  // W = 2, δ = 0.05: gains after steps 4..7 are .5, .375, .125, 0 → on from step 8
  assert.deepEqual(
    await activeSteps({ warmupSteps: 0, plateauWindow: 2, plateauDelta: 0.05 }),
    [0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
  );
  // δ = 0.6: the gain of .5 after step 4 already counts as a plateau
  assert.deepEqual(
    await activeSteps({ warmupSteps: 0, plateauWindow: 2, plateauDelta: 0.6 }),
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
  );
  // W = 1: flat from step 4 to 5 → on from step 6
  assert.deepEqual(
    await activeSteps({ warmupSteps: 0, plateauWindow: 1, plateauDelta: 0.05 }),
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
  );
  // the warm-up is a minimum: the plateau is there from step 8, hints wait for step 10
  assert.deepEqual(
    await activeSteps({ warmupSteps: 9, plateauWindow: 2, plateauDelta: 0.05 }),
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  );
  // the released fixed warm-up ignores the success rate
  assert.deepEqual(await activeSteps({ trigger: "warmup", warmupSteps: 3 }), [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  // when on, the failed groups are scaffolded (rate .75: one of four groups fails)
  const w = new ScafGrpoWrapper({ trigger: "warmup", warmupSteps: 0 }, "p");
  const m = await step(w, 9);
  assert.equal(m["scaf/failed_groups"], 1);
  assert.equal(m["rollout/hint_rate"], 1 / 4);
});

test("scaf_grpo plateau trigger: its state survives a JSON round trip and decides the same steps", async () => {
  const opts = { warmupSteps: 0, plateauWindow: 2, plateauDelta: 0.05 };
  const a = new ScafGrpoWrapper(opts, "p");
  for (let t = 1; t <= 6; t++) await step(a, t);
  const saved = JSON.parse(JSON.stringify(a.state())) as Record<string, unknown>;
  assert.deepEqual(saved, { rates: [0.25, 0.5, 0.75, 0.75], step: 6, successes: 12, rows: 16, firedAt: null });
  const b = new ScafGrpoWrapper(opts, "p");
  b.load(saved);
  const fresh = new ScafGrpoWrapper(opts, "p");
  const seq = async (w: ScafGrpoWrapper) => {
    const out: number[] = [];
    for (let t = 7; t <= 9; t++) out.push((await step(w, t))["scaf/active"] as number);
    return out;
  };
  assert.deepEqual(await seq(a), [0, 1, 1]);
  assert.deepEqual(await seq(b), [0, 1, 1]);
  assert.deepEqual(b.state(), a.state());
  assert.deepEqual(await seq(fresh), [0, 0, 0], "without the state the windows start empty");
  assert.throws(
    () => b.load({ rates: "x" }),
    (e: unknown) => e instanceof CohortError && /scaf_grpo trigger state is malformed/.test(e.message),
  );
});

// ---- training runs ---------------------------------------------------------------------------------

const model = tinyModelDir(5);
const zeroLogged = `${resolve("test/rollout/fixtures/zero-logged.ts")}#zeroLogged`;
const quiet = () => {};

function config(preset: string, algo: Record<string, unknown>, name = "run", root = tmpRunRoot(), steps = 4) {
  return parseTrainConfig({
    name,
    preset,
    seed: 3,
    model: { path: model },
    outputDir: root,
    task: { name: "arithmetic", options: { digits: [1, 1], ops: { add: 1 } } },
    rewards: [zeroLogged],
    train: { steps, promptsPerStep: 3, groupSize: 4, microBatchSize: 16 },
    sampling: { maxNewTokens: 5 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 2 },
    algo,
  });
}

test("sage preset trains with policy-written hints through train()", async () => {
  const before = liveTensors();
  const r = await train(config("sage", {}, "run", tmpRunRoot(), 2), { log: quiet });
  assert.equal(liveTensors(), before);
  const steps = r.metrics.filter((m) => typeof m.loss === "number");
  assert.equal(steps.length, 2);
  for (const m of steps) {
    assert.ok(Number.isFinite(m.loss as number));
    assert.equal(m["rollout/hint_rate"], 1, "an always-zero reward hints every group");
    assert.equal((m["sage/hints_written"] as number) - (m["sage/hints_empty"] as number) >= 3, true);
    assert.equal(m["rollout/sampled"], 12 + 12 * 3 - 4 * (m["sage/hints_empty"] as number));
  }
});

test("scaf_grpo preset: the plateau trigger fires in training and resumes exactly from a checkpoint", async () => {
  // an always-zero reward is a plateau: rates 0, 0 → on from step 3 with W = 1, δ = 0
  const algo = {
    rollout: {
      wrapper: { name: "scaf_grpo", options: { warmupSteps: 0, plateauWindow: 1, plateauDelta: 0 } },
    },
  };
  const root = tmpRunRoot();
  const straight = await train(config("scaf_grpo", algo, "straight", root), { log: quiet });
  const ms = straight.metrics.filter((m) => typeof m.loss === "number");
  assert.deepEqual(
    ms.map((m) => m["scaf/active"]),
    [0, 0, 1, 1],
  );
  // 1-digit additions: concept and answer tiers (the one-step trace would give the answer away)
  assert.deepEqual(
    ms.map((m) => m["rollout/sampled"]),
    [12, 12, 12 + 3 * 2, 12 + 3 * 2],
  );
  await train(config("scaf_grpo", algo, "cut", root), { log: quiet, stopAfterStep: 2 });
  const resumed = await train(config("scaf_grpo", algo, "cut", root), { log: quiet, resume: true });
  assert.equal(resumed.steps, 4);
  assert.deepEqual(resumed.metrics.map(deterministicPart), straight.metrics.map(deterministicPart));
});

// run last: it builds its own model and sampler outside train(), which the runs above count tensors around
test("sage policy hints through the real sampler: each hint is the policy's own completion, reproduced with the same request seed", async () => {
  const tok = new CharTokenizer();
  const dir = readModelDir(tinyModelDir(7));
  const model = CausalLM.fromHF(dir.config, dir.tensors);
  const sampler = new LocalSampler(model, { padId: tok.padId });
  const params = { maxTokens: 6, temperature: 1 };
  const task = arithmeticTask({ digits: [1, 1], ops: { add: 1 } }) as Task;
  const plan = new RolloutPlan({ wrapper: { name: "sage", options: { hints: "policy" } } }, task, ["zero"]);
  const gen = textGenerate(sampler, tok, params);
  const generateCalls: { texts: readonly (string | undefined)[] | undefined; counts: readonly number[] }[] = [];
  const recording: Generate = async (ps, counts, seed, texts) => {
    // the text each group is sampled from (hint writing passes its prompts as the problems' prompts)
    generateCalls.push({ texts: ps.map((p, b) => texts?.[b] ?? p.prompt), counts });
    return gen(ps, counts, seed, texts);
  };
  const seed = 11;
  const B = 2;
  const G = 3;
  const source = planSource({
    plan,
    algo: resolvePreset("sage"),
    task,
    rewardCount: 1,
    generate: recording,
    score: async (_s, ro) => ({ byFn: [new Float64Array(ro.completions.length)], failures: 0 }),
    offPolicy: () => assert.fail("no anchors"),
    promptsPerStep: B,
    groupSize: G,
    seed,
    dist: null,
  });
  try {
    await checkReproduced();
  } finally {
    sampler.dispose();
    model.dispose();
  }
  async function checkReproduced() {
    const col = await source.collect(1);
    assert.equal(col.metrics["sage/hints_empty"], 0, "this seed writes no empty hint");
    assert.equal(col.metrics["rollout/hint_level_mean"], 3, "an always-zero reward escalates to level 3");
    // calls: plain round, then per level: hint writing (B rows of 1), re-sampling (B groups of G)
    assert.equal(generateCalls.length, 7);
    let offset = B * G;
    for (let k = 1; k <= 3; k++) {
      const writeCall = generateCalls[2 * k - 1] as (typeof generateCalls)[number];
      const hinted = generateCalls[2 * k] as (typeof generateCalls)[number];
      assert.deepEqual(writeCall.counts, [1, 1]);
      const requests = writeCall.texts as string[];
      for (let j = 0; j < B; j++) {
        const problem = col.ro.problems[j * G] as Problem;
        assert.ok(requests[j]?.includes(`A: ${problem.answer}\n`), "the hint prompt holds the reference");
        // independently: the same sampler, prompt and request seed
        const [c] = await sampler.generate([encodePrompt(tok, requests[j] as string)], {
          ...params,
          seed: [requestSeed(seed, 1, offset + j)],
        });
        const hint = tok.decode((c as { tokens: number[] }).tokens, { skipSpecialTokens: true }).trim();
        assert.equal(hinted.texts?.[j], `Hint: ${hint}\n${problem.prompt}`);
        if (k === 3) {
          for (let r = 0; r < G; r++)
            assert.equal(
              charTok.decode(col.ro.prompts[j * G + r] ?? [], { skipSpecialTokens: true }),
              `Hint: ${hint}\n${problem.prompt}`,
            );
        }
      }
      offset += B + B * G;
    }
  }
});
