/**
 * Built-in environments by name, and the `env:` section of a train config:
 *
 * ```yaml
 * env:
 *   name: maze                  # a registered environment (maze, calculator, wordnet)
 *   options: {wallDensity: 0.2} # validated by the environment's own schema (unknown keys rejected)
 *   template: auto              # auto (text for char tokenizers, chat otherwise), text or chat
 *   maxTurns: 10                # actions per episode (default: the environment's)
 *   maxActionTokens: 4          # tokens per action (default: the environment's)
 *   maxEpisodeTokens: 128       # prompt + completion tokens (default: the model's context)
 * ```
 * @module
 */
import { z } from "zod";
import { Registry } from "../algo/registry.js";
import { calculatorSpec } from "./calculator.js";
import { mazeSpec } from "./maze.js";
import type { EnvFactory, EnvSpec } from "./types.js";
import { wordnetSpec } from "./wordnet.js";
import { wordnetMasSpec } from "./wordnet-mas.js";

export const envRegistry = new Registry<EnvSpec>("environment");
envRegistry.register(mazeSpec.name, mazeSpec as EnvSpec);
envRegistry.register(calculatorSpec.name, calculatorSpec as EnvSpec);
envRegistry.register(wordnetSpec.name, wordnetSpec as EnvSpec);
envRegistry.register(wordnetMasSpec.name, wordnetMasSpec as EnvSpec);

/** Builds a registered environment; unknown names and invalid options are ConfigErrors at `path`. */
export function createEnv(name: string, options: unknown = {}, path = "env"): EnvFactory {
  return envRegistry.get(name, `${path}.name`).create(options ?? {}, `${path}.options`);
}

export const envConfigSchema = z.strictObject({
  /** A registered environment: maze, calculator, wordnet. */
  name: z.string().min(1),
  /** The environment's options (its own schema validates them). */
  options: z.record(z.string(), z.unknown()).default({}),
  /** How turns become tokens: text (plain observations, actions end with a newline), chat (the chat template). */
  template: z.enum(["auto", "text", "chat"]).default("auto"),
  /** Actions per episode at most (default: the environment's). */
  maxTurns: z.number().int().positive().optional(),
  /** Tokens per action at most (default: the environment's). */
  maxActionTokens: z.number().int().positive().optional(),
  /** Tokens per episode, prompt included, at most (default: the model's context length). */
  maxEpisodeTokens: z.number().int().positive().optional(),
});

export type EnvConfig = z.output<typeof envConfigSchema>;
export type EnvConfigInput = z.input<typeof envConfigSchema>;
