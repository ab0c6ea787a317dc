// Rollout wrappers: iGRPO (matched budget, draft-conditioned prompts), SAGE and Scaf-GRPO (hints change only
// the sampled prompt; rewards see the original problem; the batch carries the prompt tokens sampled from).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import {
  answerPrefixHint,
  draftCount,
  IgrpoWrapper,
  partialAnswerHint,
  SageWrapper,
  ScafGrpoWrapper,
  type ScoredRollout,
  type WrapperHost,
} from "../../src/rollout/index.js";
import { validateRolloutConfig } from "../../src/rollout/validate.js";
import type { Problem } from "../../src/task/types.js";
import { parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { tinyModelDir, tmpRunRoot, trainLeakFree } from "../train/helpers.js";

const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));

interface Call {
  problems: readonly Problem[];
  counts: readonly number[];
  texts: readonly (string | undefined)[] | undefined;
}

/** A host whose "policy" is `gen(promptText, problem, n)` and whose reward is `reward(problem, completion)`. */
function fakeHost(
  gen: (text: string, p: Problem, n: number) => string,
  reward: (p: Problem, completion: string) => number,
  step = 1,
) {
  const calls: Call[] = [];
  const rewardInputs: { problem: Problem; completion: string }[] = [];
  let n = 0;
  const host: WrapperHost<string> = {
    step,
    groupSize: 4,
    async sample(problems, counts, texts) {
      calls.push({ problems, counts, texts });
      const out = { prompts: [] as number[][], completions: [] as string[], texts: [] as string[] };
      const ps: Problem[] = [];
      const gi: number[] = [];
      const r: number[] = [];
      let g = 0;
      problems.forEach((p, b) => {
        const k = counts[b] as number;
        if (k <= 0) return;
        const text = texts?.[b] ?? p.prompt;
        for (let j = 0; j < k; j++) {
          const c = gen(text, p, n++);
          out.prompts.push(encode(text));
          out.completions.push(c);
          out.texts.push(c);
          ps.push(p);
          gi.push(g);
          rewardInputs.push({ problem: p, completion: c });
          r.push(reward(p, c));
        }
        g++;
      });
      return { ...out, problems: ps, groupIndex: Int32Array.from(gi), byFn: [Float64Array.from(r)] };
    },
    generate: async () => assert.fail("these tests write no hints with the policy"),
    success: (b, i) => ((b.byFn[0] as Float64Array)[i] as number) > 0.5,
    reward: (b, i) => (b.byFn[0] as Float64Array)[i] as number,
    successIndex: 0,
    task: {
      name: "exact",
      sample: () => assert.fail("the wrappers draw no problems"),
      verify: (p, c) => ({ correct: c === p.answer, format: true, parsed: c }),
    },
    offPolicy: async () => assert.fail("these wrappers inject no off-policy rows"),
  };
  return { host, calls, rewardInputs };
}

const prob = (prompt: string, answer: string): Problem => ({ id: `t/${prompt}`, prompt, answer, meta: {} });
const exact = (p: Problem, c: string) => (c === p.answer ? 1 : 0);

function rowsOf(batch: ScoredRollout<string>, g: number): number[] {
  return [...batch.groupIndex.keys()].filter((i) => batch.groupIndex[i] === g);
}

test("draftCount splits each prompt's budget into G1 + G2 = n with both stages non-empty", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 8].map((n) => draftCount(n, 0.5)),
    [0, 1, 2, 2, 3, 4],
  );
  assert.deepEqual(
    [2, 4, 8].map((n) => draftCount(n, 0.25)),
    [1, 1, 2],
  );
  assert.equal(draftCount(8, 0.99), 7);
});

