/**
 * The `cohort` command line: a table of subcommands, each with its own --help.
 * @module
 */
import { CohortError } from "../errors.js";
import { pretrainFlowCommand } from "../generators/command.js";
import { exportCommand } from "../io/export-command.js";
import { serveCommand } from "../serve/command.js";
import { tfgrpoCommand } from "../tfgrpo/command.js";
import type { Command } from "./command.js";
import { evalCommand, presetsCommand, pretrainCommand, trainCommand } from "./commands.js";
import { compareCommand, reportCommand } from "./compare.js";
import { preferenceModelCommand } from "./preference-model.js";

export type { Command } from "./command.js";

const commands: Record<string, Command> = {
  train: trainCommand,
  eval: evalCommand,
  pretrain: pretrainCommand,
  presets: presetsCommand,
  "preference-model": preferenceModelCommand,
  compare: compareCommand,
  report: reportCommand,
  serve: serveCommand,
  export: exportCommand,
  tfgrpo: tfgrpoCommand,
  "pretrain-flow": pretrainFlowCommand,
  smoke: {
    summary: "train a tiny MLP and print its loss falling (checks the native core)",
    usage: "cohort smoke [--steps N]",
    async run(args) {
      const { smoke } = await import("./smoke.js");
      const i = args.indexOf("--steps");
      const steps = i >= 0 ? Number(args[i + 1]) : undefined;
      const r = smoke(steps === undefined ? {} : { steps });
      return r.last < r.first / 10 ? 0 : 1;
    },
  },
  info: {
    summary: "print libtorch version, threads, BLAS speed and CUDA availability",
    usage: "cohort info",
    async run() {
      const t = await import("../tensor/index.js");
      const blas = t.checkBlas();
      console.log(
        JSON.stringify({
          torch: t.torchVersion(),
          threads: t.getNumThreads(),
          blasGflops: Math.round(blas.gflops),
          cuda: t.cudaAvailable(),
        }),
      );
      return 0;
    },
  },
};

/** Registers a subcommand (used by the modules that add train, eval, presets, …). */
export function addCommand(name: string, cmd: Command): void {
  commands[name] = cmd;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    "cohort — group-relative policy optimization for TypeScript",
    "",
    "usage: cohort <command> [options] [--debug]   (cohort <command> --help for details; --debug: stack traces)",
    "",
    ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

/** A Node.js system error (full disk, permissions, a port in use, …): a problem of the machine, not a bug. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === "string" &&
    /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code as string) &&
    "syscall" in e
  );
}

/**
 * Runs a command. Every error ends as one line on stderr: a CohortError (bad input, with what is allowed) or a
 * system error (ENOSPC, EACCES, …) exits 2; anything else is a bug in cohort and exits 1, with the stack trace
 * under `--debug`.
 */
export async function run(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const [name, ...rest] = argv.filter((a) => a !== "--debug");
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    console.error(`cohort: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof CohortError) {
      console.error(`cohort ${name}: ${e.message}`);
      return 2;
    }
    if (isSystemError(e)) {
      console.error(`cohort ${name}: ${e.message}${e.code === "ENOSPC" ? " (the disk is full)" : ""}`);
      if (debug) console.error(e.stack);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(
      debug
        ? `cohort ${name}: internal error: ${err.stack}`
        : `cohort ${name}: internal error: ${err.name}: ${err.message.split("\n")[0]} (a bug in cohort; rerun with --debug for the stack trace)`,
    );
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2));
}
