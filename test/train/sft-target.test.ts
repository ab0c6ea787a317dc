/**
 * SFT on whole completions (`targetField`): the target is the field as written, a line without it is refused by
 * file:line; `--max-positions` with `--from` extends a model's context (RoPE has no position table) and refuses
 * to shrink it; the model written has the longer context and trains on the longer examples.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { loadJsonl } from "../../src/task/jsonl.js";
import { sft, sftTargetOf } from "../../src/train/sft.js";
import { tinyModelDir } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "cohort-sft-target-"));
const chain = (a: number, b: number) =>
  `<role>teacher</role> ones ${a}+${b}=${a + b} so ${a + b} <role>checker</role> check ${a + b}-${b}=${a} ok <answer>${a + b}</answer>`;
const lines = Array.from({ length: 12 }, (_, i) => ({
  prompt: `${i}+${i + 1}=`,
  answer: `${2 * i + 1}`,
  chain: chain(i, i + 1),
}));
const file = join(dir, "chains.jsonl");
writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(""));

test("targetField: the target is the field as written; without it the answer as answerFormat writes it", async () => {
  const ds = await loadJsonl(file, { targetField: "chain", evalFraction: 0 });
  assert.equal(sftTargetOf(ds.problems[3] as never, ds), chain(3, 4));
  const plain = await loadJsonl(file, { evalFraction: 0 });
  assert.equal(sftTargetOf(plain.problems[3] as never, plain), "<answer>7</answer>");
  const missing = join(dir, "missing.jsonl");
  writeFileSync(missing, `${JSON.stringify(lines[0])}\n${JSON.stringify({ prompt: "1+1=", answer: "2" })}\n`);
  await assert.rejects(
    sft({
      dataset: missing,
      datasetOptions: { targetField: "chain", evalFraction: 0 },
      out: join(dir, "m0"),
      maxSteps: 1,
    }),
    /1 of 2 dataset lines cannot be trained on:\n.*missing\.jsonl:2: no target \(field "chain" must hold a non-empty string\)/,
  );
});

test("--max-positions with --from extends the context; shrinking it is refused", async () => {
  const from = tinyModelDir(3); // 64 positions; the examples are longer than that
  const long = (await loadJsonl(file, { targetField: "chain" })).problems;
  assert.ok(long.some((p) => p.prompt.length + (p.meta.chain as string).length + 2 > 64));
  await assert.rejects(
    sft({
      dataset: file,
      datasetOptions: { targetField: "chain", evalFraction: 0 },
      from,
      out: join(dir, "m1"),
      maxSteps: 1,
    }),
    /do not fit the model's context/,
  );
  await assert.rejects(
    sft({
      dataset: file,
      datasetOptions: { targetField: "chain" },
      from,
      maxPositions: 32,
      out: join(dir, "m2"),
      maxSteps: 1,
    }),
    (e: unknown) => e instanceof ConfigError && /the starting model has 64 positions/.test(e.message),
  );
  const out = join(dir, "m3");
  const r = await sft({
    dataset: file,
    datasetOptions: { targetField: "chain", evalFraction: 0 },
    from,
    maxPositions: 160,
    out,
    maxSteps: 2,
    log: () => {},
  });
  assert.equal(r.steps, 2);
  assert.ok(r.history.every((h) => Number.isFinite(h.loss)));
  assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).max_position_embeddings, 160);
});
