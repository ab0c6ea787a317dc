/**
 * `cohort pretrain-flow`: flow-matching pre-training of the digits generator and its reward classifier
 * (pretrain.ts), the starting point of `env: {name: digits_flow, options: {generator: DIR}}`.
 * @module
 */
import type { Command } from "../cli/command.js";
import { parseCommandArgs } from "../cli/command.js";
import { ConfigError } from "../errors.js";

const FLAGS = {
  out: { type: "string" },
  seed: { type: "string" },
  steps: { type: "string" },
  batch: { type: "string" },
  lr: { type: "string" },
  hidden: { type: "string" },
  layers: { type: "string" },
  "classifier-steps": { type: "string" },
} as const;

const INTEGER = new Set(["seed", "steps", "batch", "hidden", "layers", "classifier-steps"]);

export const pretrainFlowCommand: Command = {
  summary: "flow-matching pre-training of the 8×8 digits generator and its reward classifier (for digits_flow)",
  usage:
    "cohort pretrain-flow --out <dir> [--seed N] [--steps N] [--batch N] [--lr X] [--hidden N] [--layers N] [--classifier-steps N]",
  async run(args) {
    const { values } = parseCommandArgs(args, FLAGS, this.usage);
    if (values.out === undefined) throw new ConfigError(`need --out <dir>\nusage: ${this.usage}`);
    const num: Record<string, number> = {};
    for (const k of Object.keys(FLAGS)) {
      if (k === "out" || values[k as keyof typeof values] === undefined) continue;
      const v = values[k as keyof typeof values] as string;
      const n = v.trim() === "" ? Number.NaN : Number(v);
      const ok = INTEGER.has(k) ? Number.isInteger(n) && n >= (k === "seed" ? 0 : 1) : n > 0;
      if (!ok)
        throw new ConfigError(
          `--${k}: expected ${INTEGER.has(k) ? `an integer ≥ ${k === "seed" ? 0 : 1}` : "a number > 0"}, got ${JSON.stringify(v)}\nusage: ${this.usage}`,
        );
      num[k] = n;
    }
    const { pretrainFlow } = await import("./pretrain.js");
    const quote = (a: string) => (/^[A-Za-z0-9_./:=,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
    const r = pretrainFlow({
      out: values.out as string,
      command: `npx cohort pretrain-flow ${args.map(quote).join(" ")}`,
      log: (l) => process.stderr.write(`${l}\n`),
      ...(num.seed !== undefined ? { seed: num.seed } : {}),
      ...(num.steps !== undefined ? { steps: num.steps } : {}),
      ...(num.batch !== undefined ? { batch: num.batch } : {}),
      ...(num.lr !== undefined ? { lr: num.lr } : {}),
      ...(num.hidden !== undefined ? { hidden: num.hidden } : {}),
      ...(num.layers !== undefined ? { layers: num.layers } : {}),
      ...(num["classifier-steps"] !== undefined ? { classifierSteps: num["classifier-steps"] } : {}),
    });
    console.log(
      `saved ${values.out}: ${r.steps} flow-matching steps, final loss ${r.finalLoss.toFixed(4)}, classifier held-out accuracy ${(100 * r.classifierAccuracy).toFixed(1)}%`,
    );
    return 0;
  },
};
