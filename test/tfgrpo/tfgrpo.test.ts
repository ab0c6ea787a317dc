// Training-Free GRPO against a scripted OpenAI-compatible stand-in written here: it plays the policy (answers
// right or wrong on cue) and the judge (canned summaries, critiques and revision plans, malformed ones among
// them). Checks that operations are applied, malformed output is skipped and counted, the library is saved
// every step and epoch, and that it is injected into later prompts and at evaluation.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { run } from "../../src/cli/main.js";
import { parseTfgrpoConfig } from "../../src/tfgrpo/config.js";
import { ExperienceLibrary, loadLibrary } from "../../src/tfgrpo/library.js";
import { extractJson, normalizeId, parseCritique, parseRevision } from "../../src/tfgrpo/parse.js";
import { CRITIQUE_HEAD, REVISION_HEAD, SUMMARY_HEAD } from "../../src/tfgrpo/prompts.js";
import { runTfgrpo } from "../../src/tfgrpo/run.js";
import { tmpRunRoot } from "../train/helpers.js";

const CRITIQUES = [
  '```json\n[{"op": "add", "text": "Check the sum twice."}]\n```',
  "A lesson could be added about carrying digits.", // no JSON at all
  'Here: [{"option": "add", "experience": "Write the answer in tags."}, {"op": "add", "text": "over the limit"},]',
  '[{"op": "modify", "id": "G9", "text": "a lesson that does not exist"}]',
  '[{"op": "frobnicate", "text": "?"}]',
  '{"operations": [{"op": "modify", "modified_from": "[G0]", "text": "Check the sum twice, digit by digit."}]}',
  '[{"op": "delete", "id": "G1"}]',
  '[{"op": "keep"}]',
];
const REVISIONS = [
  "I would merge nothing.", // no JSON
  '```json\n[{"op": "modify", "id": "C0"\n```', // broken JSON
  '[{"op": "modify", "id": "C0", "text": "Write the final answer inside the tags."}]',
  '[{"op": "merge", "ids": ["G0", "G1"], "text": "Check the sum twice and put it in the tags."}, {"op": "delete", "id": "G7"}]',
];

interface Stub {
  url: string;
  rolloutPrompts: string[];
  summaryPrompts: string[];
  stop: () => Promise<void>;
}

