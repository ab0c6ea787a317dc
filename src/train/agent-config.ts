/**
 * The `agent:` section of a training config: train an agent you already have (any SDK that speaks OpenAI's
 * chat completions) through the recording endpoint (src/serve/recorder.ts, src/train/agent-source.ts).
 *
 * ```yaml
 * agent:
 *   run: ./my-agent.ts#run      # run({ task, baseURL, signal }) → Promise<{ reward } | number>
 *   timeoutMs: 60000            # an episode running longer is aborted (signal) and scored fallbackReward
 *   fallbackReward: 0           # the reward of an episode that throws, times out or returns no number
 *   concurrency: 16             # episodes running at once
 *   passReward: 1               # eval_accuracy: held-out episodes with reward ≥ passReward
 * ```
 * @module
 */
import { z } from "zod";

export const agentConfigSchema = z
  .strictObject({
    run: z.string().min(1).meta({
      description: "The agent: `./module.ts#export`, a function run({task, baseURL, signal}) → {reward} | number.",
    }),
    timeoutMs: z.number().int().positive().default(60_000).meta({ description: "Time limit of one episode." }),
    fallbackReward: z
      .number()
      .default(0)
      .meta({ description: "Reward of an episode that throws, times out or returns no finite number." }),
    concurrency: z.number().int().positive().default(16).meta({ description: "Episodes running at once." }),
    passReward: z
      .number()
      .default(1)
      .meta({ description: "eval_accuracy counts held-out episodes whose reward is at least this." }),
  })
  .meta({ description: "Train an existing agent through a recording OpenAI-compatible endpoint." });

export type AgentConfig = z.output<typeof agentConfigSchema>;
