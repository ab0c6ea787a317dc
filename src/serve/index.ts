/**
 * Serving and remote rollouts: `cohort serve` (an OpenAI-compatible server over a local model), an
 * OpenAI-compatible client, the `RemoteSampler` the trainer and evaluators use, and the importance-sampling
 * correction of the train/sampler mismatch.
 * @module
 */
export { ADMIN_KEY_ENV, API_KEY_ENV, isLoopbackHost } from "./auth.js";
export * from "./client.js";
export { Engine, type EngineOptions, type EngineStats, Job, type JobResult, type JobSpec } from "./engine.js";

export {
  confineReloadPath,
  loadServedModel,
  type ReloadWeights,
  readPushedWeights,
  readReloadWeights,
  type ServedModel,
} from "./load.js";
export * from "./pool.js";
export { ApiError, chatRequestSchema, completionRequestSchema } from "./protocol.js";
export * from "./remote-sampler.js";
export { defaultMaxPushBytes, type RunningServer, type ServeOptions, startServer } from "./server.js";
export { sha256File } from "./snapshot.js";
