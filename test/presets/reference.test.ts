// The component reference and the README's table of algo keys are the registries' own output: they cannot
// drift from the code. Every preset is listed in the README.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { presetNames } from "../../src/presets/index.js";
import { componentReference, readmeBlocks, readmeMarkers, SLOTS } from "../../src/presets/reference.js";
import { readmeMetricsTable } from "../../src/train/step-metrics.js";

const readme = readFileSync("README.md", "utf8");

test("docs/COMPONENTS.md is generated from the registries (npm run docs:components)", () => {
  assert.equal(readFileSync("docs/COMPONENTS.md", "utf8"), componentReference());
});

test("the README's generated tables (algo keys, presets) match the registries (npm run docs:components)", () => {
  for (const [name, content] of Object.entries({ ...readmeBlocks(), metrics: readmeMetricsTable() })) {
    const [start, end] = readmeMarkers(name);
    assert.ok(readme.includes(start) && readme.includes(end), `README lacks the ${name} block`);
    const block = readme.slice(readme.indexOf(start) + start.length, readme.indexOf(end)).trim();
    assert.equal(block, content, `README block ${name}: run npm run docs:components`);
  }
  const algo = readmeBlocks().components as string;
  for (const slot of SLOTS) for (const d of slot.registry.list()) assert.ok(algo.includes(`\`${d.name}\``), d.name);
});

test("every preset appears in the README's method tables", () => {
  for (const name of presetNames()) assert.ok(readme.includes(`\`${name}\``), `README lacks preset ${name}`);
});
