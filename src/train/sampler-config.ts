/**
 * The `sampler:` section of the train config: rollouts in-process (`local`) or from OpenAI-compatible rollout
 * workers (`openai`: `cohort serve`, vLLM, SGLang), with weight sync, overlap and the mismatch correction.
 * @module
 */
import { z } from "zod";

/**
 * Where rollouts are sampled: in-process (`local`, the default) or from an OpenAI-compatible endpoint
 * (`openai`: `cohort serve`, vLLM, SGLang, …) that returns token ids and log-probs (src/serve/remote-sampler.ts).
 * Held-out evaluation during training always decodes locally, with the weights being trained.
 */
/**
 * Importance-sampling correction of the train/sampler mismatch, TRL's `vllm_importance_sampling_*`
 * (modes token/sequence × truncate/mask, cap C; TRL defaults: sequence_mask, 3.0). Absent = off. Remote
 * rollouts differ from training by another engine's numerics, local ones by `sampling.precision: int8`.
 */
const importanceSamplingSchema = z.strictObject({
  mode: z.enum(["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]).default("sequence_mask"),
  cap: z.number().gt(0).default(3),
});

export const samplerSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("local"),
    // listed only to refuse it with a reason: overlap needs rollout workers in other processes
    overlap: z
      .literal(0, {
        error:
          "overlap generates the next steps' rollouts on remote workers while this process updates; local rollouts run in this process. Use sampler.kind openai with cohort serve (or SGLang/vLLM) workers, or remove overlap",
      })
      .optional(),
    /** The mismatch correction of local rollouts (useful with `sampling.precision: int8`). */
    importanceSampling: importanceSamplingSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal("openai"),
    /** e.g. http://127.0.0.1:8000/v1 */
    baseUrl: z.string().url().optional(),
    /**
     * A pool of rollout workers instead of one `baseUrl` (src/serve/pool.ts): least-in-flight load
     * balancing, health checks, failed requests retried on the other workers.
     */
    baseUrls: z.array(z.string().url()).min(1).optional(),
    /** The served model id (GET /v1/models). */
    model: z.string().min(1),
    /** Name of the environment variable holding the API key (never the key itself). */
    apiKeyEnv: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().default(120_000),
    maxRetries: z.number().int().min(0).default(4),
    backoffMs: z.number().int().min(0).default(250),
    /** Requests in flight at most. */
    maxConcurrency: z.number().int().positive().default(8),
    /**
     * After every optimizer step (and before the first), write the policy's weights to
     * `<run>/sync/model.safetensors` (with LoRA: only the adapters, `<run>/sync/adapters.safetensors`, folded
     * into the server's base weights) and POST /v1/reload so rollouts sample from the trained policy
     * (`cohort serve` on the same disk), or, for SGLang workers, to the model directory `<run>/sync/model/`
     * and POST /update_weights_from_disk. Off: the server's weights stay fixed (off-policy samples).
     */
    syncWeights: z.boolean().default(false),
    /**
     * How workers load pushed weights: `cohort` (`cohort serve`: POST /v1/reload {path}), `sglang` (POST
     * /update_weights_from_disk {model_path}, a Hugging Face model directory) or `auto`: detected per worker
     * before its first load (SGLang answers GET /get_model_info; anything else is taken for cohort serve).
     */
    workerApi: z.enum(["auto", "cohort", "sglang"]).default("auto"),
    /**
     * How `cohort serve` workers get the pushed weights: `disk` (POST /v1/reload {path, sha256}: the worker reads
     * the snapshot from its own disk, the same machine or a shared one, inside its --weights-dir) or `push` (the
     * snapshot's bytes are the request body, with their SHA-256: no shared disk; cohort serve workers only).
     */
    weightSync: z.enum(["disk", "push"]).default("disk"),
    /** Push the weights every K optimizer steps (and before the first step). */
    syncEvery: z.number().int().positive().default(1),
    /**
     * Steps ahead whose rollouts are generated while this process runs the optimizer update: with 1, step
     * k+1's requests are sent to the workers before step k's update starts (its samples come from policy
     * version k−1 and are trained at k). 0: generation and update take turns. Prompts per step are the same
     * either way; a checkpoint drops batches generated ahead and resume regenerates them.
     */
    overlap: z.number().int().min(0).default(0),
    /**
     * A bound on the policy lag of trained samples: a worker whose weights lag more than maxStaleness − overlap
     * versions when a request is sent is left out until reloaded.
     */
    maxStaleness: z.number().int().min(0).optional(),
    /** Pool: how often down workers are probed (GET /health, else /v1/models). */
    healthIntervalMs: z.number().int().positive().default(1_000),
    importanceSampling: importanceSamplingSchema.optional(),
  }),
]);
