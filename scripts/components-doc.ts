// Writes docs/COMPONENTS.md and the README's generated tables (algo keys, presets, metric keys) from the registries
// (src/presets/reference.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { componentReference, readmeBlocks, readmeMarkers } from "../src/presets/reference.js";
import { readmeMetricsTable } from "../src/train/step-metrics.js";

writeFileSync(new URL("../docs/COMPONENTS.md", import.meta.url), componentReference());
const readme = new URL("../README.md", import.meta.url);
let text = readFileSync(readme, "utf8");
for (const [block, content] of Object.entries({ ...readmeBlocks(), metrics: readmeMetricsTable() })) {
  const [start, end] = readmeMarkers(block);
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} block`);
  text = `${text.slice(0, a + start.length)}\n${content}\n${text.slice(b)}`;
}
writeFileSync(readme, text);
console.log("wrote docs/COMPONENTS.md and the README's generated tables");
