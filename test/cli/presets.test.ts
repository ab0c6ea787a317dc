import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { presetNames } from "../../src/presets/index.js";

const cli = (args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { encoding: "utf8" });

test("cohort presets prints every preset with its arXiv id and confidence", () => {
  const r = cli(["presets"]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0] as string, /^name\s+arxiv\s+confidence\s+what it changes/);
  for (const n of presetNames())
    assert.ok(
      lines.some((l) => l.startsWith(`${n} `)),
      `missing ${n}`,
    );
  assert.ok(lines.some((l) => /^dapo\s+2503\.14476\s+CODE-FW\s+\S/.test(l)));
});

test("cohort presets --json is the same table as JSON", () => {
  const r = cli(["presets", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as {
    name: string;
    arxiv: string;
    confidence: string;
    policies: string[];
    config: unknown;
  }[];
  assert.deepEqual(
    rows.map((x) => x.name),
    presetNames(),
  );
  const gspo = rows.find((x) => x.name === "gspo");
  assert.equal(gspo?.arxiv, "2507.18071");
  assert.equal(typeof gspo?.config, "object");
  for (const x of rows) assert.match(x.confidence, /^(CODE|CODE-FW|PAPER|PAPER-KNOWN|ABSTRACT)$/);
  // which policies a preset trains: language models, control policies (src/control) or both
  assert.deepEqual(rows.find((x) => x.name === "grpo")?.policies, ["language"]);
  assert.deepEqual(rows.find((x) => x.name === "ppo")?.policies, ["control"]);
  assert.deepEqual(rows.find((x) => x.name === "mdpo")?.policies, ["language", "control"]);
});
