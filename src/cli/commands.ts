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

/** Numeric pretrain flags shared by `--dataset` and `--env` (option key → flag). */
const SFT_NUMBER_FLAGS = {
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

const EVAL_USAGE =
  "cohort eval <model-dir | run-dir | checkpoint> (--task <name> [--options JSON] | --dataset <file.jsonl> " +
  "[--dataset-options JSON] [--split all|eval|train] [--template auto|text|chat] [--system TEXT] | --env <name> " +
  "[--options JSON]) [--checkpoint latest|N] [--reward ./reward.ts#fn …] [--metric NAME] [--pass X] [--problems N] " +
  "[--seed N] [--max-new-tokens N] [--temperature T] [--samples N] [--json]\n" +
  "       cohort eval --base-url <url> --model <id> --task <name> [--experiences <experiences.json>] " +
  "[--api-key-env VAR] [--temperature T] [--options JSON] [--problems N] [--seed N] [--max-new-tokens N]";

/** The saved config of the run a run directory or checkpoint belongs to (null for a model directory). */
async function runConfigOf(path: string): Promise<Record<string, unknown> | null> {
  const { existsSync, readFileSync } = await import("node:fs");
  const { dirname, join } = await import("node:path");
  const { isRunDirectory } = await import("../train/evaluate.js");
  const runDir = isRunDirectory(path)
    ? path
    : existsSync(join(path, "weights.safetensors"))
      ? dirname(dirname(path))
      : null;
  if (runDir === null || !existsSync(join(runDir, "config.json"))) return null;
  try {
    return JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function printEvalResult(r: Awaited<ReturnType<typeof import("../train/evaluate.js").evaluateModel>>): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  if (r.samples.length > 0) {
    const cut = (x: unknown, n: number) => {
      const t = JSON.stringify(x ?? "") as string;
      return t.length > n ? `${t.slice(0, n - 1)}…` : t;
    };
    const names = Object.keys(r.rewards);
    const head = ["prompt", "completion", "answer", ...names, "ok"];
    const rows = r.samples.map((s) => [
      cut(s.prompt, 32),
      cut(s.completion, 32),
      cut(s.answer, 16),
      ...names.map((n) => {
        const v = (s.rewards as Record<string, number | null> | undefined)?.[n];
        return typeof v === "number" ? v.toFixed(3) : "–";
      }),
      s.correct === true ? "✓" : s.correct === false ? "✗" : "",
    ]);
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => (x[i] as string).length)));
    const line = (x: string[]) => x.map((c, i) => c.padEnd(w[i] as number)).join("  ");
    console.log([line(head), ...rows.map(line)].join("\n"));
    console.log("");
  }
  const rewardMeans = Object.entries(r.rewards)
    .map(([k, v]) => `${k} ${v === null ? "–" : v.toFixed(3)}`)
    .join(", ");
  console.log(
    `accuracy ${pct(r.accuracy)} (${r.metric}) on ${r.n} problems; answer format ${pct(r.format)}` +
      `${rewardMeans ? `; reward means: ${rewardMeans}` : ""}  [${r.model}]`,
  );
}