test("igrpo: drafts + refinements = the allocated budget; stage 2 samples from prompt ⊕ best draft", async () => {
  const ps = [prob("3+4=", "7"), prob("5+7=", "12"), prob("1+1=", "2"), prob("2+2=", "4")];
  const counts = [4, 4, 5, 1];
  // completions are the digits of a running counter; the reward prefers larger digits
  const { host, calls } = fakeHost(
    (_t, _p, n) => String(n % 10),
    (_p, c) => Number(c) / 10,
  );
  const w = new IgrpoWrapper({}, "algo.rollout.wrapper.options");
  const res = await w.rollout(host, ps, counts);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0]?.counts, [2, 2, 3, 0]);
  assert.deepEqual(calls[1]?.counts, [2, 2, 2, 1]);
  const sampled = calls.flatMap((c) => c.counts).reduce((a, b) => a + b, 0);
  assert.equal(sampled, 14, "exactly the Σ n of plain sampling");
  assert.equal(res.metrics["rollout/sampled"], 14);
  // drafts: counter 0..6 → p0 {0,1}, p1 {2,3}, p2 {4,5,6}; best = the largest digit
  assert.deepEqual(calls[1]?.texts, [
    "3+4=\nDraft: 1\nImproved: ",
    "5+7=\nDraft: 3\nImproved: ",
    "1+1=\nDraft: 6\nImproved: ",
    undefined,
  ]);
  assert.ok(Math.abs((res.metrics["igrpo/draft_reward_mean"] as number) - 0.3) < 1e-12);
  assert.ok(Math.abs((res.metrics["igrpo/best_draft_reward_mean"] as number) - (0.1 + 0.3 + 0.6) / 3) < 1e-12);
  // only the refinements are trained, each group on its draft-conditioned prompt
  const b = res.batch;
  assert.equal(b.completions.length, 7);
  assert.deepEqual([...b.groupIndex], [0, 0, 1, 1, 2, 2, 3]);
  assert.deepEqual(b.prompts[0], encode("3+4=\nDraft: 1\nImproved: "));
  assert.deepEqual(b.prompts[6], encode("2+2="));
  assert.deepEqual(b.texts, ["7", "8", "9", "0", "1", "2", "3"]);
  assert.deepEqual(b.problems, [ps[0], ps[0], ps[1], ps[1], ps[2], ps[2], ps[3]]);
});

test("igrpo: invalid options fail naming the key and the fix", () => {
  assert.throws(
    () => new IgrpoWrapper({ draftFraction: 1 }, "algo.rollout.wrapper.options"),
    (e: unknown) => e instanceof ConfigError && e.path === "algo.rollout.wrapper.options.draftFraction",
  );
  assert.throws(
    () => new IgrpoWrapper({ template: "{prompt} again" }, "algo.rollout.wrapper.options"),
    (e: unknown) => e instanceof ConfigError && /must contain "\{prompt\}" and "\{draft\}"/.test(e.message),
  );
  assert.throws(
    () => validateRolloutConfig({ wrapper: { name: "igrpoo" } }),
    (e: unknown) =>
      e instanceof ConfigError && e.path === "algo.rollout.wrapper.name" && /known: .*\bigrpo,/.test(e.message),
  );
});

test("hints: partial hints never give the whole answer; prefix hints end with it", () => {
  assert.deepEqual(
    [1, 2, 3].map((k) => partialAnswerHint("1234", k, 3)),
    ["4 chars", "4 chars, starts 12", "4 chars, starts 123"],
  );
  assert.deepEqual(
    [1, 2, 3].map((k) => partialAnswerHint("7", k, 3)),
    ["1 char", "1 char", "1 char"],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((k) => answerPrefixHint("1234", k, 4)),
    ["1...", "12...", "123...", "1234"],
  );
});

