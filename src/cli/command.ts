/**
 * What a `cohort` sub-command is: a summary and usage line for `cohort --help`, and its `run` (exit code);
 * `parseCommandArgs`, the one argument parser every sub-command uses.
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../errors.js";

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number> | number;
}

/** Flags of a sub-command (node:util parseArgs options). */
export type OptionSpec = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

/** Strict flags plus positionals; an unknown or malformed flag is a ConfigError ending with the usage line. */
export function parseCommandArgs(args: string[], options: OptionSpec, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\nusage: ${usage}`);
  }
}