/** The stand-in LLM: rollouts alternate right/wrong by choice index; greedy answers are right only with lessons. */
async function stub(): Promise<Stub> {
  let critique = 0;
  let revision = 0;
  const rolloutPrompts: string[] = [];
  const summaryPrompts: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const b = JSON.parse(body) as { messages: { content: string }[]; n?: number; temperature: number };
      const content = b.messages[0]?.content ?? "";
      let outs: string[];
      if (content.startsWith(SUMMARY_HEAD)) {
        summaryPrompts.push(content);
        outs = ["The attempt added the two numbers and wrote the result."];
      } else if (content.startsWith(CRITIQUE_HEAD)) outs = [CRITIQUES[critique++] ?? '[{"op": "keep"}]'];
      else if (content.startsWith(REVISION_HEAD)) outs = [REVISIONS[revision++] ?? "[]"];
      else {
        rolloutPrompts.push(content);
        const m = /Problem:\n(\d+)\+(\d+)=/.exec(content);
        const sum = m ? Number(m[1]) + Number(m[2]) : -1;
        const lessons = content.includes("[G0].");
        outs = Array.from({ length: b.n ?? 1 }, (_, j) => {
          const right = b.temperature === 0 ? lessons : j % 2 === 0;
          return `Adding gives <answer>${right ? sum : sum + 1}</answer>`;
        });
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "x",
          object: "chat.completion",
          model: "stand-in",
          choices: outs.map((c, index) => ({
            index,
            message: { role: "assistant", content: c },
            finish_reason: "stop",
          })),
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    rolloutPrompts,
    summaryPrompts,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function config(root: string, url: string, over: Record<string, unknown> = {}) {
  return {
    name: "tf",
    outputDir: root,
    seed: 3,
    task: { name: "arithmetic", options: { ops: { add: 1 }, digits: [1, 1] } },
    policy: { baseUrl: url, model: "stand-in", maxRetries: 0 },
    train: { epochs: 2, batchSize: 2, groupSize: 4, problems: 4, maxOpsPerGroup: 1, revisionAttempts: 2 },
    eval: { problems: 6 },
    ...over,
  };
}

describe("Training-Free GRPO", () => {
  test("operations are applied, malformed output is skipped and counted, the library is saved and injected", async () => {
    const s = await stub();
    try {
      const root = tmpRunRoot();
      const lines: string[] = [];
      const r = await runTfgrpo(parseTfgrpoConfig(config(root, s.url)), { log: (l) => lines.push(l) });
      const steps = r.records.filter((m) => "step" in m);
      const evals = r.records.filter((m) => "eval_accuracy" in m);
      assert.equal(steps.length, 4);
      const pick = (m: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, m[k]]));
      const keys = [
        "groups_with_variance",
        "critiques",
        "critique_malformed",
        "critique_items_malformed",
        "ops_add",
        "ops_modify",
        "ops_delete",
        "ops_keep",
        "ops_unknown_target",
        "ops_over_limit",
        "revision_calls",
        "revision_malformed",
        "plan_modified",
        "plan_merged",
        "plan_skipped",
        "plan_fallback",
        "library_size",
      ];
      const expected = [
        // step 1: one add, one critique without JSON; both plan attempts unusable → the add is kept as is
        [2, 2, 1, 0, 1, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 1, 1],
        // step 2: aliases accepted, the second op is over the limit; G9 does not exist; C0 rewritten by the plan
        [2, 2, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 2],
        // step 3: an unknown operation; a modify request; the plan merges G0+G1 and names a missing G7
        [2, 2, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1],
        // step 4: G1 is gone (unknown target) and a keep: nothing to revise
        [2, 2, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1],
      ];
      steps.forEach((m, i) => {
        assert.deepEqual(pick(m, keys), Object.fromEntries(keys.map((k, j) => [k, expected[i]?.[j]])), `step ${i + 1}`);
        assert.equal(m.reward_mean, 0.5);
      });
      assert.deepEqual(r.library.toJSON(), { G0: "Check the sum twice and put it in the tags." });

      // persisted: the run's library (atomic, every step) and one snapshot per epoch
      assert.deepEqual(loadLibrary(join(r.runDir, "experiences.json")).toJSON(), r.library.toJSON());
      const saved = JSON.parse(readFileSync(join(r.runDir, "experiences.json"), "utf8"));
      assert.equal(saved.format, "cohort-experiences");
      assert.equal(saved.step, 4);
      assert.deepEqual(loadLibrary(join(r.runDir, "epoch-1", "experiences.json")).toJSON(), {
        G0: "Check the sum twice.",
        G1: "Write the final answer inside the tags.",
      });
      const bad = readFileSync(join(r.runDir, "malformed.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        bad.map((b) => b.kind),
        ["critique", "revision", "revision", "critique item"],
      );
      assert.match(bad[0].output, /carrying digits/);
      assert.ok(lines.some((l) => /unusable critique output skipped/.test(l)));

      // injected: rollouts after step 1 carry the lessons; summaries carry the grade and the reference answer
      assert.ok(!s.rolloutPrompts[0]?.includes("[G0]."));
      assert.ok(s.rolloutPrompts.some((p) => p.includes("[G0]. Check the sum twice.\n[G1]. Write the final answer")));
      assert.ok(s.summaryPrompts.some((p) => /reached a wrong answer\. The reference answer is: \d+/.test(p)));
      // held-out accuracy: the stand-in answers greedily right only when lessons are in the prompt
      assert.deepEqual(
        evals.map((e) => [e.epoch, e.eval_accuracy]),
        [
          [0, 0],
          [1, 1],
          [2, 1],
        ],
      );

      // `cohort tfgrpo --eval` injects a saved library; it scores with and without it
      const file = join(root, "tf.yaml");
      writeFileSync(file, JSON.stringify(config(root, s.url)));
      const out: string[] = [];
      const log = console.log;
      console.log = (x: string) => out.push(x);
      const evalArgs = ["eval", "--base-url", s.url, "--model", "stand-in", "--task", "arithmetic", "--problems", "5"];
      try {
        assert.equal(await run(["tfgrpo", file, "--eval", "--problems", "4"]), 0);
        // and `cohort eval` against any OpenAI-compatible endpoint, with or without the library
        const opts = ["--options", '{"ops": {"add": 1}, "digits": [1, 1]}'];
        assert.equal(await run([...evalArgs, ...opts, "--experiences", join(r.runDir, "experiences.json")]), 0);
        assert.equal(await run([...evalArgs, ...opts]), 0);
      } finally {
        console.log = log;
      }
      const [ev, withLib, without] = out.slice(-3).map((l) => JSON.parse(l));
      assert.deepEqual([ev.problems, ev.experiences, ev.accuracy_without, ev.accuracy_with], [4, 1, 0, 1]);
      assert.deepEqual([withLib.problems, withLib.experiences, withLib.accuracy], [5, 1, 1]);
      assert.deepEqual([without.experiences, without.accuracy], [0, 0]);
    } finally {
      await s.stop();
    }
  });

  for (const stopAt of [1, 2]) {
    test(`a run stopped after step ${stopAt} resumes to the uninterrupted run's library and records`, async () => {
      const strip = (rs: Record<string, unknown>[]) => rs.map(({ time_s: _, ...r }) => r);
      const full = await stub();
      const part = await stub();
      try {
        const a = await runTfgrpo(parseTfgrpoConfig(config(tmpRunRoot(), full.url)), { log: () => {} });
        const root = tmpRunRoot();
        const cfg = parseTfgrpoConfig(config(root, part.url));
        const first = await runTfgrpo(cfg, { log: () => {}, stopAfterStep: stopAt });
        assert.equal(first.records.filter((m) => "step" in m).length, stopAt);
        // a record of a step that never finished saving its library is dropped on resume
        appendFileSync(join(first.runDir, "metrics.jsonl"), `${JSON.stringify({ epoch: 9, step: 99 })}\n`);
        const lines: string[] = [];
        const b = await runTfgrpo(cfg, { log: (l) => lines.push(l), resume: true });
        assert.ok(lines.some((l) => l.includes(`resuming`) && l.includes(`after step ${stopAt}`)));
        assert.deepEqual(b.library.toJSON(), a.library.toJSON());
        assert.deepEqual(strip(b.records), strip(a.records));
        const onDisk = readFileSync(join(b.runDir, "metrics.jsonl"), "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l));
        assert.deepEqual(strip(onDisk), strip(a.records));
        // the rollouts of the finished steps were not asked for again
        assert.equal(part.rolloutPrompts.length, full.rolloutPrompts.length);
        const other = parseTfgrpoConfig(config(root, part.url, { seed: 4 }));
        await assert.rejects(
          () => runTfgrpo(other, { log: () => {}, resume: true }),
          /another config \(differs in: seed\)/,
        );
      } finally {
        await full.stop();
        await part.stop();
      }
    });
  }

  test("an unreachable endpoint skips the groups and never crashes; bad configs name the key", async () => {
    const s = await stub();
    const url = s.url;
    await s.stop();
    const r = await runTfgrpo(
      parseTfgrpoConfig(
        config(tmpRunRoot(), url, {
          train: { epochs: 1, batchSize: 2, groupSize: 2, problems: 2 },
          eval: { problems: 0 },
        }),
      ),
      { log: () => {} },
    );
    assert.equal(r.records[0]?.rollout_failures, 2);
    assert.equal(r.library.size, 0);
    assert.ok(existsSync(join(r.runDir, "experiences.json")));
    assert.throws(() => parseTfgrpoConfig({ task: { name: "arithmetic" } }), /policy/);
    assert.throws(
      () => parseTfgrpoConfig({ ...config("x", url), train: { groupSize: 1 } }),
      /train\.groupSize: Too small/,
    );
    assert.throws(() => parseTfgrpoConfig({ ...config("x", url), polcy: {} }), /unknown key "polcy"/);
  });
});

describe("parsing LLM operations", () => {
  test("JSON in fences, in prose, with trailing commas and typographic quotes; wrappers and aliases", () => {
    assert.deepEqual(extractJson('text ```json\n{"a": 1,}\n``` more'), { ok: true, value: { a: 1 } });
    assert.deepEqual(extractJson("Sure! [1, 2,] hope that helps"), { ok: true, value: [1, 2] });
    assert.deepEqual(extractJson("\u201c\u201d"), { ok: true, value: "" });
    assert.equal(extractJson("").ok, false);
    assert.equal(extractJson("no json here").ok, false);
    assert.deepEqual(parseCritique('{"op": "ADD", "lesson": " Be careful. "}'), {
      ops: [{ op: "add", text: "Be careful." }],
      malformed: 0,
    });
    assert.deepEqual(parseCritique('[{"op": "modify", "id": 2, "text": "t"}, {"op": "add"}, 7]').malformed, 2);
    assert.deepEqual(
      parseRevision('{"plan": [{"op": "merge", "merged_from": ["G1", "[C0]"], "experience": "m"}]}').ops,
      [{ op: "merge", ids: ["G1", "C0"], text: "m" }],
    );
    assert.equal(parseRevision('[{"op": "merge", "ids": [], "text": "m"}]').malformed, 1);
    assert.equal(normalizeId("[G12]."), "G12");
    assert.equal(normalizeId("foo"), null);
    assert.equal(new ExperienceLibrary([["G0", "a"]]).render(), "[G0]. a");
  });
});
