// MasHost's system-construction environment over WordNet (src/env/wordnet-mas.ts): action parsing never
// throws, the role programs against hand-checked rows of data/wordnet/isa.tsv, the component-rationality
// rewards (provisional and in hindsight) against hand-computed episodes, the roller applying the hindsight
// rewards, and mashost_hrpo's advantages on this env's rows against a float64 PyTorch-computed vector.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Pipeline } from "../../src/algo/pipeline.js";
import {
  createEnv,
  type Episode,
  EpisodeRoller,
  EpisodeSource,
  episodeCompletion,
  settle,
} from "../../src/env/index.js";
import { isaGraph } from "../../src/env/wordnet.js";
import {
  MasRoles,
  parseMasAction,
  rationalityRewards,
  type WordnetMasEnv,
  type WordnetMasTask,
  wordnetMasFactory,
} from "../../src/env/wordnet-mas.js";
import { ConfigError } from "../../src/errors.js";
import type { Completion, Sampler } from "../../src/model/sampler.js";
import { resolvePreset } from "../../src/presets/index.js";
import { Rng } from "../../src/task/rng.js";
import { liveTensors, type Tensor } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";

const close = (a: number[], b: number[], tol: number) => {
  assert.equal(a.length, b.length, `${a} vs ${b}`);
  a.forEach((x, i) => assert.ok(Math.abs(x - (b[i] as number)) <= tol, `[${i}] ${x} vs ${b[i]} (${a} vs ${b})`));
};

const factory = wordnetMasFactory({ hops: [1, 2], misspell: 0.3, rationality: 0.1 });
const roles = new MasRoles(isaGraph());
// data/wordnet/isa.tsv: aardvark → placental → mammal (a root)
const aardvark: WordnetMasTask = {
  word: "aardvark",
  hops: 2,
  chain: ["aardvark", "placental", "mammal"],
  shown: "aardvarx",
};

/** Plays `actions` on a fresh environment; returns the provisional rewards, observations and the env. */
function play(task: WordnetMasTask, actions: string[]) {
  const env = factory.make() as WordnetMasEnv;
  const first = env.reset(0, task);
  const steps = actions.map((a) => env.step(a));
  return { env, first, steps, rewards: steps.map((s) => s.reward), obs: steps.map((s) => s.observation) };
}

