// Writes the SFT data of the starting model of examples/agents/ (models/calc-tools-tiny): calculator
// conversations in OpenAI's message format, where the assistant either calls the `calc` tool (Hermes-style
// `<tool_call>{json}</tool_call>`, as `cohort serve` parses and renders tool calls for a template without its
// own tool format) and then copies the tool's result, or guesses at once (usually wrong). Half the questions
// get a guess, so the starting model calls the tool about half the time and GRPO has room to teach it.
// Deterministic: `node --import tsx examples/agents/make-data.ts`.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../../src/task/rng.js";

const here = dirname(fileURLToPath(import.meta.url));
const rng = Rng.fromSeed(21n);
const lines: string[] = [];

/** The text the model writes for a call (compact JSON; what `cohort serve` renders an assistant tool call as). */
export const callText = (expression: string): string =>
  `<tool_call>${JSON.stringify({ name: "calc", arguments: { expression } })}</tool_call>`;

for (let i = 0; i < 6000; i++) {
  const a = rng.int(10, 99);
  const b = rng.int(10, 99);
  const question = `${a}*${b}=?`;
  const answer = String(a * b);
  const user = { role: "user", content: question };
  if (rng.float() < 0.5) {
    const guess = String(rng.int(10 ** (answer.length - 1), 10 ** answer.length - 1));
    lines.push(JSON.stringify({ messages: [user, { role: "assistant", content: guess }] }));
    continue;
  }
  const call = { role: "assistant", content: callText(`${a}*${b}`) };
  lines.push(JSON.stringify({ messages: [user, call] }));
  lines.push(
    JSON.stringify({
      messages: [user, call, { role: "tool", content: answer }, { role: "assistant", content: answer }],
    }),
  );
}
writeFileSync(join(here, "tool-sft.jsonl"), `${lines.join("\n")}\n`);

// The tasks the agents are trained on: {"prompt": "37*48=?", "answer": "1776"} (another draw of the same kind).
const tasks = Rng.fromSeed(2121n);
const taskLines = Array.from({ length: 2000 }, () => {
  const a = tasks.int(10, 99);
  const b = tasks.int(10, 99);
  return JSON.stringify({ prompt: `${a}*${b}=?`, answer: String(a * b) });
});
writeFileSync(join(here, "tasks.jsonl"), `${taskLines.join("\n")}\n`);
