/**
 * How a dataset line becomes the prompt text the model continues (`dataset.template`, `dataset.system`):
 *
 * - `text`: the prompt as written (after the system prompt and a newline, when one is given); conversational
 *   lines are refused.
 * - `chat`: the tokenizer's own chat template (tokenizer_config.json `chat_template`, as transformers'
 *   `apply_chat_template(…, add_generation_prompt=True)`): a prompt line is one user turn, a conversational line
 *   its turns up to the answer; the system prompt, when given, comes first unless the conversation has one.
 * - `auto` (default): `chat` for conversational lines, `text` for prompt lines.
 *
 * The split and the problem ids are fixed before the template is applied, so changing it moves no line between
 * the splits. Reward functions get the templated prompt as `prompt` and the line as written as `fields`.
 * @module
 */
import { CohortError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type JsonlDataset, type JsonlMeta, mapPrompts, promptMessages } from "./jsonl.js";
import type { Problem } from "./types.js";

export type DatasetTemplate = "auto" | "text" | "chat";

export interface PromptFormat {
  /** Default "auto". */
  template?: DatasetTemplate;
  /** A system prompt (a line before the prompt in `text`, the first turn in `chat`). */
  system?: string;
}

/** The prompt text of a dataset line under `fmt`; `where` locates it in error messages (`file:line`). */
export function formatPrompt(
  p: Problem,
  ds: Pick<JsonlDataset, "options">,
  tok: Tokenizer,
  fmt: PromptFormat,
  where = p.id,
): string {
  const o = ds.options;
  const conversation = promptMessages(p, o?.messagesField, o?.promptField);
  const kind = fmt.template ?? "auto";
  const chat = kind === "chat" || (kind === "auto" && conversation !== null);
  if (!chat) {
    if (conversation !== null)
      throw new CohortError(
        `${where}: a conversational line ("${o?.messagesField ?? "messages"}") needs the chat template; set dataset.template to chat or auto`,
      );
    return fmt.system === undefined ? p.prompt : `${fmt.system}\n${p.prompt}`;
  }
  const messages = conversation ?? [{ role: "user", content: p.prompt }];
  const withSystem =
    fmt.system !== undefined && messages[0]?.role !== "system"
      ? [{ role: "system", content: fmt.system }, ...messages]
      : messages;
  try {
    return tok.applyChatTemplate(withSystem, { addGenerationPrompt: true });
  } catch (e) {
    throw new CohortError(
      `${where}: the model's chat template cannot render this line (${(e as Error).message}); ` +
        `set dataset.template: text for plain prompts${conversation !== null ? " (prompt lines only)" : ""}`,
    );
  }
}

/** The dataset with every prompt made by `fmt` (see the module doc). */
export function templatedDataset(ds: JsonlDataset, tok: Tokenizer, fmt: PromptFormat): JsonlDataset {
  return mapPrompts(ds, (p: Problem<JsonlMeta>, i) =>
    formatPrompt(p, ds, tok, fmt, `${ds.files?.[i] ?? ds.file}:${ds.lines[i]}`),
  );
}