test("sage: all-fail groups escalate hint levels; rewards see only the original problem", async () => {
  const ps = [prob("3+4=", "7"), prob("5+7=", "12"), prob("2+3=", "5")];
  // p0 never succeeds; p1 succeeds once its hint shows the first digit; p2 succeeds unhinted
  const gen = (text: string, p: Problem) => {
    if (p === ps[1] && text.includes("starts 1")) return "12";
    if (p === ps[2]) return "5";
    return "x";
  };
  const { host, calls, rewardInputs } = fakeHost(gen, exact);
  const res = await new SageWrapper({ hints: "answer_prefix" }, "algo.rollout.wrapper.options").rollout(
    host,
    ps,
    [4, 4, 4],
  );
  assert.deepEqual(
    calls.map((c) => c.texts),
    [
      undefined,
      ["Hint: 1 char\n3+4=", "Hint: 2 chars\n5+7="],
      ["Hint: 1 char\n3+4=", "Hint: 2 chars, starts 1\n5+7="],
      ["Hint: 1 char\n3+4="],
    ],
  );
  assert.deepEqual(
    calls.map((c) => c.counts),
    [[4, 4, 4], [4, 4], [4, 4], [4]],
    "every level re-samples the whole group",
  );
  // the reward functions' inputs: the original problems (same objects, unchanged) and the completion
  assert.equal(rewardInputs.length, 12 + 8 + 8 + 4);
  for (const r of rewardInputs) assert.ok(ps.includes(r.problem));
  assert.deepEqual(ps, [prob("3+4=", "7"), prob("5+7=", "12"), prob("2+3=", "5")]);
  const b = res.batch;
  assert.equal(b.completions.length, 12);
  assert.deepEqual([...b.groupIndex], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  // the trained prompt tokens are those sampled from: level 3 for p0, level 2 for p1, plain for p2
  for (const i of rowsOf(b, 0)) assert.deepEqual(b.prompts[i], encode("Hint: 1 char\n3+4="));
  for (const i of rowsOf(b, 1)) assert.deepEqual(b.prompts[i], encode("Hint: 2 chars, starts 1\n5+7="));
  for (const i of rowsOf(b, 2)) assert.deepEqual(b.prompts[i], encode("2+3="));
  assert.deepEqual(b.problems, [...Array(4).fill(ps[0]), ...Array(4).fill(ps[1]), ...Array(4).fill(ps[2])]);
  assert.deepEqual([...(b.byFn[0] as Float64Array)], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(res.metrics, {
    "rollout/hint_rate": 2 / 3,
    "rollout/hint_level_mean": 2.5,
    "rollout/sampled": 32,
    "sage/unresolved": 2,
    "sage/resolved_by_hint": 1,
  });
});

test("sage: problems without a reference answer are never hinted", async () => {
  const p: Problem = { id: "t/open", prompt: "say hi=", meta: {} };
  const { host, calls } = fakeHost(
    () => "x",
    () => 0,
  );
  const res = await new SageWrapper({ hints: "answer_prefix" }, "p").rollout(host, [p], [4]);
  assert.equal(calls.length, 1);
  assert.equal(res.metrics["rollout/hint_rate"], 0);
});

test("scaf_grpo: one rollout per level; the lowest successful level replaces one of G", async () => {
  const ps = [prob("1000+234=", "1234"), prob("2+3=", "5"), prob("90+9=", "99")];
  // p0 succeeds once the hint shows "12" (levels 2, 3, 4); p1 unhinted; p2 never
  const gen = (text: string, p: Problem) => {
    if (p === ps[0] && text.includes("12")) return "1234";
    if (p === ps[1]) return "5";
    return "x";
  };
  const { host, calls, rewardInputs } = fakeHost(gen, exact, 1);
  const res = await new ScafGrpoWrapper({ trigger: "warmup", warmupSteps: 0 }, "p").rollout(host, ps, [4, 4, 4]);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]?.counts, [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(calls[1]?.texts, [
    "Hint: 1...\n1000+234=",
    "Hint: 12...\n1000+234=",
    "Hint: 123...\n1000+234=",
    "Hint: 1234\n1000+234=",
    "Hint: 9...\n90+9=",
    "Hint: 9...\n90+9=",
    "Hint: 99\n90+9=",
    "Hint: 99\n90+9=",
  ]);
  for (const r of rewardInputs) assert.ok(ps.includes(r.problem));
  const b = res.batch;
  assert.equal(b.completions.length, 12, "the group size is unchanged");
  const g0 = rowsOf(b, 0);
  assert.deepEqual(
    g0.map((i) => b.prompts[i]),
    [encode("1000+234="), encode("1000+234="), encode("1000+234="), encode("Hint: 12...\n1000+234=")],
  );
  assert.deepEqual(
    g0.map((i) => (b.byFn[0] as Float64Array)[i]),
    [0, 0, 0, 1],
  );
  assert.deepEqual(
    rowsOf(b, 2).map((i) => b.texts[i]),
    ["x", "x", "x", "x"],
    "no level succeeded: the group stays all-fail",
  );
  assert.deepEqual(res.metrics, {
    "rollout/hint_rate": 1 / 3,
    "rollout/hint_level_mean": 2,
    "rollout/sampled": 20,
    "scaf/failed_groups": 2,
    "scaf/active": 1,
  });
  // during the warm-up no hint is sampled
  const warm = fakeHost(gen, exact, 3);
  await new ScafGrpoWrapper({ trigger: "warmup", warmupSteps: 3 }, "p").rollout(warm.host, ps, [4, 4, 4]);
  assert.equal(warm.calls.length, 1);
});

// ---- training runs ------------------------------------------------------------------------------

const model = tinyModelDir(5);
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;
const zeroLogged = `${resolve("test/rollout/fixtures/zero-logged.ts")}#zeroLogged`;
const _quiet = () => {};

async function run(preset: string, extra: Record<string, unknown> = {}): Promise<MetricRecord[]> {
  const cfg = parseTrainConfig({
    name: "run",
    preset,
    seed: 3,
    model: { path: model },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 1], ops: { add: 1 } } },
    rewards: [parity],
    train: { steps: 2, promptsPerStep: 3, groupSize: 4, microBatchSize: 16 },
    sampling: { maxNewTokens: 5 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    ...extra,
  });
  const r = await trainLeakFree(cfg);
  const steps = r.metrics.filter((m) => typeof m.loss === "number");
  assert.equal(steps.length, 2);
  for (const m of steps) assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.grad_norm as number));
  return steps;
}

