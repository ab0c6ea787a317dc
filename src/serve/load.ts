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
 * weight under its Hugging Face name (the same model shape), or an adapter snapshot (src/serve/adapters.ts);
 * by path it must lie inside the server's weights directory (`confineReloadPath`), or its bytes come as the
 * request body (`readPushedWeights`). A snapshot is read once, through one file descriptor or buffer, and its
 * SHA-256 is checked against the one the request names before any tensor is built.
 * @module
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { CohortError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { readSafetensors, readSafetensorsBytes, readSafetensorsFd } from "../io/safetensors.js";
import { CausalLM, type Precision } from "../model/llama.js";
import { applyLora, type LoraTarget } from "../model/lora.js";
import { type Device, dispose, keep, type Tensor, tidy } from "../tensor/index.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { latestCheckpoint } from "../train/checkpoint.js";
import { adapterScaleOf } from "./adapters.js";
import { sha256Bytes, sha256Fd } from "./snapshot.js";

export interface ServedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Where the weights came from (shown by /v1/models). */
  source: string;
  /** The model directory the architecture and tokenizer came from. */
  modelDir: string;
  /**
   * Where reloads by path may read from unless `--weights-dir` says otherwise: the parent of the served model
   * directory, or for a run (final/ or a checkpoint) the run directory, which holds its `sync/` snapshots.
   */
  weightsDir?: string;
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
    return { ...modelFromDir(path, place), source: path, modelDir: path, weightsDir: dirname(resolve(path)) };
  if (existsSync(join(path, "final", "config.json"))) {
    const dir = join(path, "final");
    return { ...modelFromDir(dir, place), source: dir, modelDir: dir, weightsDir: resolve(path) };
  }
  let ck: string | null = null;
  if (isCheckpoint(path)) ck = path;
  else if (isDir(join(path, "checkpoints"))) ck = latestCheckpoint(path);
  if (ck === null) {
    throw new CohortError(
      `${path} is not a model directory (config.json + tokenizer.json), a run directory (final/ or checkpoints/) or a checkpoint (weights.safetensors)`,
    );
  }
  const { config, runDir } = runOfCheckpoint(ck);
  const modelDir = baseModelDir(config);
  const served = modelFromDir(modelDir, place);
  try {
    applyCheckpoint(served.model, ck, config);
  } catch (e) {
    served.model.dispose();
    throw e;
  }
  return { ...served, source: ck, modelDir, weightsDir: runDir };
}

/** What a reload reads: full weights, or LoRA adapters (with their scale) to fold into the base weights. */
export interface ReloadWeights {
  tensors: Record<string, Tensor>;
  /** Set for an adapter snapshot (src/serve/adapters.ts): W = W₀ + scale·B·A. */
  adapterScale: number | null;
  /** SHA-256 (hex) of the safetensors bytes loaded; null for a sharded model directory (several files). */
  sha256: string | null;
}

/** The snapshot's bytes do not hash to the SHA-256 the request names (a torn, stale or altered snapshot). */
export class ChecksumError extends CohortError {
  override name = "ChecksumError";
}

/** A reload path outside the weights directory, or one that does not resolve (the same message for both). */
export class ForbiddenPathError extends CohortError {
  override name = "ForbiddenPathError";
}

function checkSum(what: string, actual: string, expected: string | undefined): void {
  if (expected !== undefined && actual !== expected.toLowerCase())
    throw new ChecksumError(
      `${what} hashes to sha256 ${actual}, not the ${expected.toLowerCase()} the request names (a torn, stale or altered snapshot); the weights are unchanged`,
    );
}

