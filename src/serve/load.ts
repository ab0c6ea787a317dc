/**
 * What `cohort serve` can load, and what `POST /v1/reload` accepts:
 *
 * ```
 * <model dir>                 config.json + model.safetensors (or shards) + tokenizer.json (Hugging Face)
 * <run dir>                   final/ when the run finished, else its latest checkpoint
 * <run dir>/checkpoints/step-N  the run's base model (config.json of the run) + the checkpoint's weights;
 *                             LoRA checkpoints are merged into the base weights
 * ```
 * A reload takes a model dir, a checkpoint dir (weights.safetensors) or a `.safetensors` file with every
 * weight under its Hugging Face name (the same model shape; LoRA adapters must be merged first).
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { CohortError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { readSafetensors } from "../io/safetensors.js";
import { CausalLM, type Precision } from "../model/llama.js";
import { applyLora, type LoraTarget } from "../model/lora.js";
import { type Device, dispose, keep, type Tensor, tidy } from "../tensor/index.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { latestCheckpoint } from "../train/checkpoint.js";
import { adapterScaleOf } from "./adapters.js";

export interface ServedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Where the weights came from (shown by /v1/models). */
  source: string;
  /** The model directory the architecture and tokenizer came from. */
  modelDir: string;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isCheckpoint = (p: string) => isDir(p) && existsSync(join(p, "weights.safetensors"));

/** The saved run config of the run that holds checkpoint `dir` (`<run>/checkpoints/step-N`). */
function runOfCheckpoint(dir: string): { runDir: string; config: Record<string, unknown> } {
  const runDir = dirname(dirname(resolve(dir)));
  const cfgPath = join(runDir, "config.json");
  if (!existsSync(cfgPath)) {
    throw new CohortError(
      `${dir} looks like a checkpoint but ${cfgPath} is missing; serve the run's final/ model or a Hugging Face model directory`,
    );
  }
  return { runDir, config: JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown> };
}

function baseModelDir(config: Record<string, unknown>): string {
  const model = config.model as { path?: unknown } | undefined;
  if (typeof model?.path !== "string")
    throw new CohortError("the run's config.json has no model.path; was it written by `cohort train`?");
  if (isAbsolute(model.path)) return model.path;
  const cfgFile = typeof config.configFile === "string" ? config.configFile : undefined;
  return cfgFile ? resolve(dirname(cfgFile), model.path) : resolve(model.path);
}

/** Where the served model runs: `model.device` / `model.precision` of the train config, as CLI flags. */
export interface Placement {
  device?: Device;
  precision?: Precision;
}

function modelFromDir(dir: string, place: Placement): { model: CausalLM; tokenizer: Tokenizer } {
  const d = readModelDir(dir);
  try {
    if (d.tokenizer === undefined)
      throw new CohortError(`${dir} has no tokenizer.json; a served model needs its tokenizer to read and write text`);
    return {
      model: CausalLM.fromHF(d.config, d.tensors, place),
      tokenizer: tokenizerFromFiles(d.tokenizer.json, d.tokenizer.config),
    };
  } finally {
    dispose(d.tensors);
  }
}

/** Copies a checkpoint's weights into `model` (merging LoRA adapters for good when the run used them). */
function applyCheckpoint(model: CausalLM, ckDir: string, runConfig: Record<string, unknown>): void {
  const weights = readSafetensors(join(ckDir, "weights.safetensors")).tensors;
  try {
    const lora = (runConfig.model as { lora?: { rank: number; alpha: number; targets: LoraTarget[] } }).lora;
    if (!lora) {
      model.load({ tensors: weights, meta: {} });
      return;
    }
    const adapter = applyLora(model, { rank: lora.rank, alpha: lora.alpha, targets: lora.targets });
    adapter.load({ tensors: weights, meta: {} });
    adapter.merge();
    const merged = tidy(() =>
      Object.fromEntries(model.namedParameters().map(([n, t]) => [n, keep(t.detach().clone())])),
    );
    adapter.detach();
    try {
      model.load({ tensors: merged, meta: {} });
    } finally {
      dispose(merged);
    }
  } finally {
    dispose(weights);
  }
}

/** Loads a model dir, a run dir or a checkpoint dir for serving (see the module doc). */
export function loadServedModel(path: string, place: Placement = {}): ServedModel {
  if (!existsSync(path))
    throw new CohortError(`${path} does not exist; pass a model directory, a run directory or a checkpoint`);
  if (
    existsSync(join(path, "config.json")) &&
    !existsSync(join(path, "state.json")) &&
    existsSync(join(path, "tokenizer.json"))
  )
    return { ...modelFromDir(path, place), source: path, modelDir: path };
  if (existsSync(join(path, "final", "config.json"))) {
    const dir = join(path, "final");
    return { ...modelFromDir(dir, place), source: dir, modelDir: dir };
  }
  let ck: string | null = null;
  if (isCheckpoint(path)) ck = path;
  else if (isDir(join(path, "checkpoints"))) ck = latestCheckpoint(path);
  if (ck === null) {
    throw new CohortError(
      `${path} is not a model directory (config.json + tokenizer.json), a run directory (final/ or checkpoints/) or a checkpoint (weights.safetensors)`,
    );
  }
  const { config } = runOfCheckpoint(ck);
  const modelDir = baseModelDir(config);
  const served = modelFromDir(modelDir, place);
  try {
    applyCheckpoint(served.model, ck, config);
  } catch (e) {
    served.model.dispose();
    throw e;
  }
  return { ...served, source: ck, modelDir };
}

/** What a reload reads: full weights, or LoRA adapters (with their scale) to fold into the base weights. */
export interface ReloadWeights {
  tensors: Record<string, Tensor>;
  /** Set for an adapter snapshot (src/serve/adapters.ts): W = W₀ + scale·B·A. */
  adapterScale: number | null;
}

/**
 * Reads the weights of a reload: a `.safetensors` file (full weights, or an adapter snapshot), a checkpoint
 * dir (weights.safetensors) or a model dir. The tensors are owned by the caller. Files are read from the
 * server's disk.
 */
export function readReloadWeights(path: string): ReloadWeights {
  if (!existsSync(path)) throw new CohortError(`${path} does not exist on the server`);
  if (!isDir(path)) {
    if (!basename(path).endsWith(".safetensors"))
      throw new CohortError(`${path}: expected a .safetensors file or a directory with model.safetensors`);
    const { tensors, metadata } = readSafetensors(path);
    try {
      return { tensors, adapterScale: adapterScaleOf(metadata, path) };
    } catch (e) {
      dispose(tensors);
      throw e;
    }
  }
  if (isCheckpoint(path)) {
    const { config } = runOfCheckpoint(path);
    if ((config.model as { lora?: unknown }).lora)
      throw new CohortError(
        `${path} holds LoRA adapters; reload a merged snapshot (the run's final/ directory, or weights saved with the adapters merged)`,
      );
    return { tensors: readSafetensors(join(path, "weights.safetensors")).tensors, adapterScale: null };
  }
  if (existsSync(join(path, "config.json"))) return { tensors: readModelDir(path).tensors, adapterScale: null };
  throw new CohortError(`${path} holds no weights (model.safetensors, weights.safetensors or a .safetensors file)`);
}
