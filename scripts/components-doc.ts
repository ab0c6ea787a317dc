// Writes docs/COMPONENTS.md and the README's table of `algo:` keys from the component registries
// (src/algo/reference.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { componentReference, README_MARKERS, readmeAlgoTable } from "../src/algo/reference.js";

writeFileSync(new URL("../docs/COMPONENTS.md", import.meta.url), componentReference());
const readme = new URL("../README.md", import.meta.url);
const text = readFileSync(readme, "utf8");
const [start, end] = README_MARKERS;
const a = text.indexOf(start);
const b = text.indexOf(end);
if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} block`);
writeFileSync(readme, `${text.slice(0, a + start.length)}\n${readmeAlgoTable()}\n${text.slice(b)}`);
console.log("wrote docs/COMPONENTS.md and the README's algo table");
