/**
 * Llama-family causal LM (Llama, Qwen2, SmolLM): the model, its Hugging Face config, packed training
 * batches, the decoding loop, the local KV-cache sampler and LoRA adapters.
 * @module
 */
export { type PackedBatch, type PackOptions, packBatch } from "./batch.js";
export {
  configFromHF,
  configToHF,
  eosIds,
  type ModelConfig,
  type ModelDType,
  modelConfig,
  validateConfig,
} from "./config.js";
export {
  cacheLength,
  type DecodeOptions,
  type DecodeRow,
  decodeBatch,
  decodeSteps,
  type RowResult,
  type TokenEvent,
  type TopLogprob,
} from "./decode.js";
export {
  type AttendOver,
  CausalLM,
  type DecodePlan,
  KVCache,
  type LayerWeights,
  type LogprobOptions,
  type ModelOptions,
  type Policy,
  type ProjectionAdapter,
} from "./llama.js";
export { applyLora, LoraAdapter, type LoraOptions, type LoraTarget } from "./lora.js";
export {
  logprobsSharedPrefix,
  logprobsSharedPrefixRows,
  type PrefixGroup,
  type SharedPrefixResult,
} from "./prefix.js";
export {
  type Completion,
  type FinishReason,
  LocalSampler,
  type LocalSamplerOptions,
  type Sampler,
  type SamplingParams,
  type TokenIds,
} from "./sampler.js";
