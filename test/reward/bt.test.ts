import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { btFeatures, btLoss, btPreference, loadBtBase, readPairs, trainBradleyTerry } from "../../src/reward/bt.js";
import { resolvePreference } from "../../src/reward/preference.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { PYTHON } from "../helpers/oracle.js";

const PAIRS = "examples/preferences/pairs.jsonl";
const MODEL = "models/arithmetic-think";

describe("Bradley–Terry preference model", () => {
  test("the BT loss and its gradient against PyTorch float64", { skip: !existsSync(PYTHON) }, () => {
    const D = 5;
    const diffs = Array.from({ length: 7 }, (_, i) =>
      Float64Array.from({ length: D }, (_, k) => Math.sin(3 * i + k) * 2),
    );
    const w = Float64Array.from({ length: D }, (_, k) => 0.3 - 0.2 * k);
    const l2 = 0.05;
    const ours = btLoss(w, diffs, l2);
    const code = `
import json, sys, torch
d = json.load(sys.stdin)
X = torch.tensor(d["x"], dtype=torch.float64)
w = torch.tensor(d["w"], dtype=torch.float64, requires_grad=True)
loss = -torch.nn.functional.logsigmoid(X @ w).mean() + 0.5 * d["l2"] * (w * w).sum()
loss.backward()
print(json.dumps({"loss": loss.item(), "grad": w.grad.tolist()}))`;
    const r = spawnSync(PYTHON, ["-c", code], {
      input: JSON.stringify({ x: diffs.map((d) => Array.from(d)), w: Array.from(w), l2 }),
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const want = JSON.parse(r.stdout);
    assert.ok(Math.abs(ours.loss - want.loss) < 1e-12, `${ours.loss} vs ${want.loss}`);
    want.grad.forEach((g: number, k: number) => assert.ok(Math.abs((ours.grad[k] as number) - g) < 1e-12));
  });

  test("training reaches the convex optimum; the tensor loss equals the float64 reference", () => {
    const base = loadBtBase(MODEL);
    const pairs = readPairs(PAIRS).slice(0, 120);
    const m = trainBradleyTerry(base, pairs, { steps: 600, lr: 0.05, l2: 1e-2, evalFraction: 0 });
    const fc = btFeatures(
      base,
      pairs.map((p) => p.prompt + p.chosen),
    );
    const fr = btFeatures(
      base,
      pairs.map((p) => p.prompt + p.rejected),
    );
    const diffs = fc.map((c, i) => c.map((x, k) => x - ((fr[i] as Float64Array)[k] as number)));
    const at = btLoss(m.w, diffs, 1e-2);
    assert.ok(Math.abs(at.loss - m.info.loss) < 1e-6, `${at.loss} vs ${m.info.loss}`);
    const norm = (g: Float64Array) => Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const start = btLoss(new Float64Array(m.w.length), diffs, 1e-2);
    assert.ok(norm(at.grad) < 0.02 * norm(start.grad), `‖∇‖ ${norm(at.grad)} vs ${norm(start.grad)} at w = 0`);
    assert.ok(at.loss < start.loss);
  });

  test("cohort preference-model writes a model; the preference is σ(r(a) − r(b)) and trains DNO one step", async () => {
    const out = mkdtempSync(join(tmpdir(), "cohort-bt-"));
    const pairsFile = join(out, "pairs.jsonl");
    writeFileSync(pairsFile, `${readFileSync(PAIRS, "utf8").split("\n").slice(0, 200).join("\n")}\n`);
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "preference-model",
        "--pairs",
        pairsFile,
        "--model",
        MODEL,
        "--out",
        join(out, "bt"),
        "--steps",
        "200",
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
    assert.equal(info.pairs + info.evalPairs, 200);
    assert.ok(info.trainAccuracy > 0.55, JSON.stringify(info));
    const meta = JSON.parse(readFileSync(join(out, "bt", "bt.json"), "utf8"));
    assert.equal(meta.kind, "bradley_terry");
    const pref = btPreference(join(out, "bt"));
    const s = (a: string, b: string) => ({ prompt: "7+1=", a, b, fields: {} });
    const ab = (await pref(s("8", "10"))) as number;
    const ba = (await pref(s("10", "8"))) as number;
    assert.ok(ab > 0 && ab < 1 && Math.abs(ab + ba - 1) < 1e-12);
    assert.equal(await pref(s("8", "8")), 0.5);
    // the config entry resolves relative to the config file, and a run trains against it
    const resolved = await resolvePreference({ bt: { path: join(out, "bt") } });
    assert.equal(resolved.name, "bt");
    const cfg = loadTrainConfig("examples/preferences/dno_bt.yaml", [
      `outputDir=${out}`,
      `preference.bt.path=${join(out, "bt")}`,
      "train.steps=1",
      "train.promptsPerStep=2",
      "train.groupSize=3",
      "eval.everySteps=1",
      "eval.problems=2",
      "sampling.maxNewTokens=16",
    ]);
    const run = await train(cfg, { log: () => {} });
    assert.equal(run.steps, 1);
    assert.ok(Number.isFinite(run.metrics.at(-1)?.loss as number));
  });

  test("bad inputs are clear errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "cohort-bt-bad-"));
    const f = join(dir, "p.jsonl");
    writeFileSync(f, '{"prompt":"a","chosen":"b","rejected":"c"}\n{"prompt":"a","chosen":1}\n');
    assert.throws(() => readPairs(f), /p.jsonl:2: "chosen" must be a string/);
    assert.throws(
      () => btPreference(dir),
      (e: Error) => e instanceof ConfigError && /bt.json/.test(e.message),
    );
  });
});
