import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { createEnv } from "../../src/env/registry.js";
import { chainOf, isaGraph, isaIndex, searchTool, type WordnetTask, wordnetFactory } from "../../src/env/wordnet.js";
import { ConfigError } from "../../src/errors.js";
import { Rng } from "../../src/task/rng.js";

const task = (word: string, hops: number): WordnetTask => ({
  word,
  hops,
  chain: chainOf(isaGraph(), word, hops) as string[],
});

describe("wordnet search environment", () => {
  test("the shipped graph is WordNet's: known edges, every line well formed, no name twice", () => {
    const lines = readFileSync(new URL("../../data/wordnet/isa.tsv", import.meta.url), "utf8")
      .trim()
      .split("\n");
    assert.ok(lines.length > 2000, `${lines.length} synsets`);
    const names = lines.map((l) => l.split("\t")[0]);
    assert.equal(new Set(names).size, names.length);
    for (const l of lines) assert.match(l, /^[a-z]{3,9}\t[a-z]{3,9}\t\d\d$/);
    const g = isaGraph();
    assert.equal(g.parent.get("cat"), "feline");
    assert.equal(g.parent.get("feline"), "carnivore");
    assert.deepEqual(chainOf(g, "cat", 2), ["cat", "feline", "carnivore"]);
  });

  test("BM25 search finds a name's own document first; topK bounds the documents", () => {
    const idx = isaIndex(isaGraph());
    assert.equal(searchTool(idx, 1).run({ query: "cat" }), "cat isa feline");
    const two = searchTool(idx, 2).run({ query: "feline" }).split(";");
    assert.equal(two.length, 2);
    assert.equal(two[0], "feline isa carnivore");
    assert.match(two[1] as string, / isa feline$/);
    assert.equal(searchTool(idx, 1).run({ query: "qqqq" }), "no results");
  });

  test("an expert episode: searches each hop, answers the last parent; rewards by kind", () => {
    const run = (kind: "em" | "pra" | "caf", actions: string[]) => {
      const f = wordnetFactory({ hops: 2, reward: { kind } });
      const env = f.make();
      assert.equal(env.reset(0, task("cat", 2)), "kind2(cat)=?");
      const out = actions.map((a) => env.step(a));
      return out;
    };
    const good = ["search(cat)", "search(feline)", "carnivore"];
    const em = run("em", good);
    assert.deepEqual(
      em.map((r) => [r.observation, r.reward, r.done]),
      [
        ["cat isa feline", 0, false],
        ["feline isa carnivore", 0, false],
        ["", 1, true],
      ],
    );
    assert.equal(em[2]?.info.success, true);
    assert.equal(em[2]?.info.retrievals, 2);
    // PRA: em + 0.5·(1 + 0.5); CAF: F1·exp(−0.1·2 − 1e-4·(11 + 14 + 9))
    assert.ok(Math.abs((run("pra", good)[2]?.reward as number) - 1.75) < 1e-12);
    assert.ok(Math.abs((run("caf", good)[2]?.reward as number) - Math.exp(-0.2 - 1e-4 * 34)) < 1e-12);
    // a guess without searching: em 0, PRA 0, CAF 0
    assert.equal(run("pra", ["feline"])[0]?.reward, 0);
    // a malformed call is an error observation, not an exception
    const bad = run("em", ["search()"]);
    assert.match(bad[0]?.observation as string, /^error: /);
    assert.equal(bad[0]?.done, false);
  });

  test("the scripted expert solves held-out questions; splits never overlap; options are checked", () => {
    const f = createEnv("wordnet", { hops: [1, 2], topK: 2 });
    const rng = Rng.fromSeed(3);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(f.sampleTask(rng, "train").id);
    let solved = 0;
    for (let i = 0; i < 20; i++) {
      const d = f.sampleTask(rng, "eval");
      assert.ok(!seen.has(d.id));
      const env = f.make();
      env.reset(0, d.task);
      const ex = f.expert?.(0) as NonNullable<typeof f.expert> extends (n: number) => infer P ? P : never;
      for (let s = 0; s < 5; s++) {
        const r = env.step(ex(env, rng));
        if (r.done) {
          solved += r.info.success ? 1 : 0;
          break;
        }
      }
    }
    assert.equal(solved, 20);
    assert.throws(() => createEnv("wordnet", { hops: 5 }), ConfigError);
    assert.throws(() => createEnv("wordnet", { topk: 2 }), ConfigError);
  });
});
