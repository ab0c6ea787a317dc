/**
 * The training-side subcommands: train, eval, pretrain, presets.
 * @module
 */
import { ConfigError } from "../errors.js";
import { type Command, parseCommandArgs } from "./command.js";

/** An argument as a POSIX shell would need it written. */
function shellQuote(a: string): string {
  return /^[A-Za-z0-9_./:=,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A numeric flag checked against `ok` (described by `what`, e.g. "an integer ≥ 1"); undefined when absent. */
function numberFlag(values: Values, name: string, what: string, ok: (n: number) => boolean, usage: string) {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || !ok(n))
    throw new ConfigError(`--${name}: expected ${what}, got ${JSON.stringify(v)}\nusage: ${usage}`);
  return n;
}

const intAtLeast = (min: number) => ({
  what: `an integer ≥ ${min}`,
  ok: (n: number) => Number.isInteger(n) && n >= min,
});
const positive = { what: "a number > 0", ok: (n: number) => n > 0 };
const nonNegative = { what: "a number ≥ 0", ok: (n: number) => n >= 0 };
const fraction = { what: "a number in [0, 1]", ok: (n: number) => n >= 0 && n <= 1 };

/** `--options JSON`: a JSON object, or {} when absent. */
function jsonObjectFlag(values: Values, name: string, example: string): Record<string, unknown> {
  const v = values[name];
  if (v === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v as string);
  } catch (e) {
    throw new ConfigError(`--${name} must be a JSON object, e.g. '${example}' (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ConfigError(`--${name} must be a JSON object, e.g. '${example}'`);
  return parsed as Record<string, unknown>;
}

export const trainCommand: Command = {
  summary: "train a policy with GRPO (or any preset) from a YAML config",
  usage:
    "cohort train <config.yaml> [--set key.path=value …] [--resume [--allow-config-change key,…] | --overwrite] " +
    "[--nproc N | --world-size N --rank R --master-addr HOST --master-port PORT] [--dist-timeout S] " +
    "[--dist-backend gloo|nccl]",
  async run(args) {
    const distFlags = { type: "string" } as const; // data parallel (src/parallel/cli.ts)
    const { values, positionals } = parseCommandArgs(
      args,
      {
        set: { type: "string", multiple: true },
        resume: { type: "boolean" },
        overwrite: { type: "boolean" },
        "allow-config-change": { type: "string", multiple: true },
        quiet: { type: "boolean" },
        nproc: distFlags,
        "world-size": distFlags,
        rank: distFlags,
        "master-addr": distFlags,
        "master-port": distFlags,
        "dist-timeout": distFlags,
        "dist-backend": distFlags,
      },
      this.usage,
    );
    const file = positionals[0];
    if (file === undefined) throw new ConfigError(`missing the config file\nusage: ${this.usage}`);
    const { loadTrainConfig } = await import("../train/config.js");
    const cfg = loadTrainConfig(file, (values.set as string[] | undefined) ?? []);
    const dist = await import("../parallel/cli.js");
    const nproc = dist.nprocOf(values);
    if (nproc !== null && nproc > 1) return await dist.launchRanks(nproc, cfg.train.promptsPerStep, args);
    const group = dist.groupFromFlags(values);
    const rank = group?.rank ?? 0;
    const { train } = await import("../train/trainer.js");
    const { progressReporter } = await import("./progress.js");
    const allowConfigChange = ((values["allow-config-change"] as string[] | undefined) ?? []).flatMap((v) =>
      v
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== ""),
    );
    if (allowConfigChange.length > 0 && values.resume !== true)
      throw new ConfigError(`--allow-config-change applies to --resume\nusage: ${this.usage}`);
    // SIGINT (Ctrl-C) and SIGTERM (schedulers, containers, kill): checkpoint after this step, then exit with
    // 130 / 143; a second signal exits at once
    const stop = { stop: false };
    let stopSignal: NodeJS.Signals | null = null;
    const exit = process.exit.bind(process); // the real one, even while rewards run (src/reward/score.ts)
    const onSignal = (sig: NodeJS.Signals) => {
      const code = sig === "SIGTERM" ? 143 : 130;
      if (stop.stop) exit(code);
      stop.stop = true;
      stopSignal = sig;
      const again = sig === "SIGINT" ? "Ctrl-C" : sig;
      process.stderr.write(
        `\ncohort: ${sig}: stopping after this step (saving a checkpoint); ${again} again to abort\n`,
      );
    };
    const stoppedCode = () => (stopSignal === "SIGTERM" ? 143 : 130);
    const rankLog = (l: string) => process.stderr.write(`[rank ${rank}] ${l}\n`);
    // a rank started by --nproc takes its stop requests from the launcher
    const detach = group !== null && dist.launchedRank() ? dist.followLauncher(stop, rankLog) : null;
    if (detach === null) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    const progress = progressReporter(cfg.train.steps, values.quiet === true || rank > 0);
    try {
      const r = await train(cfg, {
        resume: values.resume === true,
        overwrite: values.overwrite === true,
        allowConfigChange,
        stopSignal: stop,
        onStep: progress.update,
        log: rank > 0 ? rankLog : progress.log,
        ...(group !== null ? { dist: group } : {}),
      });
      progress.stop();
      if (rank > 0) return r.stoppedEarly && stop.stop ? stoppedCode() : 0;
      console.log(`run directory: ${r.runDir}`);
      const evals = r.metrics.filter((m) => typeof m.eval_accuracy === "number");
      if (evals.length > 0) {
        const first = evals[0]?.eval_accuracy as number;
        const last = evals.at(-1)?.eval_accuracy as number;
        console.log(`eval accuracy: ${(100 * first).toFixed(1)}% → ${(100 * last).toFixed(1)}%`);
      }
      return r.stoppedEarly && stop.stop ? stoppedCode() : 0;
    } finally {
      progress.stop();
      if (detach === null) {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      } else detach();
      group?.destroy();
    }
  },
};

export const evalCommand: Command = {
  summary:
    "evaluate a model directory (or a run's final model, or an OpenAI-compatible endpoint) on a task's held-out split",
  usage:
    "cohort eval <model-dir | run-dir> --task <name> [--options JSON] [--problems N] [--seed N] [--max-new-tokens N]\n" +
    "       cohort eval --base-url <url> --model <id> --task <name> [--experiences <experiences.json>] " +
    "[--api-key-env VAR] [--temperature T] [--options JSON] [--problems N] [--seed N] [--max-new-tokens N]",
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        task: { type: "string" },
        options: { type: "string" },
        problems: { type: "string" },
        seed: { type: "string" },
        "max-new-tokens": { type: "string" },
        "base-url": { type: "string" },
        model: { type: "string" },
        experiences: { type: "string" },
        "api-key-env": { type: "string" },
        temperature: { type: "string" },
      },
      this.usage,
    );
    const target = positionals[0];
    const remote = values["base-url"] !== undefined;
    if ((target === undefined && !remote) || values.task === undefined)
      throw new ConfigError(`need a model directory (or --base-url and --model) and --task\nusage: ${this.usage}`);
    if (remote && values.model === undefined) throw new ConfigError(`--base-url needs --model\nusage: ${this.usage}`);
    if (!remote && values.experiences !== undefined)
      throw new ConfigError(
        "--experiences injects a library into chat prompts; use it with --base-url (e.g. a `cohort serve` URL)",
      );
    const { evaluateModelDir } = await import("../train/evaluate.js");
    const taskOptions = jsonObjectFlag(values, "options", '{"digits":[1,3]}');
    const flag = (name: string, c: { what: string; ok: (n: number) => boolean }) =>
      numberFlag(values, name, c.what, c.ok, this.usage);
    const problems = flag("problems", intAtLeast(1)) ?? 200;
    const seed = flag("seed", intAtLeast(0)) ?? 0;
    const maxNewTokens = flag("max-new-tokens", intAtLeast(1));
    const temperature = flag("temperature", nonNegative);
    if (remote) {
      const { evaluateEndpoint } = await import("../train/evaluate.js");
      const opt = <T>(v: T | undefined, k: string) => (v === undefined ? {} : { [k]: v });
      const r = await evaluateEndpoint({
        baseUrl: values["base-url"] as string,
        model: values.model as string,
        task: values.task as string,
        taskOptions,
        problems,
        seed,
        maxNewTokens: maxNewTokens ?? 1024,
        ...opt(values.experiences as string | undefined, "experiences"),
        ...opt(values["api-key-env"] as string | undefined, "apiKeyEnv"),
        ...opt(temperature, "temperature"),
      });
      console.log(JSON.stringify(r));
      return 0;
    }
    const r = evaluateModelDir(target as string, {
      task: values.task as string,
      taskOptions,
      problems,
      seed,
      maxNewTokens: maxNewTokens ?? 32,
    });
    console.log(JSON.stringify(r));
    return 0;
  },
};

export const pretrainCommand: Command = {
  summary: "supervised pre-training of a small char-level model on a built-in task (the shipped starting point)",
  usage:
    "cohort pretrain --task <name> --out <dir> [--options JSON] [--seed N] [--steps N] [--batch N] [--lr X] " +
    "[--target-accuracy X] [--eval-every N] [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--mlp N] " +
    "[--think] [--thought-dropout P]\n" +
    "       cohort pretrain --env <name> --out <dir> [--options JSON] [--noise P] [--max-positions N] [same options]",
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        task: { type: "string" },
        out: { type: "string" },
        options: { type: "string" },
        seed: { type: "string" },
        steps: { type: "string" },
        batch: { type: "string" },
        lr: { type: "string" },
        "target-accuracy": { type: "string" },
        "eval-every": { type: "string" },
        hidden: { type: "string" },
        layers: { type: "string" },
        heads: { type: "string" },
        "kv-heads": { type: "string" },
        mlp: { type: "string" },
        think: { type: "boolean" },
        "thought-dropout": { type: "string" },
        env: { type: "string" },
        noise: { type: "string" },
        "max-positions": { type: "string" },
      },
      this.usage,
    );
    const checks: Record<string, { what: string; ok: (n: number) => boolean }> = {
      seed: intAtLeast(0),
      steps: intAtLeast(1),
      batch: intAtLeast(1),
      lr: positive,
      "target-accuracy": fraction,
      "eval-every": intAtLeast(1),
      hidden: intAtLeast(1),
      layers: intAtLeast(1),
      heads: intAtLeast(1),
      "kv-heads": intAtLeast(1),
      mlp: intAtLeast(1),
      "thought-dropout": fraction,
      noise: fraction,
      "max-positions": intAtLeast(1),
    };
    const num = (k: string) => {
      const c = checks[k] as { what: string; ok: (n: number) => boolean };
      return numberFlag(values, k, c.what, c.ok, this.usage);
    };
    const optionsExample = '{"digits":[1,2]}';
    if (values.env !== undefined && values.out !== undefined && values.task === undefined) {
      // scripted episodes of a multi-turn environment (src/env/sft.ts)
      const { pretrainEnv } = await import("../env/sft.js");
      const o: Parameters<typeof pretrainEnv>[0] = {
        env: values.env as string,
        out: values.out as string,
        envOptions: jsonObjectFlag(values, "options", optionsExample),
        command: `npx cohort pretrain ${args.map(shellQuote).join(" ")}`,
      };
      const keys = {
        noise: "noise",
        seed: "seed",
        maxSteps: "steps",
        batchSize: "batch",
        lr: "lr",
        targetAccuracy: "target-accuracy",
        evalEvery: "eval-every",
        hiddenSize: "hidden",
        layers: "layers",
        heads: "heads",
        kvHeads: "kv-heads",
        intermediateSize: "mlp",
        maxPositions: "max-positions",
      } as const;
      for (const [k, flag] of Object.entries(keys)) {
        const v = num(flag);
        if (v !== undefined) (o as unknown as Record<string, number>)[k] = v;
      }
      const r = pretrainEnv(o);
      console.log(`saved ${o.out}: ${r.steps} steps, held-out success ${(100 * r.evalAccuracy).toFixed(1)}%`);
      return 0;
    }
    if (values.task === undefined || values.out === undefined || values.env !== undefined)
      throw new ConfigError(`need --out and one of --task or --env\nusage: ${this.usage}`);
    const { pretrain } = await import("../train/pretrain.js");
    const opts: Parameters<typeof pretrain>[0] = {
      task: values.task as string,
      out: values.out as string,
      taskOptions: jsonObjectFlag(values, "options", optionsExample),
      command: `npx cohort pretrain ${args.map(shellQuote).join(" ")}`,
    };
    const set = <K extends keyof typeof opts>(k: K, v: (typeof opts)[K] | undefined) => {
      if (v !== undefined) opts[k] = v;
    };
    set("seed", num("seed"));
    set("maxSteps", num("steps"));
    set("batchSize", num("batch"));
    set("lr", num("lr"));
    set("targetAccuracy", num("target-accuracy"));
    set("evalEvery", num("eval-every"));
    set("hiddenSize", num("hidden"));
    set("layers", num("layers"));
    set("heads", num("heads"));
    set("kvHeads", num("kv-heads"));
    set("intermediateSize", num("mlp"));
    // targets with the task's reasoning trace in <think>…</think>; TON drops it with probability P
    set("think", values.think === true ? true : undefined);
    set("thoughtDropout", num("thought-dropout"));
    const r = pretrain(opts);
    const dropped = r.thoughts.total > 0 ? `, thoughts dropped ${r.thoughts.dropped} of ${r.thoughts.total}` : "";
    console.log(`saved ${values.out}: ${r.steps} steps, eval accuracy ${(100 * r.evalAccuracy).toFixed(1)}%${dropped}`);
    return 0;
  },
};

export const presetsCommand: Command = {
  summary: "list the method presets (name, arXiv id, confidence, what it changes); --json for JSON",
  usage: "cohort presets [--json]",
  async run(args) {
    const { values } = parseCommandArgs(args, { json: { type: "boolean" } }, this.usage);
    const { presetNames, getPreset } = await import("../presets/index.js");
    const rows = presetNames().map((n) => {
      const p = getPreset(n);
      return {
        name: p.name,
        title: p.title,
        arxiv: p.arxiv,
        confidence: p.confidence,
        policies: p.policies ?? ["language"],
        doc: p.doc,
        config: p.config,
      };
    });
    if (values.json) {
      console.log(JSON.stringify(rows, null, 2));
      return 0;
    }
    const w = (k: "name" | "arxiv" | "confidence") => Math.max(k.length, ...rows.map((r) => r[k].length));
    const [wn, wa, wc] = [w("name"), w("arxiv"), w("confidence")];
    console.log(`${"name".padEnd(wn)}  ${"arxiv".padEnd(wa)}  ${"confidence".padEnd(wc)}  what it changes`);
    for (const r of rows) {
      const first = r.doc.split(/(?<=\.)\s/)[0] ?? r.doc;
      console.log(`${r.name.padEnd(wn)}  ${r.arxiv.padEnd(wa)}  ${r.confidence.padEnd(wc)}  ${first}`);
    }
    return 0;
  },
};
