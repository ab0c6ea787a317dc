/**
 * Serving and remote rollouts: `cohort serve` (an OpenAI-compatible server over a local model), an
 * OpenAI-compatible client, the `RemoteSampler` the trainer and evaluators use, and the importance-sampling
 * correction of the train/sampler mismatch.
 * @module
 */
export * from "./client.js";
export { Engine, type EngineOptions, type EngineStats, Job, type JobResult, type JobSpec } from "./engine.js";
export * from "./importance.js";
export { loadServedModel, readReloadWeights, type ServedModel } from "./load.js";
export * from "./pool.js";
export { ApiError, chatRequestSchema, completionRequestSchema } from "./protocol.js";
export * from "./remote-sampler.js";
export { type RunningServer, type ServeOptions, startServer } from "./server.js";
