// The episode roller with a small random model: the token sequence is built turn by turn, observation tokens
// are holes in the loss mask, action tokens carry the sampler's log-probs (equal to the training log-probs),
// step rewards are recorded, and the turn and token limits end episodes.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { type Episode, EpisodeRoller, MazeEnv, mazeFactory } from "../../src/env/index.js";
import { packBatch } from "../../src/model/batch.js";
import { modelConfig } from "../../src/model/config.js";
import { CausalLM } from "../../src/model/llama.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { Rng } from "../../src/task/rng.js";
import { noGrad, tidy } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";

const tok = new CharTokenizer();
const model = new CausalLM(
  modelConfig({
    vocabSize: tok.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 160,
    tieWordEmbeddings: true,
    bosTokenId: tok.bosId,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  }),
  { seed: 4, initStd: 0.1 },
);
after(() => model.dispose());
const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId });
const factory = mazeFactory({ width: 4, height: 4, maxDistance: 4 });
const rng = Rng.fromSeed(11n);
const tasks = Array.from({ length: 6 }, () => factory.sampleTask(rng, "train").task);
const params = { temperature: 1, stopTokenIds: [tok.eosId] };

/** Plays one episode of each task (a random model mostly writes invalid moves, so episodes run to the limits). */
function roll(roller: EpisodeRoller, seeds = tasks.map((_, i) => 100 + i)): Episode[] {
  return roller.roll(sampler, tasks, seeds, params);
}

describe("episodes as token sequences", () => {
  const roller = new EpisodeRoller(factory, tok, { template: "text", maxTurns: 6, maxActionTokens: 3 });
  const eps = roll(roller);

  test("loss mask = the action spans; the holes decode to the observations that followed", () => {
    for (const e of eps) {
      assert.equal(e.tokens.length, e.lossMask.length);
      assert.equal(e.tokens.length, e.logprobs.length);
      assert.ok(e.steps.length >= 1 && e.steps.length <= 6);
      const inSpan = new Array<number>(e.tokens.length).fill(0);
      for (const s of e.steps) for (let j = s.start; j < s.end; j++) inSpan[j] = 1;
      assert.deepEqual(e.lossMask, inSpan, "mask 1 exactly on action tokens");
      e.steps.forEach((s, t) => {
        const next = e.steps[t + 1];
        const hole = tok.decode(e.tokens.slice(s.end, next?.start ?? e.tokens.length));
        const actionText = tok.decode(e.tokens.slice(s.start, s.end), { skipSpecialTokens: true });
        assert.ok(
          actionText.startsWith(s.action),
          `action ${JSON.stringify(s.action)} in ${JSON.stringify(actionText)}`,
        );
        if (next !== undefined) {
          // the glue newline (when the action had none) and the next observation line, nothing else
          assert.equal(hole.replace(/^\n/, ""), `${next.observation}\n`);
          assert.match(next.observation, /^([RL]\d)?([DU]\d)?:U?D?L?R?$/);
        } else assert.equal(hole, "");
        for (let j = s.end; j < (next?.start ?? e.tokens.length); j++) assert.equal(e.logprobs[j], 0);
      });
    }
  });

  test("per-step rewards and infos replay exactly in a fresh environment", () => {
    eps.forEach((e, i) => {
      const env = new MazeEnv();
      env.reset(0, tasks[i]!);
      let total = 0;
      for (const s of e.steps) {
        assert.equal(s.stateKey, env.stateKey());
        const r = env.step(s.action);
        assert.equal(s.reward, r.reward);
        assert.deepEqual(s.info, r.info);
        total += r.reward;
      }
      assert.equal(e.totalReward, total);
      assert.equal(
        e.success,
        e.steps.some((s) => s.info.success === true),
      );
      assert.equal(e.finish, e.success ? "done" : e.steps.length === 6 ? "turns" : "tokens");
    });
  });

  test("action tokens carry the sampler log-probs, equal to the training log-probs (|Δ| < 1e-4)", () => {
    const packed = packBatch(
      eps.map((e) => e.prompt),
      eps.map((e) => e.tokens),
      { padId: tok.padId },
    );
    const P = packed.promptLength;
    const lp = noGrad(() => tidy(() => model.logprobs(packed, { temperature: 1 }).lp.slice(1, P).to("f64").data()));
    const C = packed.inputIds.shape[1]! - P;
    let checked = 0;
    eps.forEach((e, i) => {
      e.lossMask.forEach((m, j) => {
        if (m !== 1) return;
        const d = Math.abs((lp[i * C + j] as number) - (e.logprobs[j] as number));
        assert.ok(d < 1e-4, `episode ${i} token ${j}: |Δ| = ${d}`);
        checked++;
      });
    });
    assert.ok(checked > eps.length, "several action tokens compared");
  });

  test("the same seeds give the same episodes; other seeds other ones", () => {
    assert.deepEqual(roll(roller), eps);
    assert.notDeepEqual(
      roll(
        roller,
        tasks.map((_, i) => 900 + i),
      ).map((e) => e.tokens),
      eps.map((e) => e.tokens),
    );
  });
});

describe("limits", () => {
  test("maxTurns ends an episode after that many actions", () => {
    const eps = roll(new EpisodeRoller(factory, tok, { template: "text", maxTurns: 2, maxActionTokens: 3 }));
    for (const e of eps) {
      assert.ok(e.steps.length <= 2);
      if (!e.success) assert.equal(e.finish, "turns");
    }
  });
  test("the token limit stops before a turn that would not fit; such episodes are truncated", () => {
    const limit = 24;
    const eps = roll(
      new EpisodeRoller(factory, tok, { template: "text", maxTurns: 10, maxActionTokens: 3, maxEpisodeTokens: limit }),
    );
    for (const e of eps) {
      assert.ok(e.prompt.length + e.tokens.length <= limit);
      if (!e.success) assert.equal(e.finish, "tokens");
    }
  });
  test("a first observation longer than the limit is an error that says what to change", () => {
    const r = new EpisodeRoller(factory, tok, { template: "text", maxEpisodeTokens: 8 });
    assert.throws(() => roll(r), /exceeds the episode limit of 8 tokens .* raise the limit or shorten the observation/);
  });
});

describe("chat template", () => {
  test("actions end with EOS; the masked glue holds the template's turn markers and the observation", () => {
    const roller = new EpisodeRoller(factory, tok, { template: "chat", maxTurns: 3, maxActionTokens: 3 });
    const eps = roll(roller);
    for (const e of eps) {
      assert.match(tok.decode(e.prompt), /^<\|bos\|>user: .*:[UDLR]*\nassistant: $/);
      e.steps.forEach((s, t) => {
        const next = e.steps[t + 1];
        if (next === undefined) return;
        const hole = tok.decode(e.tokens.slice(s.end, next.start));
        assert.match(hole, /^(<\|eos\|>)?\nuser: .*\nassistant: $/);
        assert.ok(hole.includes(next.observation));
      });
    }
  });
});
