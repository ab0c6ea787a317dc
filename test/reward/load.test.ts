import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.js";
import { correctnessReward, formatReward, toRewardSample } from "../../src/reward/builtin.js";
import {
  loadRewardFn,
  parseRewardRef,
  resolveReward,
  resolveRewards,
  rewardEntrySchema,
  rewardName,
} from "../../src/reward/load.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";

const dir = fileURLToPath(new URL("../fixtures/rewards/", import.meta.url));
// Module paths are relative to the config file's folder; the file itself need not exist for that.
const configFile = join(dir, "cohort.yaml");
const sample = { prompt: "2+3=", completion: "<answer>5</answer>", answer: "5", fields: { bonus: true } };

test("parseRewardRef splits module and export, and explains the expected form", () => {
  assert.deepEqual(parseRewardRef("./my-reward.ts#score"), { module: "./my-reward.ts", exportName: "score" });
  assert.deepEqual(parseRewardRef("../a#b/c.ts#default"), { module: "../a#b/c.ts", exportName: "default" });
  assert.throws(
    () => parseRewardRef("./my-reward.ts", "rewards[0]"),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.path === "rewards[0]" &&
      e.message ===
        'rewards[0]: reward "./my-reward.ts" is not "<module path>#<export name>"; write e.g. "./my-reward.ts#score" (use #default for a default export), or a built-in name: correctness, distinct_2, format, ndcg, perspective',
  );
  assert.throws(() => parseRewardRef("./r.ts#"), ConfigError);
  assert.equal(rewardName("./rewards/my-reward.ts#score"), "my-reward#score");
  assert.equal(rewardName("correctness"), "correctness");
});

test("loads TypeScript rewards (sync, async, default export) relative to the config file", async () => {
  const score = await loadRewardFn("./length.ts#score", { configFile });
  assert.equal(await score({ ...sample, completion: "abcd" }), 0.4);
  const match = await loadRewardFn("./length.ts#matchesAnswer", { configFile });
  assert.equal(await match(sample), 1);
  assert.equal(await match({ ...sample, completion: "<answer>6</answer>" }), 0);
  const { answer: _, ...noAnswer } = sample;
  assert.equal(await match(noAnswer), null);
  const dflt = await loadRewardFn("./length.ts#default", { configFile });
  assert.equal(await dflt(sample), 1);
  const abs = await loadRewardFn(`${join(dir, "length.ts")}#score`);
  assert.equal(await abs({ ...sample, completion: "x".repeat(50) }), 1);
});

test("loads plain JavaScript rewards", async () => {
  const fn = await loadRewardFn("./plain.mjs#score", { configFile });
  assert.equal(await fn({ ...sample, completion: " 5 " }), 1);
  assert.equal(await fn({ ...sample, completion: "6" }), 0);
});

test("loading errors name the reference, the file and the fix", async () => {
  const missing = join(dir, "missing.ts");
  await assert.rejects(loadRewardFn("./missing.ts#score", { configFile, path: "rewards[2]" }), {
    name: "ConfigError",
    message: `rewards[2]: reward "./missing.ts#score": no file ${missing} (module paths are relative to the folder of ${configFile})`,
  });
  const length = join(dir, "length.ts");
  await assert.rejects(loadRewardFn("./length.ts#scroe", { configFile }), {
    message: `reward: reward "./length.ts#scroe": ${length} has no export "scroe"; its exports: default, matchesAnswer, notAFunction, score`,
  });
  await assert.rejects(loadRewardFn("./length.ts#notAFunction", { configFile }), {
    message: `reward: reward "./length.ts#notAFunction": export "notAFunction" of ${length} is a number, expected a function (sample) => number | null`,
  });
  await assert.rejects(loadRewardFn("./throws-on-import.ts#score", { configFile }), {
    message: /loading .*throws-on-import\.ts failed: reward module failed to initialise$/,
  });
  const fixtures = join(dir, "..", "datasets", "qa.jsonl");
  await assert.rejects(
    loadRewardFn(`${fixtures}#score`),
    /cannot load "\.jsonl" modules; use one of \.ts, \.mts, \.cts, \.js, \.mjs, \.cjs/,
  );
});

test("built-in correctness and format rewards use the task verifier", async () => {
  const task = arithmeticTask();
  const p = { id: "arithmetic/2+3", prompt: "2+3=", answer: "5", meta: { op: "add" as const, a: "2", b: "3" } };
  const correctness = correctnessReward(task);
  const format = formatReward(task);
  const score = (c: string) => [correctness(toRewardSample(p, c)), format(toRewardSample(p, c))];
  assert.deepEqual(score("<answer>5</answer>"), [1, 1]);
  assert.deepEqual(score("<answer>6</answer>"), [0, 1]);
  assert.deepEqual(score("<answer>5</answer><answer>"), [1, 0]);
  assert.deepEqual(score("5"), [0, 0]);
  assert.deepEqual(toRewardSample(p, "x"), { prompt: "2+3=", completion: "x", answer: "5", fields: p.meta, id: p.id });
});

test("resolveRewards: built-ins, module references, names, fallbacks and duplicate names", async () => {
  const task = arithmeticTask();
  const rs = await resolveRewards(
    ["correctness", "format", { fn: "./length.ts#score", fallback: -1 }, { fn: "./plain.mjs#score", name: "exact" }],
    { configFile, task },
  );
  assert.deepEqual(
    rs.map((r) => [r.name, r.fallback]),
    [
      ["correctness", null],
      ["format", null],
      ["length#score", -1],
      ["exact", null],
    ],
  );
  assert.equal(await rs[0]!.fn({ ...sample, id: "a", fields: { op: "add", a: "2", b: "3" } }), 1);
  await assert.rejects(resolveRewards(["format", "format"], { task }), {
    message: 'rewards[1].name: reward name "format" is also used by rewards[0]; give one of them a distinct name',
  });
  await assert.rejects(resolveReward("correctness"), /verifies against a task, and none is configured; set task/);
  await assert.rejects(
    resolveReward({ fn: "format", fallback: Number.NaN }, { task }),
    /fallback must be a finite number or null/,
  );
  await assert.rejects(
    resolveReward("corectness", { task }),
    /built-in name: correctness, distinct_2, format, ndcg, perspective/,
  );
});

test("rewardEntrySchema accepts the short and long forms only", () => {
  assert.equal(rewardEntrySchema.safeParse("correctness").success, true);
  assert.equal(rewardEntrySchema.safeParse({ fn: "./r.ts#score", name: "r", fallback: 0 }).success, true);
  assert.equal(rewardEntrySchema.safeParse({ fn: "./r.ts#score", fallback: null }).success, true);
  assert.equal(rewardEntrySchema.safeParse({ fn: "./r.ts#score", fallback: Number.POSITIVE_INFINITY }).success, false);
  assert.equal(rewardEntrySchema.safeParse({ fn: "./r.ts#score", weight: 2 }).success, false);
  assert.equal(rewardEntrySchema.safeParse("").success, false);
});
