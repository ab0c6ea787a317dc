/**
 * Writes examples/preferences/pairs.jsonl: 1,000 labelled pairs over 1–2 digit additions and subtractions,
 * `{"prompt": "7+1=", "chosen": "8", "rejected": "10"}` — the right answer preferred to a wrong one (off by
 * 1–9). Deterministic (seed 0).
 *   node --import tsx examples/preferences/make-pairs.ts
 */
import { renameSync, writeFileSync } from "node:fs";
import { createTask } from "../../src/task/index.js";
import { Rng } from "../../src/task/rng.js";

const task = createTask("arithmetic", { ops: { add: 1, sub: 1 }, digits: [1, 2] });
const rng = Rng.fromSeed(0);
const lines: string[] = [];
for (let i = 0; i < 1000; i++) {
  const p = task.sample(rng, "train");
  const a = Number(p.answer);
  const wrong = a + (rng.float() < 0.5 ? -1 : 1) * rng.int(1, 9);
  lines.push(JSON.stringify({ prompt: p.prompt, chosen: `${a}`, rejected: `${wrong}` }));
}
const out = new URL("./pairs.jsonl", import.meta.url);
writeFileSync(new URL("./pairs.jsonl.tmp", import.meta.url), `${lines.join("\n")}\n`);
renameSync(new URL("./pairs.jsonl.tmp", import.meta.url), out);
console.log(`wrote ${out.pathname}: ${lines.length} pairs`);
