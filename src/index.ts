/**
 * Cohort: group-relative policy optimization (GRPO and its variants) for TypeScript, on libtorch.
 *
 * The trainer is exported at the top level; each layer is also available as a namespace
 * (`t` tensors, `model`, `io`, `tokenizer`, `algo`, `presets`, `tasks`, `rewards`, `env`, `serve`, `tfgrpo`,
 * `parallel`, and `training` for the loop's parts). The design space's step pipeline is `algo.Pipeline` and its loss
 * step `algo.computeStepLoss`, for unit-testing your own combinations.
 * @module
 */

export * as algo from "./algo/index.js";
export * as env from "./env/index.js";
export * from "./errors.js";
export * as io from "./io/index.js";
export * as model from "./model/index.js";
export * as parallel from "./parallel/index.js";
export * as presets from "./presets/index.js";
export * as rewards from "./reward/index.js";
export * as serve from "./serve/index.js";
export * as tasks from "./task/index.js";
export * as t from "./tensor/index.js";
export * as tfgrpo from "./tfgrpo/index.js";
export * as tokenizer from "./tokenizer/index.js";
export { loadTrainConfig, parseTrainConfig, type TrainConfig, type TrainConfigInput } from "./train/config.js";
export { type EvalMetric, evaluateModel, type ModelEvalOptions, type ModelEvalResult } from "./train/evaluate.js";
export * as training from "./train/index.js";
export { type PretrainOptions, type PretrainResult, pretrain } from "./train/pretrain.js";
export { type SftOptions, type SftResult, sft } from "./train/sft.js";
export { type TrainOptions, type TrainResult, train } from "./train/trainer.js";
