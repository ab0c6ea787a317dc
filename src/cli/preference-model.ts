/**
 * `cohort preference-model`: trains a Bradley–Terry preference model (src/reward/bt.ts) on labelled pairs, a
 * linear head on a frozen model's last hidden state, for `preference: {bt: {path}}` in a train config.
 * @module
 */
import { ConfigError } from "../errors.js";
import { type Command, parseCommandArgs } from "./command.js";

export const preferenceModelCommand: Command = {
  summary: "train a Bradley–Terry preference model (a head on a frozen model) on labelled pairs",
  usage:
    "cohort preference-model --pairs <pairs.jsonl> --model <model dir> --out <dir> [--steps N] [--lr X] [--l2 X] [--eval-fraction F]",
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        pairs: { type: "string" },
        model: { type: "string" },
        out: { type: "string" },
        steps: { type: "string" },
        lr: { type: "string" },
        l2: { type: "string" },
        "eval-fraction": { type: "string" },
      },
      this.usage,
    );
    for (const k of ["pairs", "model", "out"] as const)
      if (typeof values[k] !== "string") throw new ConfigError(`--${k} is required\nusage: ${this.usage}`);
    const num = (k: "steps" | "lr" | "l2" | "eval-fraction", ok: (n: number) => boolean, what: string) => {
      const v = values[k];
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || !ok(n)) throw new ConfigError(`--${k}: expected ${what}, got ${JSON.stringify(v)}`);
      return n;
    };
    const steps = num("steps", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1");
    const lr = num("lr", (n) => n > 0, "a number > 0");
    const l2 = num("l2", (n) => n >= 0, "a number ≥ 0");
    const evalFraction = num("eval-fraction", (n) => n >= 0 && n < 1, "a number in [0, 1)");
    const { loadBtBase, readPairs, saveBradleyTerry, trainBradleyTerry } = await import("../reward/bt.js");
    const pairs = readPairs(values.pairs as string);
    const base = loadBtBase(values.model as string);
    const m = trainBradleyTerry(base, pairs, {
      ...(steps !== undefined ? { steps } : {}),
      ...(lr !== undefined ? { lr } : {}),
      ...(l2 !== undefined ? { l2 } : {}),
      ...(evalFraction !== undefined ? { evalFraction } : {}),
    });
    saveBradleyTerry(m, values.out as string);
    console.log(JSON.stringify({ out: values.out, ...m.info }));
    return 0;
  },
};