export const evalCommand: Command = {
  summary:
    "evaluate a model, a run's final model or checkpoint (or an OpenAI-compatible endpoint) on a task, a dataset or an environment, by the verifier or your own reward",
  usage: EVAL_USAGE,
  async run(args) {
    const usage = this.usage;
    const { values, positionals } = parseCommandArgs(
      args,
      {
        task: { type: "string" },
        options: { type: "string" },
        dataset: { type: "string" },
        "dataset-options": { type: "string" },
        split: { type: "string" },
        template: { type: "string" },
        system: { type: "string" },
        env: { type: "string" },
        checkpoint: { type: "string" },
        reward: { type: "string", multiple: true },
        metric: { type: "string" },
        pass: { type: "string" },
        problems: { type: "string" },
        seed: { type: "string" },
        "max-new-tokens": { type: "string" },
        samples: { type: "string" },
        json: { type: "boolean" },
        "base-url": { type: "string" },
        model: { type: "string" },
        experiences: { type: "string" },
        "api-key-env": { type: "string" },
        temperature: { type: "string" },
      },
      usage,
    );
    const target = positionals[0];
    const remote = values["base-url"] !== undefined;
    const sources = (["task", "dataset", "env"] as const).filter((k) => values[k] !== undefined);
    if (target === undefined && !remote)
      throw new ConfigError(
        `need a model directory, a run directory or a checkpoint (or --base-url and --model)\nusage: ${usage}`,
      );
    if (sources.length !== 1)
      throw new ConfigError(
        `${sources.length === 0 ? "say what to evaluate on" : `${sources.map((k) => `--${k}`).join(" and ")} are both given`}: ` +
          `one of --task NAME, --dataset FILE.jsonl or --env NAME\nusage: ${usage}`,
      );
    if (positionals.length > 1) throw new ConfigError(`unexpected argument ${positionals[1]}\nusage: ${usage}`);
    if (remote && values.model === undefined) throw new ConfigError(`--base-url needs --model\nusage: ${usage}`);
    if (remote && values.task === undefined)
      throw new ConfigError(`--base-url evaluates on a task; add --task NAME\nusage: ${usage}`);
    if (!remote && values.experiences !== undefined)
      throw new ConfigError(
        "--experiences injects a library into chat prompts; use it with --base-url (e.g. a `cohort serve` URL)",
      );
    const onlyWith = (flag: string, source: string) => {
      if (values[flag] !== undefined && values[source] === undefined)
        throw new ConfigError(`--${flag} applies to --${source}\nusage: ${usage}`);
    };
    for (const f of ["dataset-options", "split", "template", "system"]) onlyWith(f, "dataset");
    const taskOptions = jsonObjectFlag(values, "options", '{"digits":[1,3]}');
    const flag = (name: string, c: { what: string; ok: (n: number) => boolean }) =>
      numberFlag(values, name, c.what, c.ok, usage);
    const problems = flag("problems", intAtLeast(1));
    const seed = flag("seed", intAtLeast(0)) ?? 0;
    const maxNewTokens = flag("max-new-tokens", intAtLeast(1));
    const temperature = flag("temperature", nonNegative);
    const pass = flag("pass", { what: "a number", ok: Number.isFinite });
    const samples = flag("samples", intAtLeast(0));
    const choice = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
      const v = values[name];
      if (v === undefined) return undefined;
      if (!allowed.includes(v as T))
        throw new ConfigError(`--${name} ${JSON.stringify(v)}: expected one of ${allowed.join(", ")}\nusage: ${usage}`);
      return v as T;
    };
    const split = choice("split", ["all", "eval", "train"] as const);
    const template = choice("template", ["auto", "text", "chat"] as const);
    const rewards = (values.reward as string[] | undefined) ?? [];
    if (remote && (rewards.length > 0 || values.json === true || values.checkpoint !== undefined))
      throw new ConfigError(
        `--reward, --checkpoint and --json apply to a local model, not --base-url\nusage: ${usage}`,
      );
    if (rewards.length === 0 && (values.metric !== undefined || pass !== undefined))
      throw new ConfigError(
        `--metric and --pass choose among --reward functions; add --reward ./reward.ts#fn\nusage: ${usage}`,
      );
    if (remote) {
      const { evaluateEndpoint } = await import("../train/evaluate.js");
      const opt = <T>(v: T | undefined, k: string) => (v === undefined ? {} : { [k]: v });
      const r = await evaluateEndpoint({
        baseUrl: values["base-url"] as string,
        model: values.model as string,
        task: values.task as string,
        taskOptions,
        problems: problems ?? 200,
        seed,
        maxNewTokens: maxNewTokens ?? 1024,
        ...opt(values.experiences as string | undefined, "experiences"),
        ...opt(values["api-key-env"] as string | undefined, "apiKeyEnv"),
        ...opt(temperature, "temperature"),
      });
      console.log(JSON.stringify(r));
      return 0;
    }
    let checkpoint: "latest" | number | undefined;
    const ck = values.checkpoint as string | undefined;
    if (ck !== undefined) {
      if (ck === "latest") checkpoint = "latest";
      else if (/^\d+$/.test(ck)) checkpoint = Number(ck);
      else
        throw new ConfigError(
          `--checkpoint ${JSON.stringify(ck)}: expected "latest" or a step number\nusage: ${usage}`,
        );
    }
    const { evaluateModel } = await import("../train/evaluate.js");
    // a run's own settings (the template, the dataset fields, the completion limit) unless flags say otherwise
    const run = await runConfigOf(target as string);
    const runDataset = (run?.dataset ?? {}) as {
      options?: Record<string, unknown>;
      template?: string;
      system?: string;
    };
    const runMaxNew = (run?.sampling as { maxNewTokens?: number } | undefined)?.maxNewTokens;
    let data: Parameters<typeof evaluateModel>[0]["data"];
    if (values.dataset !== undefined) {
      const { evalPath: _e, evalFraction: _f, ...fields } = runDataset.options ?? {};
      const datasetOptions = { ...fields, ...jsonObjectFlag(values, "dataset-options", '{"answerField":"gold"}') };
      const tmpl = template ?? (runDataset.template as "auto" | "text" | "chat" | undefined);
      const system = (values.system as string | undefined) ?? runDataset.system;
      data = {
        kind: "dataset",
        path: values.dataset as string,
        options: datasetOptions,
        ...(split !== undefined ? { split } : {}),
        format: { ...(tmpl !== undefined ? { template: tmpl } : {}), ...(system !== undefined ? { system } : {}) },
      };
    } else if (values.env !== undefined) data = { kind: "env", name: values.env as string, options: taskOptions };
    else data = { kind: "task", name: values.task as string, options: taskOptions };
    const r = await evaluateModel({
      path: target as string,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      data,
      rewards,
      ...(values.metric !== undefined ? { metricReward: values.metric as string } : {}),
      ...(pass !== undefined ? { pass } : {}),
      ...(problems !== undefined ? { problems } : {}),
      seed,
      maxNewTokens: maxNewTokens ?? runMaxNew ?? 32,
      ...(temperature !== undefined ? { temperature } : {}),
      samples: samples ?? (values.json === true ? 0 : 5),
    });
    if (r.warning !== undefined) process.stderr.write(`cohort eval: warning: ${r.warning}\n`);
    if (values.json === true) {
      console.log(JSON.stringify(r));
      return 0;
    }
    printEvalResult(r);
    return 0;
  },
};

