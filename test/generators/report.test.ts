/**
 * The report's picture grid: evaluation rows with an 8×8 image (digits_flow) render as inline SVG, the first
 * evaluation ("before") beside the latest ("after"), each pixel a grey square (−1 black, +1 white).
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pictureSvg, renderHtml } from "../../src/report/html.js";
import { loadRun } from "../../src/report/load.js";
import { tmpDir } from "../report/helpers.js";

test("evaluation pictures render before and after as SVG grids", () => {
  const dir = join(tmpDir(), "digits-vgpo");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ preset: "vgpo", seed: 0, train: { steps: 2 } }));
  writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify({ step: 0, eval_return: 0.5 })}\n`);
  const pixels = Array.from({ length: 64 }, (_, k) => (k === 0 ? 1 : k === 1 ? 0 : -1));
  const row = (step: number, d: number) =>
    JSON.stringify({
      step,
      episode: d,
      return: 0.25 * d,
      prompt: `digit ${d}`,
      image: { width: 8, height: 8, pixels },
    });
  writeFileSync(
    join(dir, "samples.jsonl"),
    `${[row(0, 1), row(0, 2), row(2, 3), '{"step":2,"image":{"width":8}}'].join("\n")}\n`,
  );
  const run = loadRun(dir);
  assert.equal(run.samples.filter((s) => s.image !== undefined).length, 3, "a malformed image is dropped");
  const html = renderHtml({ title: "t", runs: [run], kind: "run", dir, manifest: null });
  assert.match(html, /<section id="pictures">/);
  assert.match(html, /<b>before<\/b> \(step 0\)/);
  assert.match(html, /<b>after<\/b> \(step 2\)/);
  assert.equal((html.match(/<svg /g) ?? []).length, 3);
  const svg = pictureSvg({ width: 8, height: 8, pixels }, 6);
  assert.match(svg, /^<svg[^>]*width="48" height="48"/);
  assert.match(svg, /<rect x="0" y="0" width="6" height="6" fill="rgb\(255,255,255\)"\/>/);
  assert.match(svg, /<rect x="6" y="0" width="6" height="6" fill="rgb\(128,128,128\)"\/>/);
  assert.match(svg, /<rect x="42" y="42" width="6" height="6" fill="rgb\(0,0,0\)"\/>/);
});