describe("actions and roles", () => {
  test("role(k) parses; anything else is an error that says what is allowed, never a throw", () => {
    assert.deepEqual(parseMasAction(" hop(2) ", 3), { ok: true, role: "hop", input: 2 });
    assert.deepEqual(parseMasAction("answer(0)", 1), { ok: true, role: "answer", input: 0 });
    for (const bad of [
      "",
      "hop",
      "hop()",
      "hop(x)",
      "HOP(0)",
      "hop(0",
      "jump(0)",
      "hop(-1)",
      "hop(0)(1)",
      "é\u0000",
      "9".repeat(500),
    ])
      assert.match((parseMasAction(bad, 3) as { error: string }).error, /expected role\(k\), role answer\|search\|hop/);
    assert.deepEqual(parseMasAction("search(3)", 3), { ok: false, error: "no node 3 (nodes 0-2)" });
    assert.deepEqual(parseMasAction("hop(9999)", 3).ok, false);
  });

  test("random text never throws: each step is an error observation or a node", () => {
    const rng = Rng.fromSeed(9n);
    const alphabet = "answerchop()0123456789 -#=\n\u00e9";
    for (let e = 0; e < 40; e++) {
      const env = factory.make() as WordnetMasEnv;
      env.reset(0, aardvark);
      for (let t = 0; t < 12; t++) {
        const len = rng.int(0, 14);
        let a = "";
        for (let j = 0; j < len; j++) a += alphabet[rng.int(0, alphabet.length - 1)];
        if (rng.float() < 0.3) a = `${rng.pick(["hop", "search", "answer"])}(${rng.int(0, 12)})`;
        const r = env.step(a);
        assert.ok(r.observation.startsWith("error: ") || /^#\d+=[a-z]+$/.test(r.observation) || r.done, r.observation);
        if (r.done) break;
      }
      assert.equal(env.hindsightRewards().length, env.actions.length);
    }
  });

  test("the role programs: hop follows isa.tsv, search resolves a misspelling with BM25, none propagates", () => {
    assert.equal(roles.hop("aardvark"), "placental");
    assert.equal(roles.hop("placental"), "mammal");
    assert.equal(roles.hop("mammal"), "none", "a root has no parent");
    assert.equal(roles.hop("aardvarx"), "none", "a misspelt word is no entity");
    assert.equal(roles.search("aardvarx"), "aardvark");
    assert.equal(roles.search("aardvark"), "aardvark", "a clean word finds itself (a redundant search)");
    assert.equal(roles.search("none"), "none");
    assert.equal(roles.search("qqqqqqqqqq"), "none");
    // every name of the graph finds its own document first
    for (const n of isaGraph().names.slice(0, 300)) assert.equal(roles.search(n), n);
  });

  test("an episode builds the graph node by node; malformed actions add no node and do not end it", () => {
    const { env, first, obs, steps } = play(aardvark, [
      "hop(0)",
      "blah",
      "search(0)",
      "hop(7)",
      "hop(2)",
      "hop(3)",
      "answer(3)",
    ]);
    assert.equal(first, "kind2(aardvarx)=?");
    assert.deepEqual(obs, [
      "#1=none",
      "error: expected role(k), role answer|search|hop",
      "#2=aardvark",
      "error: no node 7 (nodes 0-2)",
      "#3=placental",
      "#4=mammal",
      "",
    ]);
    assert.deepEqual(
      env.nodes.map((n) => [n.role, n.input, n.output]),
      [
        ["query", -1, "aardvarx"],
        ["hop", 0, "none"],
        ["search", 0, "aardvark"],
        ["hop", 2, "placental"],
        ["hop", 3, "mammal"],
      ],
    );
    assert.deepEqual(
      steps.map((s) => s.done),
      [false, false, false, false, false, false, true],
    );
    assert.deepEqual(
      steps.map((s) => s.info.agent),
      [1, 0, 1, 0, 1, 1, 0],
      "agent 1 = a node-adding decision, 0 = the exit or unparsable text",
    );
    assert.equal(steps[6]?.info.success, false, "answer(3) answers placental, the 2-hop answer is mammal");
  });
});

describe("component-rationality rewards (w = 0.1)", () => {
  test("hand-computed: effective and used +w, redundant / none / unused / malformed −w, answer = outcome", () => {
    const actions = ["hop(0)", "search(0)", "x", "hop(2)", "hop(3)", "search(4)", "hop(2)", "answer(4)"];
    const { env, rewards } = play(aardvark, actions);
    // provisional (at step time): effective ±w; malformed −w; answer = outcome
    close(rewards, [-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, -0.1, 1], 1e-12);
    // nodes: 1 hop(0)=none, 2 search(0)=aardvark, 3 hop(2)=placental, 4 hop(3)=mammal, 5 search(4)=mammal (dup),
    // 6 hop(2)=placental (dup); the answer reads 4 → used {4, 3, 2}
    close(env.hindsightRewards(), [-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, -0.1, 1], 1e-12);
    // an effective node that the answer does not read: provisional +w, in hindsight −w
    const b = play(aardvark, ["search(0)", "hop(1)", "hop(2)", "answer(2)"]);
    close(b.rewards, [0.1, 0.1, 0.1, 0], 1e-12);
    close(b.env.hindsightRewards(), [0.1, 0.1, -0.1, 0], 1e-12);
    // no answer (the turn limit): nothing is used
    const c = play(aardvark, ["search(0)", "hop(1)"]);
    close(c.env.hindsightRewards(), [-0.1, -0.1], 1e-12);
    // the pure function on a hand-built graph, w = 0.25
    const nodes = [
      { role: "query" as const, input: -1, output: "a" },
      { role: "hop" as const, input: 0, output: "b" },
      { role: "hop" as const, input: 0, output: "b" },
      { role: "search" as const, input: 2, output: "c" },
    ];
    const acts = [
      { node: 1, role: "hop" as const },
      { node: 2, role: "hop" as const },
      { node: 3, role: "search" as const },
      { node: -1, role: null },
      { node: -1, role: "answer" as const },
    ];
    // answer reads node 3 → used {3, 2}; node 2 duplicates node 1 (−), node 1 unused (−), node 3 (+)
    close(rationalityRewards(nodes, acts, { node: 3, correct: true }, 0.25), [-0.25, -0.25, 0.25, -0.25, 1], 1e-12);
    close(rationalityRewards(nodes, acts, null, 0.25), [-0.25, -0.25, -0.25, -0.25, 0], 1e-12);
  });

  test("settle() puts the hindsight rewards on the episode and its return; a wrong count is a clear error", () => {
    const { env } = play(aardvark, ["search(0)", "hop(1)", "hop(2)", "answer(2)"]);
    const ep = fakeEpisode([0.1, 0.1, 0.1, 0]);
    settle(env, ep);
    close(
      ep.steps.map((s) => s.reward),
      [0.1, 0.1, -0.1, 0],
      1e-12,
    );
    assert.ok(Math.abs(ep.totalReward - 0.1) < 1e-12);
    assert.throws(
      () => settle(env, fakeEpisode([0, 0])),
      /hindsightRewards\(\) returned 4 rewards for an episode of 2 steps/,
    );
  });
});

describe("tasks and options", () => {
  test("misspelt questions resolve by search; the scripted expert solves every task at noise 0", () => {
    const rng = Rng.fromSeed(3n);
    const expert = factory.expert?.(0);
    assert.ok(expert);
    let misspelt = 0;
    for (let i = 0; i < 200; i++) {
      const { task } = factory.sampleTask(rng, i % 4 === 0 ? "eval" : "train");
      assert.deepEqual(task.chain[0], task.word);
      if (task.shown !== task.word) {
        misspelt++;
        assert.equal(roles.search(task.shown), task.word);
        assert.equal(roles.hop(task.shown), "none");
      }
      const env = factory.make() as WordnetMasEnv;
      env.reset(0, task);
      let done = false;
      for (let t = 0; t < factory.limits.maxTurns && !done; t++) {
        const r = env.step(expert(env, rng));
        done = r.done;
        if (done) assert.equal(r.info.success, true, JSON.stringify(task));
      }
      assert.ok(done);
      for (const r of env.hindsightRewards().slice(0, -1)) assert.equal(r, 0.1, "the expert's nodes are all rational");
    }
    assert.ok(misspelt > 30 && misspelt < 90, `misspelt ${misspelt}/200 at misspell 0.3`);
  });

  test("bad options are ConfigErrors that name the option", () => {
    assert.throws(
      () => createEnv("wordnet_mas", { misspell: 2 }),
      (e: Error) => e instanceof ConfigError && /misspell/.test(e.message),
    );
    assert.throws(() => createEnv("wordnet_mas", { rationality: -1 }), /rationality/);
    assert.throws(() => createEnv("wordnet_mas", { hops: [0, 2] }), /hops/);
    assert.throws(() => createEnv("wordnet_mas", { roles: 3 }), /roles/);
    assert.equal(createEnv("wordnet_mas", {}).name, "wordnet_mas");
  });
});

/** An episode with one 2-token action per step and one observation token between steps. */
function fakeEpisode(rewards: number[], agents: number[] = rewards.map(() => 0)): Episode {
  const lossMask: number[] = [];
  const steps = rewards.map((reward, t) => {
    const start = lossMask.length;
    lossMask.push(1, 1);
    const end = lossMask.length;
    if (t < rewards.length - 1) lossMask.push(0);
    return {
      observation: `o${t}`,
      stateKey: `o${t}`,
      action: "a",
      reward,
      info: { agent: agents[t] as number },
      start,
      end,
    };
  });
  return {
    prompt: [1, 5],
    tokens: lossMask.map(() => 7),
    logprobs: lossMask.map(() => -1),
    lossMask,
    steps,
    totalReward: rewards.reduce((a, b) => a + b, 0),
    success: false,
    finish: "done",
  };
}

describe("rows of this env through the roller and mashost_hrpo", () => {
  const tok = new CharTokenizer();
  // three systems for the same question (one group); the expected values are in the test below
  const scripts = [
    ["search(0)", "hop(1)", "hop(2)", "answer(3)"],
    ["hop(0)", "search(0)", "hop(2)", "hop(3)", "answer(3)"],
    ["zz", "search(0)", "hop(1)", "hop(2)", "hop(0)", "answer(3)"],
  ];

  /** A test policy: writes episode i's scripted actions (identified by its row's turn count and a per-call order). */
  function scripted(order: number[][]): Sampler {
    let call = 0;
    return {
      async generate(prompts) {
        const live = order[call] as number[];
        call++;
        return prompts.map((p, k): Completion => {
          const i = live[k] as number;
          const turn = tok.decode(p).split("\n").length - 1; // "kind…=?\n" then "action\nobs\n" per turn
          const text = `${scripts[i]?.[(turn - 1) / 2] ?? "answer(0)"}\n`;
          const tokens = tok.encode(text);
          return { tokens, logprobs: tokens.map(() => -0.5), finishReason: "stop" };
        });
      },
    };
  }

  test("the roller applies the hindsight rewards; HRPO advantages match the float64 oracle", async () => {
    const roller = new EpisodeRoller(factory, tok, { template: "text", maxTurns: 8, maxActionTokens: 10 });
    // which episodes are live at each turn (episode 0 ends after 4 actions, 1 after 5, 2 after 6)
    const order = [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 2], [2]];
    const eps = await roller.rollWith(scripted(order), 512, [aardvark, aardvark, aardvark], [1, 2, 3], {
      temperature: 1,
      stopTokenIds: [tok.eosId],
    });
    assert.deepEqual(
      eps.map((e) => e.steps.map((s) => s.action)),
      scripts,
    );
    const r = eps.map((e) => e.steps.map((s) => s.reward));
    close(r.flat(), [0.1, 0.1, 0.1, 1, -0.1, 0.1, 0.1, -0.1, 0, -0.1, 0.1, 0.1, 0.1, -0.1, 1], 1e-12);
    // episode 1's hop(3) was provisionally +w (effective) and is −w in hindsight (the answer reads node 3)
    close(
      eps.map((e) => e.totalReward),
      [1.3, 0, 1.1],
      1e-12,
    );
    const source = new EpisodeSource({ name: "wordnet_mas", options: {}, template: "text" } as never, tok);
    const rows = eps.map(episodeCompletion);
    const before = liveTensors();
    /** Per-step advantages of the three systems under an algo config (and: every action token carries its step's). */
    const perStep = (algo: ReturnType<typeof resolvePreset>): number[][] => {
      const stage = source.advantages(new Pipeline(algo), source.scores(rows), rows, Int32Array.of(0, 0, 0));
      assert.equal(stage.advantages.kind, "token");
      const t = stage.advantages.values as Tensor;
      const [, C] = t.shape as [number, number];
      const v = t.data() as Float32Array;
      t.dispose();
      eps.forEach((e, i) => {
        for (const s of e.steps) for (let j = s.start; j < s.end; j++) assert.equal(v[i * C + j], v[i * C + s.start]);
      });
      return eps.map((e, i) => e.steps.map((s) => v[i * C + s.start] as number));
    };
    // /usr/bin/python3 torch float64: A = (R − mean R)/(std_unbiased R + 1e-6) + 0.5·(r − mean r)/(std_unbiased r + 1e-6)
    // over R = [1.3, 0, 1.1]; the preset (actionStats agent): r statistics over the 11 node decisions (agent 1) and
    // over the 4 exit / unparsable decisions (agent 0) apart
    const preset = resolvePreset("mashost_hrpo");
    close(
      perStep(preset).flat(),
      [
        [1.0062187, 1.0062187, 1.0062187, 1.1463181],
        [-1.9213461, -0.8509215, -0.8509215, -1.9213461, -1.5337429],
        [-0.0446087, 0.7205048, 0.7205048, 0.7205048, -0.3499198, 0.8606042],
      ].flat(),
      1e-5,
    );
    // actionStats group: r statistics over all 15 decisions of the group
    const group = { ...preset, advantage: { ...preset.advantage, options: { lambda: 0.5, actionStats: "group" } } };
    close(
      perStep(group as typeof preset).flat(),
      [
        [0.6290907, 0.6290907, 0.6290907, 1.9070012],
        [-1.5120297, -1.2280495, -1.2280495, -1.5120297, -1.3700396],
        [0.0593967, 0.3433768, 0.3433768, 0.3433768, 0.0593967, 1.6212873],
      ].flat(),
      1e-5,
    );
    assert.equal(liveTensors(), before);
  });
});
