/**
 * `cohort tfgrpo <config.yaml>`: learns an experience library with Training-Free GRPO (run.ts);
 * `--eval` scores the policy on held-out problems with the library injected and without it.
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, parseCommandArgs } from "../cli/command.js";
import { ConfigError } from "../errors.js";

const usage =
  "cohort tfgrpo <config.yaml> [--resume] [--quiet]\n" +
  "       cohort tfgrpo <config.yaml> --eval [--experiences <experiences.json>] [--problems N]";

export const tfgrpoCommand: Command = {
  summary: "Training-Free GRPO: learn an experience library against an OpenAI-compatible endpoint (no weight updates)",
  usage,
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      {
        eval: { type: "boolean" },
        experiences: { type: "string" },
        problems: { type: "string" },
        quiet: { type: "boolean" },
        resume: { type: "boolean" },
      },
      usage,
    );
    const { values, positionals } = parsed;
    const file = positionals[0];
    if (file === undefined) throw new ConfigError(`missing the config file\nusage: ${usage}`);
    const { loadTfgrpoConfig } = await import("./config.js");
    const cfg = loadTfgrpoConfig(file);
    const run = await import("./run.js");
    const log = values.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
    if (!values.eval) {
      const r = await run.runTfgrpo(cfg, {
        log,
        resume: values.resume === true,
        onRecord: (m) => {
          if (values.quiet) return;
          if ("eval_accuracy" in m)
            log(
              `epoch ${m.epoch}: eval accuracy ${(100 * (m.eval_accuracy as number)).toFixed(1)}% (${m.library_size} experiences)`,
            );
          else
            log(
              `step ${m.step}: reward ${(m.reward_mean as number).toFixed(3)}, ${m.groups_with_variance} groups with variance, library ${m.library_size}`,
            );
        },
      });
      console.log(`run directory: ${r.runDir}`);
      console.log(`experiences: ${r.library.size} → ${join(r.runDir, "experiences.json")}`);
      return 0;
    }
    const problemsArg = values.problems === undefined ? undefined : Number(values.problems);
    if (problemsArg !== undefined && !(Number.isInteger(problemsArg) && problemsArg > 0))
      throw new ConfigError(`--problems: expected a positive integer, got ${values.problems}`);
    const evalCfg = { ...cfg, eval: { ...cfg.eval, problems: problemsArg ?? (cfg.eval.problems || 50) } };
    const { task, eval: problems } = await run.problemsOf(evalCfg);
    const libFile = (values.experiences as string | undefined) ?? join(run.runDirOf(cfg), "experiences.json");
    if (!existsSync(libFile))
      throw new ConfigError(`no experience library at ${libFile}; train first or pass --experiences`);
    const lib = run.loadLibrary(libFile);
    const { policy } = run.endpointsOf(cfg, log);
    const { ExperienceLibrary } = await import("./library.js");
    const none = await run.evaluateWithLibrary(
      policy,
      task,
      problems,
      new ExperienceLibrary(),
      cfg.answerTag,
      cfg.eval.temperature,
    );
    const withLib = await run.evaluateWithLibrary(policy, task, problems, lib, cfg.answerTag, cfg.eval.temperature);
    console.log(
      JSON.stringify({
        problems: problems.length,
        experiences: lib.size,
        accuracy_without: none.accuracy,
        accuracy_with: withLib.accuracy,
        format_without: none.format,
        format_with: withLib.format,
      }),
    );
    return 0;
  },
};
