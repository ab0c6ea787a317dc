/**
 * `cohort export <model-dir | run-dir | checkpoint> --gguf out.gguf [--quant f16|q8_0|f32]`: the model (a
 * run's final weights or a checkpoint, LoRA folded in; resolved as `cohort serve` resolves it) with its
 * tokenizer and chat template, as a GGUF file for llama.cpp and Ollama (src/io/gguf.ts).
 * @module
 */
import { statSync } from "node:fs";
import { type Command, parseCommandArgs } from "../cli/command.js";
import { ConfigError } from "../errors.js";

const usage = "cohort export <model-dir | run-dir | checkpoint> --gguf out.gguf [--quant q8_0|f16|f32]";

export const exportCommand: Command = {
  summary: "write a model or a run's trained weights as GGUF (llama.cpp, Ollama), tokenizer and chat template included",
  usage,
  async run(args) {
    const parsed = parseCommandArgs(args, { gguf: { type: "string" }, quant: { type: "string" } }, usage);
    const [target, ...rest] = parsed.positionals;
    const out = parsed.values.gguf as string | undefined;
    if (target === undefined || rest.length > 0 || out === undefined)
      throw new ConfigError(`expected one model, run or checkpoint directory and --gguf <file>\nusage: ${usage}`);
    const quant = (parsed.values.quant as string | undefined) ?? "q8_0";
    if (quant !== "q8_0" && quant !== "f16" && quant !== "f32")
      throw new ConfigError(`--quant: expected q8_0, f16 or f32, got ${JSON.stringify(quant)}`);
    const { loadServedModel } = await import("../serve/load.js");
    const { writeGguf } = await import("./gguf.js");
    const served = loadServedModel(target);
    const name = served.modelDir.split(/[\\/]/).filter(Boolean).at(-1) ?? "cohort";
    const bytes = writeGguf(out, served.model, served.tokenizer, { quant, name });
    served.model.dispose();
    console.log(`cohort export: wrote ${out} (${quant}, ${(bytes / 2 ** 20).toFixed(1)} MiB, from ${served.source})`);
    return statSync(out).size === bytes ? 0 : 1;
  },
};