/** Reads one safetensors file through one descriptor: hash, check, then parse the same bytes. */
function readSnapshotFile(file: string, expected: string | undefined, adapters: boolean): ReloadWeights {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    throw new CohortError(`${file}: cannot open: ${(e as Error).message}`);
  }
  try {
    const sha256 = sha256Fd(fd);
    checkSum(file, sha256, expected);
    const { tensors, metadata } = readSafetensorsFd(fd, file);
    try {
      return { tensors, adapterScale: adapters ? adapterScaleOf(metadata, file) : null, sha256 };
    } catch (e) {
      dispose(tensors);
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the weights of a reload: a `.safetensors` file (full weights, or an adapter snapshot), a checkpoint
 * dir (weights.safetensors) or a model dir, from the server's disk; with `sha256`, the safetensors bytes must
 * hash to it (a sharded model dir cannot be checked as one file and is refused then). The tensors are owned by
 * the caller. Pass a path `confineReloadPath` accepted.
 */
export function readReloadWeights(path: string, opts: { sha256?: string | undefined } = {}): ReloadWeights {
  if (!existsSync(path)) throw new CohortError(`${path} does not exist on the server`);
  if (!isDir(path)) {
    if (!basename(path).endsWith(".safetensors"))
      throw new CohortError(`${path}: expected a .safetensors file or a directory with model.safetensors`);
    return readSnapshotFile(path, opts.sha256, true);
  }
  if (isCheckpoint(path)) {
    const { config } = runOfCheckpoint(path);
    if ((config.model as { lora?: unknown }).lora)
      throw new CohortError(
        `${path} holds LoRA adapters; reload a merged snapshot (the run's final/ directory, or weights saved with the adapters merged)`,
      );
    return readSnapshotFile(join(path, "weights.safetensors"), opts.sha256, false);
  }
  if (existsSync(join(path, "config.json"))) {
    const single = join(path, "model.safetensors");
    if (!existsSync(join(path, "model.safetensors.index.json")) && existsSync(single))
      return readSnapshotFile(single, opts.sha256, false);
    if (opts.sha256 !== undefined)
      throw new ChecksumError(
        `${path} holds sharded weights; a sha256 covers one safetensors file: reload a single-file snapshot, or leave sha256 out`,
      );
    return { tensors: readModelDir(path).tensors, adapterScale: null, sha256: null };
  }
  throw new CohortError(`${path} holds no weights (model.safetensors, weights.safetensors or a .safetensors file)`);
}

/** Reads a pushed snapshot (the safetensors bytes of a request body), checking its SHA-256 when one is named. */
export function readPushedWeights(bytes: Uint8Array, opts: { sha256?: string | undefined } = {}): ReloadWeights {
  const what = "the pushed snapshot";
  const sha256 = sha256Bytes(bytes);
  checkSum(what, sha256, opts.sha256);
  const { tensors, metadata } = readSafetensorsBytes(bytes, what);
  try {
    return { tensors, adapterScale: adapterScaleOf(metadata, what), sha256 };
  } catch (e) {
    dispose(tensors);
    throw e;
  }
}

/**
 * The real path (symlinks followed) of a reload `path` when it lies inside `weightsDir`; a directory's entries
 * must resolve inside too, and a checkpoint's run directory (whose config.json a reload reads) must be inside.
 * Anything else, existing or not, is one `ForbiddenPathError` with the same message, so that the answer does not
 * tell whether a path outside exists.
 */
export function confineReloadPath(path: string, weightsDir: string): string {
  const forbidden = () =>
    new ForbiddenPathError(
      `path: the server loads weights only from inside its weights directory ${resolve(weightsDir)} (--weights-dir), and this path does not resolve (symlinks followed) to an existing file or directory there`,
    );
  let root: string;
  let real: string;
  try {
    root = realpathSync(weightsDir);
    real = realpathSync(resolve(path));
  } catch {
    throw forbidden();
  }
  const prefix = root.endsWith(sep) ? root : root + sep;
  const inside = (p: string) => p === root || p.startsWith(prefix);
  if (!inside(real)) throw forbidden();
  if (isDir(real)) {
    for (const entry of readdirSync(real)) {
      let r: string;
      try {
        r = realpathSync(join(real, entry));
      } catch {
        throw forbidden(); // a dangling link
      }
      if (!inside(r)) throw forbidden();
    }
    if (isCheckpoint(real)) {
      const runConfig = join(dirname(dirname(real)), "config.json");
      if (!inside(dirname(dirname(real))) || (existsSync(runConfig) && !inside(realpathSync(runConfig))))
        throw forbidden();
    }
  }
  return real;
}
