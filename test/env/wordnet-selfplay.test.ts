// Dr. Zero's self-play on wordnet: proposals are parsed and validated against the graph (hand-built cases), the
// proposer's reward follows the authors' formula from the solver's outcomes (hand-computed values), and one
// self-play step played by a scripted policy gives the rows, groups and hop-grouped advantages worked out by hand.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Pipeline } from "../../src/algo/pipeline.js";
import { createEnv } from "../../src/env/registry.js";
import type { Episode } from "../../src/env/roller.js";
import { type EpisodeCompletion, EpisodeSource } from "../../src/env/source.js";
import {
  checkProposal,
  isProposerTask,
  type ProposerEnv,
  parseProposal,
  proposerReward,
  type SelfPlayEnv,
} from "../../src/env/wordnet-selfplay.js";
import { ConfigError } from "../../src/errors.js";
import type { Completion, Sampler, SamplingParams } from "../../src/model/sampler.js";
import { resolvePreset } from "../../src/presets/index.js";
import { Rng } from "../../src/task/rng.js";
import { liveTensors } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { selfPlayPhase, selfPlaySource, selfPlayStage } from "../../src/train/selfplay-source.js";

const ctx = { maxHops: 2, evalFraction: 0.2 };

describe("proposals", () => {
  test("parse: kind<h>(<word>)=? only", () => {
    assert.deepEqual(parseProposal("kind2(cat)=?"), { hops: 2, word: "cat" });
    assert.deepEqual(parseProposal("  kind1(cascara)=? "), { hops: 1, word: "cascara" });
    for (const bad of [
      "",
      "cat",
      "kind2 cat",
      "kind(cat)=?",
      "kind2(cat)",
      "kind2(Cat)=?",
      "kind12(cat)=?",
      "search(cat)",
    ])
      assert.equal(parseProposal(bad), null, bad);
  });

  test("validity against the graph (hand-built cases)", () => {
    // cat → feline → carnivore (2 parents), dog → canine (1), "aardvark" at 1 hop and "abalone" at 2 are held out
    const cases: [string, number, string, boolean, string[] | null][] = [
      ["kind2(cat)=?", 2, "ok", true, ["cat", "feline", "carnivore"]],
      ["kind1(cat)=?", 2, "ok", false, ["cat", "feline"]],
      ["kind1(dog)=?", 1, "ok", true, ["dog", "canine"]],
      ["kind2(dog)=?", 2, "chain", true, null],
      ["kind3(cat)=?", 2, "hops", false, null],
      ["kind0(cat)=?", 1, "hops", false, null],
      ["kind1(zzzq)=?", 1, "word", true, null],
      ["kind1 cat", 1, "syntax", false, null],
      ["kind1(aardvark)=?", 1, "held-out", true, null],
      ["kind2(abalone)=?", 2, "held-out", true, null],
      ["kind2(aardvark)=?", 2, "ok", true, ["aardvark", "placental", "mammal"]],
    ];
    for (const [text, asked, reason, matches, chain] of cases) {
      const c = checkProposal(text, asked, ctx);
      assert.equal(c.reason, reason, text);
      assert.equal(c.valid, reason === "ok", text);
      if (reason !== "syntax") assert.equal(c.matches, matches, text);
      assert.deepEqual(c.task?.chain ?? null, chain, text);
    }
    // a 3-hop question is allowed when the range allows it, and checked against the chain
    assert.equal(checkProposal("kind3(cat)=?", 3, { ...ctx, maxHops: 3 }).reason, "chain");
    assert.deepEqual(checkProposal("kind3(addax)=?", 3, { ...ctx, maxHops: 3 }).task?.chain, [
      "addax",
      "antelope",
      "bovid",
      "ruminant",
    ]);
  });

  test("proposer reward: R = 0.5·fmt + diff, hand-computed", () => {
    const ok = { valid: true, matches: true };
    const off = { valid: true, matches: false };
    // fmt = (1 + think + tool + answer)/4 with tool = answer = 1, think = the hop count asked for
    assert.deepEqual(proposerReward(ok, [true, false, false, false, false]), { format: 1, difficulty: 1, reward: 1.5 });
    assert.deepEqual(proposerReward(ok, [true, true, true, true, false]), {
      format: 1,
      difficulty: 0.25,
      reward: 0.75,
    });
    assert.deepEqual(proposerReward(off, [true, true, true, true, false]), {
      format: 0.75,
      difficulty: 0.25,
      reward: 0.625,
    });
    assert.deepEqual(proposerReward(ok, [true, true, true, true]), { format: 1, difficulty: 0, reward: 0.5 });
    assert.deepEqual(proposerReward(off, [false, false]), { format: 0.75, difficulty: 0, reward: 0.375 });
    assert.deepEqual(proposerReward(off, [true, false, false]), { format: 0.75, difficulty: 1, reward: 1.375 });
    // invalid: the lowest reward whatever the solver did
    assert.deepEqual(proposerReward({ valid: false, matches: true }, null), { format: 0, difficulty: 0, reward: 0 });
    assert.throws(() => proposerReward(ok, null), /needs the solver's outcomes/);
    assert.throws(() => proposerReward(ok, [true]), /at least 2 solver attempts/);
  });
});

describe("the self-play environment", () => {
  test("options are validated with their key path", () => {
    assert.throws(
      () => createEnv("wordnet", { selfPlay: { proposerBaseline: "prompt" } }),
      (e: unknown) => e instanceof ConfigError && /selfPlay\.proposerBaseline/.test(e.message + String(e.path)),
    );
    assert.throws(
      () => createEnv("wordnet", { selfPlay: { hop: 2 } }),
      (e: unknown) => e instanceof ConfigError && /hop/.test(e.message),
    );
  });

  test("train draws mix proposer tasks by pretrainShare; held-out draws are the environment's questions", () => {
    const count = (share: number, split: "train" | "eval") => {
      const f = createEnv("wordnet", { selfPlay: { pretrainShare: share } });
      const rng = Rng.fromSeed(3n);
      return Array.from({ length: 200 }, () => f.sampleTask(rng, split).task).filter(isProposerTask).length;
    };
    assert.equal(count(0, "train"), 0);
    assert.equal(count(1, "train"), 200);
    const half = count(0.5, "train");
    assert.ok(half > 70 && half < 130, String(half));
    assert.equal(count(1, "eval"), 0);
  });

  test("a proposer turn: one action, format reward, success = valid with the hop count asked for", () => {
    const f = createEnv("wordnet", { selfPlay: {} });
    const env = f.make() as SelfPlayEnv;
    const task = { role: "proposer" as const, hops: 2, seed: "cat", doc: "cat isa feline" };
    assert.equal(env.reset(0, task), "propose2:cat isa feline");
    const r = env.step("kind2(cat)=?");
    assert.deepEqual([r.done, r.reward, r.info.success, r.info.valid], [true, 0.5, true, true]);
    env.reset(0, task);
    const r2 = env.step("kind1(cat)=?");
    assert.deepEqual([r2.reward, r2.info.success, r2.info.valid], [0.375, false, true]);
    env.reset(0, task);
    assert.equal(env.step("nonsense").reward, 0);
    assert.equal((env.proposer as ProposerEnv).last?.reason, "syntax");
    // the same environment then plays a solver episode
    assert.equal(env.reset(0, { word: "cat", hops: 1, chain: ["cat", "feline"] }), "kind1(cat)=?");
    assert.equal(env.step("feline").info.success, true);
  });
});

/**
 * A scripted policy behind the `Sampler` interface: proposer call i writes `proposals[i](h)` (h = the hop count in
 * its prompt); a solver's first turn (all attempts of all questions in one call, question-major) answers right
 * when attempt j < hits[q].
 */
class ScriptedSampler implements Sampler {
  readonly tok = new CharTokenizer();
  constructor(
    readonly proposals: ((h: number) => string)[],
    readonly hits: number[],
    readonly n: number,
  ) {}
  async generate(prompts: number[][], _p: SamplingParams): Promise<Completion[]> {
    return prompts.map((ids, k) => {
      const text = this.tok.decode(ids, { skipSpecialTokens: true });
      const pm = /propose(\d):/.exec(text);
      let action: string;
      if (pm) action = (this.proposals[k] as (h: number) => string)(Number(pm[1]));
      else {
        const m = /kind(\d)\(([a-z]+)\)=\?\n$/.exec(text) as RegExpExecArray;
        const q = Math.floor(k / this.n);
        const right: Record<string, string> = { "2:cat": "carnivore", "1:cat": "feline", "1:cascara": "bark" };
        action = k % this.n < (this.hits[q] as number) ? (right[`${m[1]}:${m[2]}`] as string) : "dog";
      }
      const tokens = this.tok.encode(`${action}\n`);
      return { tokens, logprobs: tokens.map(() => -0.5), finishReason: "stop" as const };
    });
  }
}

describe("one self-play step", () => {
  const tok = new CharTokenizer();
  const proposals = [
    (h: number) => `kind${h}(cat)=?`, // valid, the hop count asked for
    (_h: number) => "kind1(cat)=?", // valid; asked for 2 below: another hop count
    (_h: number) => "cat", // invalid
    (_h: number) => "kind1(cascara)=?", // valid, asked 2: another hop count
  ];

  function step(selfPlay: Record<string, unknown>, hits = [1, 4, 0]) {
    const env = new EpisodeSource({ name: "wordnet", options: { hops: [1, 2], selfPlay }, template: "text" }, tok);
    const src = selfPlaySource({
      env,
      sampler: new ScriptedSampler(proposals, hits, 4),
      contextLength: 160,
      params: { temperature: 1, stopTokenIds: [tok.eosId] },
      promptsPerStep: 4,
      groupSize: 4,
      seed: 0,
    });
    return src.collect(1);
  }

  test("rows, rewards and hop-grouped advantages (asked hop count 2 everywhere)", async () => {
    const col = await step({ hops: [2, 2] });
    const { ro } = col;
    // 4 proposer rows, then 3 valid questions × 4 attempts
    assert.equal(ro.completions.length, 4 + 12);
    assert.deepEqual(ro.texts.slice(0, 4), ["kind2(cat)=?\n", "kind1(cat)=?\n", "cat\n", "kind1(cascara)=?\n"]);
    // proposer R = 0.5·fmt + diff: k = 1 of 4 → diff 1, fmt 1; k = 4 → 0, fmt 0.75; invalid 0; k = 0 → 0, fmt 0.75
    const R = Array.from(col.byFn[0] as Float64Array);
    assert.deepEqual(R.slice(0, 4), [1.5, 0.375, 0, 0.375]);
    assert.deepEqual(R.slice(4), [1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
    // one proposer group (all asked 2), then one group per question
    assert.deepEqual(Array.from(ro.groupIndex), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    assert.equal(col.metrics["selfplay/proposer_valid_rate"], 0.75);
    assert.equal(col.metrics["selfplay/proposer_match_rate"], 0.25);
    assert.equal(col.metrics["selfplay/hops_mean"], 4 / 3);
    assert.equal(col.metrics["selfplay/solver_success"], 5 / 12);
    assert.equal(col.metrics["selfplay/invalid_syntax"], 0.25);
    assert.equal(col.metrics["selfplay/difficulty_mean"], 1 / 3);
    // every proposer row trains on its action tokens only (here: all its tokens)
    const c0 = ro.completions[0] as EpisodeCompletion;
    assert.deepEqual(
      c0.lossMask,
      c0.tokens.map(() => 1),
    );

    const before = liveTensors();
    const pl = new Pipeline(resolvePreset("drzero_hrpo", {}, { rewardFunctions: 1 }));
    const st = selfPlayStage(pl, col);
    assert.equal(st.advantages.kind, "sequence");
    const A = Array.from(st.advantages.values as Float64Array);
    // proposers: mean 2.25/4 = 0.5625, unbiased var = (0.9375² + 0.1875²·2 + 0.5625²)/3 = 0.421875
    const sd = Math.sqrt(0.421875) + 1e-6;
    const expP = [0.9375, -0.1875, -0.5625, -0.1875].map((d) => d / sd);
    // question 0: [1, 0, 0, 0] → mean 0.25, sd 0.5; questions 1 and 2: all equal → 0
    const expS = [0.75, -0.25, -0.25, -0.25].map((d) => d / (0.5 + 1e-6));
    const exp = [...expP, ...expS, 0, 0, 0, 0, 0, 0, 0, 0];
    A.forEach((a, i) => assert.ok(Math.abs(a - (exp[i] as number)) < 1e-9, `row ${i}: ${a} vs ${exp[i]}`));
    assert.equal(liveTensors(), before);
  });

  test("proposer groups by the hop count asked for; solver groups by question or by hop count", async () => {
    const col = await step({ hops: [1, 2], solverBaseline: "hops" }, [2, 2, 2]);
    const asked = col.ro.problems.slice(0, 4).map((p) => (p.meta.task as { hops: number }).hops);
    const groups = Array.from(col.ro.groupIndex);
    // proposer rows are ordered by their group label: equal asked hop ⇔ equal group
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) assert.equal(groups[i] === groups[j], asked[i] === asked[j], `${asked}`);
    // solver rows grouped by the question's hop count: the 1-hop questions together
    const solverHops = col.ro.problems.slice(4).map((p) => (p.meta.task as { hops: number }).hops);
    const sg = groups.slice(4);
    for (let i = 0; i < sg.length; i++)
      for (let j = 0; j < sg.length; j++) assert.equal(sg[i] === sg[j], solverHops[i] === solverHops[j]);
    // batch: one proposer group
    const batch = await step({ hops: [1, 2], proposerBaseline: "batch" });
    assert.deepEqual(new Set(Array.from(batch.ro.groupIndex).slice(0, 4)).size, 1);
  });

  test("alternate: k steps of proposer rows, then k of solver rows", async () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((s) => selfPlayPhase(s, 2)),
      ["proposer", "proposer", "solver", "solver", "proposer"],
    );
    assert.equal(selfPlayPhase(7, 0), "joint");
    const env = new EpisodeSource(
      { name: "wordnet", options: { hops: [1, 2], selfPlay: { hops: [2, 2], alternate: 1 } }, template: "text" },
      tok,
    );
    const src = selfPlaySource({
      env,
      sampler: new ScriptedSampler(proposals, [1, 4, 0], 4),
      contextLength: 160,
      params: { temperature: 1, stopTokenIds: [tok.eosId] },
      promptsPerStep: 4,
      groupSize: 4,
      seed: 0,
    });
    const s1 = await src.collect(1);
    const s2 = await src.collect(2);
    assert.equal(s1.ro.completions.length, 4);
    assert.equal(s2.ro.completions.length, 12);
    // the proposer's reward still reads the solver every step
    assert.deepEqual(Array.from(s1.byFn[0] as Float64Array), [1.5, 0.375, 0, 0.375]);
    const eps = s2.ro.completions.map((c) => (c as EpisodeCompletion).episode as Episode);
    assert.equal(eps.filter((e) => e.success).length, 5);
  });
});
