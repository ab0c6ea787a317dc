/**
 * Held-out success rate of a saved model on an environment: one episode per held-out task, greedy or sampled
 * with fixed per-episode seeds (so two models are compared on the same tasks and the same random streams).
 * The held-out tasks are drawn as the trainer draws its evaluation set, from the eval split.
 * @module
 */
import { CohortError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { eosIds } from "../model/config.js";
import { CausalLM } from "../model/llama.js";
import { LocalSampler } from "../model/sampler.js";
import { Rng } from "../task/rng.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import { type EnvConfigInput, envConfigSchema } from "./registry.js";
import { EpisodeSource, episodeMetrics } from "./source.js";

export interface EnvEvalOptions {
  /** Held-out tasks. Default 200. */
  problems?: number;
  /** Seeds the task draw and the episodes. Default 0. */
  seed?: number;
  /** Sampling temperatures to evaluate at (0 = greedy). Default [0]. */
  temperatures?: number[];
}

/** Success rate (and the other `env/…` metrics) of the model in `dir` per temperature. */
export function evaluateEnvModel(
  dir: string,
  env: EnvConfigInput,
  o: EnvEvalOptions = {},
): { temperature: number; successRate: number; metrics: Record<string, number> }[] {
  const md = readModelDir(dir);
  if (md.tokenizer === undefined) throw new CohortError(`${dir} has no tokenizer.json`);
  const tok = tokenizerFromFiles(md.tokenizer.json, md.tokenizer.config);
  const model = CausalLM.fromHF(md.config, md.tensors);
  for (const t of Object.values(md.tensors)) t.dispose();
  try {
    const source = new EpisodeSource(envConfigSchema.parse(env), tok);
    const seed = o.seed ?? 0;
    const rng = Rng.fromSeed(BigInt(seed) ^ 0x5eed5eedn);
    const problems = Array.from({ length: o.problems ?? 200 }, () => source.task.sample(rng, "eval"));
    const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
    const stopTokenIds = [...new Set([...eosIds(model.config), tok.eosId])];
    return (o.temperatures ?? [0]).map((temperature) => {
      const eps = source.play(
        sampler,
        problems,
        problems.map((_, i) => seed * 100_003 + i),
        { temperature, stopTokenIds },
      );
      const metrics = episodeMetrics(eps);
      return { temperature, successRate: metrics["env/success_rate"] as number, metrics };
    });
  } finally {
    model.dispose();
  }
}