export const pretrainCommand: Command = {
  summary:
    "supervised fine-tuning: a starting model from your JSONL data (--dataset), a built-in task or scripted episodes",
  usage:
    "cohort pretrain --dataset <data.jsonl> --out <dir> [--from MODEL_DIR] [--dataset-options JSON] " +
    "[--template auto|text|chat] [--system TEXT] [--steps N] [--batch N] [--lr X] [--eval-every N] " +
    "[--target-accuracy X] [--max-new-tokens N] [--max-positions N] [--seed N] [model shape flags]\n" +
    "       cohort pretrain --task <name> --out <dir> [--options JSON] [--seed N] [--steps N] [--batch N] [--lr X] " +
    "[--target-accuracy X] [--eval-every N] [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--mlp N] " +
    "[--think] [--thought-dropout P] [--max-new-tokens N]\n" +
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
        dataset: { type: "string" },
        "dataset-options": { type: "string" },
        template: { type: "string" },
        system: { type: "string" },
        from: { type: "string" },
        "max-new-tokens": { type: "string" },
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
      "max-new-tokens": intAtLeast(1),
    };
    const num = (k: string) => {
      const c = checks[k] as { what: string; ok: (n: number) => boolean };
      return numberFlag(values, k, c.what, c.ok, this.usage);
    };
    const optionsExample = '{"digits":[1,2]}';
    const sources = (["task", "env", "dataset"] as const).filter((k) => values[k] !== undefined);
    if (sources.length !== 1 || values.out === undefined)
      throw new ConfigError(
        `need --out and one of --dataset, --task or --env${sources.length > 1 ? ` (got ${sources.map((k) => `--${k}`).join(" and ")})` : ""}\nusage: ${this.usage}`,
      );
    const only = (flags: string[], source: string) => {
      for (const f of flags)
        if (values[f] !== undefined && values[source] === undefined)
          throw new ConfigError(`--${f} applies to --${source}\nusage: ${this.usage}`);
    };
    only(["dataset-options", "template", "system", "from"], "dataset");
    if (values["max-new-tokens"] !== undefined && values.env !== undefined)
      throw new ConfigError(`--max-new-tokens applies to --dataset and --task\nusage: ${this.usage}`);
    only(["think", "thought-dropout"], "task");
    only(["noise"], "env");
    if (values.dataset !== undefined) {
      if (values.options !== undefined)
        throw new ConfigError(
          `--options applies to --task and --env; a dataset takes --dataset-options\nusage: ${this.usage}`,
        );
      const template = values.template as string | undefined;
      if (template !== undefined && !["auto", "text", "chat"].includes(template))
        throw new ConfigError(
          `--template ${JSON.stringify(template)}: expected one of auto, text, chat\nusage: ${this.usage}`,
        );
      if (values.from !== undefined) {
        for (const f of ["hidden", "layers", "heads", "kv-heads", "mlp"])
          if (values[f] !== undefined)
            throw new ConfigError(
              `--${f} shapes a fresh model; --from starts from the given one\nusage: ${this.usage}`,
            );
      }
      const { sft } = await import("../train/sft.js");
      const o: Parameters<typeof sft>[0] = {
        dataset: values.dataset as string,
        out: values.out as string,
        datasetOptions: jsonObjectFlag(values, "dataset-options", '{"answerFormat":"plain"}'),
        command: `npx cohort pretrain ${args.map(shellQuote).join(" ")}`,
        log: (l) => process.stderr.write(`${l}\n`),
        ...(template !== undefined ? { template: template as "auto" | "text" | "chat" } : {}),
        ...(values.system !== undefined ? { system: values.system as string } : {}),
        ...(values.from !== undefined ? { from: values.from as string } : {}),
      };
      const keys = { ...SFT_NUMBER_FLAGS, maxNewTokens: "max-new-tokens" } as const;
      for (const [k, f] of Object.entries(keys)) {
        const v = num(f);
        if (v !== undefined) (o as unknown as Record<string, number>)[k] = v;
      }
      const r = await sft(o);
      const acc =
        r.evalAccuracy === null ? "no held-out lines" : `held-out accuracy ${(100 * r.evalAccuracy).toFixed(1)}%`;
      console.log(`saved ${o.out}: ${r.steps} steps, ${acc}`);
      return 0;
    }
    if (values.env !== undefined && (await import("../control/env.js")).isControlEnv(values.env as string)) {
      // a control environment's own supervised stage (src/control, e.g. airq's forecaster)
      const { controlEnvSpec } = await import("../control/env.js");
      const { spec, options } = controlEnvSpec(
        values.env as string,
        jsonObjectFlag(values, "options", "{}"),
        "--options",
      );
      if (spec.pretrain === undefined)
        throw new ConfigError(`control environment ${values.env} has no supervised stage\nusage: ${this.usage}`);
      const o: Parameters<NonNullable<typeof spec.pretrain>>[1] = {
        out: values.out as string,
        command: `npx cohort pretrain ${args.map(shellQuote).join(" ")}`,
        log: (l) => process.stderr.write(`${l}\n`),
      };
      for (const [k, f] of [
        ["seed", "seed"],
        ["steps", "steps"],
        ["lr", "lr"],
        ["hidden", "hidden"],
      ] as const) {
        const v = num(f);
        if (v !== undefined) o[k] = v;
      }
      const r = spec.pretrain(options, o);
      console.log(`saved ${o.out}: ${r.steps} steps; ${JSON.stringify(r.metrics)}`);
      return 0;
    }
    if (values.env !== undefined) {
      // scripted episodes of a multi-turn environment (src/env/sft.ts)
      const { pretrainEnv } = await import("../env/sft.js");
      const o: Parameters<typeof pretrainEnv>[0] = {
        env: values.env as string,
        out: values.out as string,
        envOptions: jsonObjectFlag(values, "options", optionsExample),
        command: `npx cohort pretrain ${args.map(shellQuote).join(" ")}`,
      };
      const keys = { ...SFT_NUMBER_FLAGS, noise: "noise" } as const;
      for (const [k, flag] of Object.entries(keys)) {
        const v = num(flag);
        if (v !== undefined) (o as unknown as Record<string, number>)[k] = v;
      }
      const r = pretrainEnv(o);
      console.log(`saved ${o.out}: ${r.steps} steps, held-out success ${(100 * r.evalAccuracy).toFixed(1)}%`);
      return 0;
    }
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
    // the greedy held-out generation limit (a task whose answers are longer than the default 24 tokens)
    set("maxNewTokens", num("max-new-tokens"));
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
