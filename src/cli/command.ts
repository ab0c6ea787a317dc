/**
 * What a `cohort` sub-command is: a summary and usage line for `cohort --help`, and its `run` (exit code).
 * @module
 */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number> | number;
}
