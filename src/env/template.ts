/**
 * How an episode becomes one token sequence, turn by turn: the prompt (first observation), then per turn the
 * model's action tokens (kept exactly as sampled) and the tokens that follow them (template glue and the next
 * observation, masked out of the loss).
 *
 * - `text`: every turn is one line: an observation, then `terminator` (default newline), then the action, which
 *   the model ends with the terminator (or EOS; then the terminator is written for it, masked). Tools, when the
 *   environment has any, are described in one line each before the first observation.
 * - `chat`: the tokenizer's chat template, user turns = observations, assistant turns = actions, tools passed
 *   as the template's `tools` variable (JSON schema). After each action the conversation is re-rendered and
 *   the text beyond what the model has already seen is appended; a template that re-renders earlier turns
 *   differently is an error (use `text`).
 * @module
 */
import { CohortError } from "../errors.js";
import type { ChatMessage, Tokenizer } from "../tokenizer/types.js";
import { describeTools, toolJsonSchema } from "./tools.js";
import type { Tool } from "./types.js";

export type TemplateKind = "text" | "chat";

export interface TemplateOptions {
  /** Text that ends an action in the `text` format. Default "\n". */
  terminator?: string;
  tools?: readonly Tool[];
}

/** The per-episode state of a template (one instance per episode). */
export class TurnTemplate {
  readonly #tok: Tokenizer;
  readonly #terminator: string;
  readonly #tools: readonly Tool[];
  #messages: ChatMessage[] = [];
  /** Chat: the text the token sequence so far decodes to (special tokens included). */
  #text = "";

  constructor(
    tok: Tokenizer,
    readonly kind: TemplateKind,
    opts: TemplateOptions = {},
  ) {
    this.#tok = tok;
    this.#terminator = opts.terminator ?? "\n";
    this.#tools = opts.tools ?? [];
    if (kind === "text" && this.#terminator === "") {
      throw new CohortError('template "text" needs a non-empty action terminator (e.g. "\\n")');
    }
  }

  /** Stop strings for the sampler (EOS always stops an action too). */
  get stop(): string[] {
    return this.kind === "text" ? [this.#terminator] : [];
  }

  #bos(ids: number[]): number[] {
    const bos = this.#tok.bosId;
    return bos !== null && ids[0] !== bos ? [bos, ...ids] : ids;
  }

  #render(): string {
    return this.#tok.applyChatTemplate(this.#messages, {
      addGenerationPrompt: true,
      ...(this.#tools.length > 0 ? { vars: { tools: this.#tools.map(toolJsonSchema) } } : {}),
    });
  }

  /** Prompt token ids for the first observation (BOS first when the tokenizer has one). */
  start(observation: string): number[] {
    if (this.kind === "text") {
      const tools = this.#tools.length > 0 ? `${describeTools(this.#tools)}\n` : "";
      return this.#bos(this.#tok.encode(tools + observation + this.#terminator));
    }
    this.#messages = [{ role: "user", content: observation }];
    this.#text = this.#render();
    return this.#bos(this.#tok.encode(this.#text));
  }

  /** The action text the environment receives: the sampled text without special tokens, cut at the terminator. */
  actionText(actionIds: readonly number[]): string {
    const text = this.#tok.decode(actionIds, { skipSpecialTokens: true });
    if (this.kind === "chat") return text;
    const at = text.indexOf(this.#terminator);
    return at >= 0 ? text.slice(0, at) : text;
  }

  /** Token ids that follow an action: template glue and the next observation (all masked out of the loss). */
  next(actionIds: readonly number[], observation: string): number[] {
    if (this.kind === "text") {
      const sampled = this.#tok.decode(actionIds, { skipSpecialTokens: true });
      const glue = sampled.endsWith(this.#terminator) ? "" : this.#terminator;
      return this.#tok.encode(glue + observation + this.#terminator);
    }
    const content = this.#tok.decode(actionIds, { skipSpecialTokens: true });
    const sampled = this.#tok.decode(actionIds);
    this.#messages.push({ role: "assistant", content }, { role: "user", content: observation });
    const full = this.#render();
    let seen: string;
    if (full.startsWith(this.#text + sampled)) seen = this.#text + sampled;
    else if (full.startsWith(this.#text + content)) seen = this.#text + content;
    else {
      throw new CohortError(
        "the chat template re-renders earlier turns differently once a turn is added, so an episode cannot be " +
          'built turn by turn with it; set env.template: "text"',
      );
    }
    this.#text = full;
    return this.#tok.encode(full.slice(seen.length));
  }
}