test("igrpo preset: every step samples exactly B·G completions, half of them drafts", async () => {
  for (const m of await run("igrpo")) {
    assert.equal(m["rollout/sampled"], 12);
    assert.equal(m["igrpo/drafts"], 6);
    assert.equal(m["igrpo/refinements"], 6);
    const d = m["igrpo/draft_reward_mean"] as number;
    assert.ok(d >= 0 && d <= 1);
  }
});

test("sage preset: an always-failing reward hints every group to level 3 and sees only original prompts", async () => {
  const log = join(mkdtempSync(join(tmpdir(), "cohort-wrap-")), "rewards.jsonl");
  process.env.COHORT_WRAPPER_REWARD_LOG = log;
  try {
    const algo = { rollout: { wrapper: { name: "sage", options: { hints: "answer_prefix" } } } };
    for (const m of await run("sage", { rewards: [zeroLogged], algo })) {
      assert.equal(m["rollout/hint_rate"], 1);
      assert.equal(m["rollout/hint_level_mean"], 3);
      assert.equal(m["rollout/sampled"], 48, "the plain group and three hinted re-samples");
    }
  } finally {
    delete process.env.COHORT_WRAPPER_REWARD_LOG;
  }
  const seen = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { prompt: string });
  assert.equal(seen.length, 2 * 48);
  for (const s of seen) assert.match(s.prompt, /^\d\+\d=$/, "the reward sees the original question");
});

test("scaf_grpo preset: after the warm-up every failed group gets one rollout per level", async () => {
  const ms = await run("scaf_grpo", {
    rewards: [zeroLogged],
    algo: {
      rollout: {
        wrapper: {
          name: "scaf_grpo",
          options: { trigger: "warmup", warmupSteps: 1, levels: 4, hints: "answer_prefix" },
        },
      },
    },
  });
  assert.equal(ms[0]?.["rollout/sampled"], 12, "step 1 is in the warm-up");
  assert.equal(ms[0]?.["scaf/failed_groups"], 0);
  assert.equal(ms[1]?.["scaf/failed_groups"], 3);
  assert.equal(ms[1]?.["rollout/sampled"], 12 + 3 * 4);
  assert.equal(ms[1]?.["rollout/hint_rate"], 0, "an always-failing reward: no level succeeds");
});
