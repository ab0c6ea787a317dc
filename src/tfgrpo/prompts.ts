/**
 * The four prompts of Training-Free GRPO (ALGORITHMS.md §B.28): the rollout prompt with the library
 * injected, the per-rollout summary, the per-group critique that proposes operations, and the batch
 * revision. Each judge prompt opens with a fixed first line (`SUMMARY_HEAD`, …) so logs and scripted
 * stand-ins can tell them apart. Operations are requested as a JSON array in a ```json block (parse.ts
 * reads looser output too).
 * @module
 */
import type { ExperienceLibrary } from "./library.js";

export const SUMMARY_HEAD = "Review this attempt at a problem.";
export const CRITIQUE_HEAD = "Compare these attempts at the same problem.";
export const REVISION_HEAD = "Revise the lesson list.";

/** The rollout prompt: the lessons (when there are any), the problem, and where the answer goes. */
export function rolloutPrompt(problem: string, lib: ExperienceLibrary, answerTag: string): string {
  const lessons =
    lib.size === 0
      ? ""
      : `Lessons gathered from earlier attempts at problems like this one. Use the ones that apply:\n${lib.render()}\n\n`;
  return (
    `${lessons}Solve the problem below. Reason as much as you need, then write the final answer between ` +
    `<${answerTag}> and </${answerTag}>.\n\nProblem:\n${problem}`
  );
}

export function summaryPrompt(problem: string, attempt: string, correct: boolean, answer: string | undefined): string {
  const verdict = correct ? "This attempt reached the correct answer." : "This attempt reached a wrong answer.";
  return [
    SUMMARY_HEAD,
    `${verdict}${answer !== undefined ? ` The reference answer is: ${answer}` : ""}`,
    "",
    `Problem:\n${problem}`,
    "",
    `Attempt:\n${attempt}`,
    "",
    "In at most 150 words, retrace the attempt: the approach it chose, the steps that decided the outcome and, " +
      "if it failed, the first step that went wrong and why. Write plain prose, no JSON.",
  ].join("\n");
}

export function critiquePrompt(
  problem: string,
  answer: string | undefined,
  attempts: readonly { summary: string; correct: boolean }[],
  lib: ExperienceLibrary,
  maxOps: number,
): string {
  const list = attempts
    .map((a, i) => `Attempt ${i + 1} (${a.correct ? "correct" : "wrong"}):\n${a.summary}`)
    .join("\n\n");
  return [
    CRITIQUE_HEAD,
    "Some succeeded and some failed. Work out what the successful attempts did that the failed ones did not.",
    "",
    `Problem:\n${problem}`,
    ...(answer !== undefined ? [`Reference answer: ${answer}`] : []),
    "",
    list,
    "",
    `Current lessons:\n${lib.size > 0 ? lib.render() : "(none yet)"}`,
    "",
    `Propose at most ${maxOps} change${maxOps > 1 ? "s" : ""} to the lessons as a JSON array in a \`\`\`json block. Each element is one of:`,
    '  {"op": "add", "text": "<a new lesson>"}',
    '  {"op": "modify", "id": "<id of a current lesson>", "text": "<the improved lesson>"}',
    '  {"op": "delete", "id": "<id of a current lesson that is wrong or misleading>"}',
    '  {"op": "keep"}  (the current lessons already cover it)',
    "A lesson is a short, general strategy or check (under 50 words) that would help on other problems too, " +
      "never a fact about this particular problem.",
  ].join("\n");
}

export function revisionPrompt(
  candidates: Map<string, string>,
  requests: readonly ({ op: "modify"; id: string; text: string } | { op: "delete"; id: string })[],
): string {
  const lessons = [...candidates.entries()].map(([id, t]) => `[${id}]. ${t}`).join("\n");
  const asked = requests
    .map((r) => (r.op === "modify" ? `- modify ${r.id} to: ${r.text}` : `- delete ${r.id}`))
    .join("\n");
  return [
    REVISION_HEAD,
    "The lessons below guide a problem solver; ids starting with C are new proposals.",
    "",
    `Lessons:\n${lessons || "(none)"}`,
    "",
    `Changes reviewers asked for:\n${asked || "(none)"}`,
    "",
    "Return a revision plan as a JSON array in a ```json block. Each element is one of:",
    '  {"op": "modify", "id": "<id>", "text": "<new text>"}',
    '  {"op": "merge", "ids": ["<id>", "<id>"], "text": "<one lesson replacing them>"}',
    '  {"op": "delete", "id": "<id>"}',
    "Merge lessons that overlap, carry out the requested changes that are sound, and delete lessons that are " +
      "wrong or redundant. Lessons you do not mention stay unchanged. Return [] when nothing should change.",
  ].join("\n");
}
