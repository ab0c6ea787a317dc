// Writes the tutorial's data: "sort the digits" prompts with their answers, a training file and a separate
// held-out file (no prompt in both). Deterministic: `node --import tsx examples/own-task/make-data.ts`.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../../src/task/rng.js";

const here = dirname(fileURLToPath(import.meta.url));
const rng = Rng.fromSeed(2024n);
const seen = new Set<string>();

function line(): string {
  for (;;) {
    const n = rng.int(3, 6);
    const digits = Array.from({ length: n }, () => String(rng.int(0, 9))).join("");
    if (seen.has(digits)) continue;
    seen.add(digits);
    const sorted = [...digits].sort().join("");
    return JSON.stringify({ prompt: `sort ${digits}:`, answer: sorted });
  }
}

const write = (file: string, n: number) =>
  writeFileSync(join(here, file), `${Array.from({ length: n }, line).join("\n")}\n`);
write("data.jsonl", 3000);
write("eval.jsonl", 200);
