/**
 * Cohort: group-relative policy optimization (GRPO and its variants) for TypeScript, on libtorch.
 *
 * The trainer is exported at the top level; each layer is also available as a namespace
 * (`t` tensors, `model`, `io`, `tokenizer`, `algo`, `presets`, `tasks`, `rewards`, `env`, `serve`, `tfgrpo`,
 * `dist`).
 * @module
 */

export * as algo from "./algo/index.js";
export * as dist from "./dist/index.js";
export * as env from "./env/index.js";
export * from "./errors.js";
export * as io from "./io/index.js";
export * as model from "./model/index.js";
export * as presets from "./presets/index.js";
export * as rewards from "./reward/index.js";
export * as serve from "./serve/index.js";
export * as tasks from "./task/index.js";
export * as t from "./tensor/index.js";
export * as tfgrpo from "./tfgrpo/index.js";
export * as tokenizer from "./tokenizer/index.js";
export { loadTrainConfig, parseTrainConfig, type TrainConfig, type TrainConfigInput } from "./train/config.js";
export { type TrainOptions, type TrainResult, train } from "./train/trainer.js";
