/**
 * The training loop's parts, for plugging in your own: the run's parts (`Run`), rollout sources, forward
 * backends, gradient syncs, the step's update and metrics, checkpoints and evaluation.
 * @module
 */
export * from "./checkpoint.js";
export * from "./clock.js";
export * from "./config.js";
export type * from "./context.js";
export * from "./evaluate.js";
export * from "./parts.js";
export * from "./pretrain.js";
export * from "./setup.js";
export * from "./sft.js";
export * from "./sources.js";
export * from "./step-metrics.js";
export * from "./trainer.js";
export * from "./update.js";
