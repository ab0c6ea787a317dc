/**
 * Writes examples/preferences/styles.jsonl: 3,000 1–2 digit additions answered in one of three styles drawn
 * uniformly — digit first (`47`), letter first (`sum 47`) or other first (`=47`) — so that a model trained on
 * it (models/styles-tiny) plays all three strategies of the intransitive `rps_style` preference from the
 * start. The prompts are the built-in arithmetic task's. Deterministic (seed 0).
 *   node --import tsx examples/preferences/make-styles.ts
 */
import { renameSync, writeFileSync } from "node:fs";
import { createTask } from "../../src/task/index.js";
import { Rng } from "../../src/task/rng.js";

const task = createTask("arithmetic", { ops: { add: 1 }, digits: [1, 2] });
const rng = Rng.fromSeed(0);
const STYLES = [(a: string) => a, (a: string) => `sum ${a}`, (a: string) => `=${a}`];
const lines: string[] = [];
for (let i = 0; i < 3000; i++) {
  const p = task.sample(rng, "train");
  const style = STYLES[rng.int(0, 2)] as (a: string) => string;
  lines.push(JSON.stringify({ prompt: p.prompt, answer: style(String(p.answer)) }));
}
const out = new URL("./styles.jsonl", import.meta.url);
writeFileSync(new URL("./styles.jsonl.tmp", import.meta.url), `${lines.join("\n")}\n`);
renameSync(new URL("./styles.jsonl.tmp", import.meta.url), out);
console.log(`wrote ${out.pathname}: ${lines.length} lines`);
