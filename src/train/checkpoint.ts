/**
 * Checkpoints of a training run: `<run>/checkpoints/step-NNNNNN/` holds the trainable weights
 * (`weights.safetensors`), the optimizer state (`optimizer.safetensors`) and everything else needed to
 * continue bit-exactly (`state.json`: step, data-order RNG, libtorch RNG, stateful components).
 *
 * A checkpoint is written into a temporary folder and renamed into place, and the `latest` pointer is
 * replaced atomically after it, so a crash at any moment leaves the previous checkpoint intact.
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CohortError } from "../errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { getRngState, type StateDict, setRngState, type Tensor, tidy } from "../tensor/index.js";
import type { LoopRun } from "./context.js";

export interface CheckpointContents {
  step: number;
  weights: Record<string, Tensor>;
  optimizer: StateDict;
  /** JSON-able state of everything else (RNGs as base64, component states, counters). */
  state: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  step: number;
  weights: Record<string, Tensor>;
  optimizer: StateDict;
  state: Record<string, unknown>;
  dir: string;
}

const stepDir = (step: number) => `step-${String(step).padStart(6, "0")}`;

export function checkpointsDir(runDir: string): string {
  return join(runDir, "checkpoints");
}

/**
 * Writes a checkpoint atomically and keeps the newest `keep` ones. Returns its folder. A failed write (a full
 * disk) removes the unfinished folder and throws a CohortError; the previous checkpoints are untouched.
 */
export function saveCheckpoint(runDir: string, c: CheckpointContents, keep = 2): string {
  const root = checkpointsDir(runDir);
  mkdirSync(root, { recursive: true });
  const final = join(root, stepDir(c.step));
  const tmp = join(root, `.tmp-${stepDir(c.step)}-${process.pid}`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    writeSafetensors(join(tmp, "weights.safetensors"), c.weights, { format: "pt" });
    writeSafetensors(join(tmp, "optimizer.safetensors"), c.optimizer.tensors, { format: "pt" });
    writeJsonAtomic(join(tmp, "state.json"), { step: c.step, optimizerMeta: c.optimizer.meta, ...c.state });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException;
    throw new CohortError(
      `could not write the checkpoint of step ${c.step} in ${root}: ${err.code ?? err.message}. ` +
        "The previous checkpoints are intact; free space (or fix the permissions) and continue with --resume",
    );
  }
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeFileAtomic(join(root, "latest"), `${stepDir(c.step)}\n`);
  const all = listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  return final;
}

/** Checkpoint folder names, oldest first. */
export function listCheckpoints(runDir: string): string[] {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
}

/** The newest complete checkpoint of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const root = checkpointsDir(runDir);
  const pointer = join(root, "latest");
  if (existsSync(pointer)) {
    const name = readFileSync(pointer, "utf8").trim();
    if (existsSync(join(root, name, "state.json"))) return join(root, name);
  }
  const all = listCheckpoints(runDir).filter((n) => existsSync(join(root, n, "state.json")));
  return all.length === 0 ? null : join(root, all.at(-1) as string);
}

/**
 * What to say when checkpoint `dir` cannot be loaded: the newest older checkpoint of the run that still has
 * its files, to resume from once the damaged one is moved away.
 */
export function fallbackHint(dir: string, runDir = dirname(dirname(dir))): string {
  const name = basename(dir);
  const root = checkpointsDir(runDir);
  const older = listCheckpoints(runDir)
    .filter((n) => n < name && existsSync(join(root, n, "state.json")))
    .at(-1);
  return older === undefined
    ? " No older checkpoint of this run is left; start a new run with --overwrite"
    : ` The older checkpoint ${join(root, older)} is intact: move ${dir} out of ${root} (e.g. rename it to ` +
        `.broken-${name}) and run --resume again to continue from ${older}`;
}

/** The `state.json` of a checkpoint folder; a missing or damaged file is a CohortError naming it. */
export function readCheckpointState(dir: string, runDir?: string): Record<string, unknown> {
  const statePath = join(dir, "state.json");
  if (!existsSync(statePath)) {
    throw new CohortError(`${dir} is not a complete checkpoint (state.json is missing).${fallbackHint(dir, runDir)}`);
  }
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8"));
  } catch (e) {
    throw new CohortError(`${statePath} is damaged: ${(e as Error).message}.${fallbackHint(dir, runDir)}`);
  }
  if (
    state === null ||
    typeof state !== "object" ||
    Array.isArray(state) ||
    !Number.isInteger((state as { step?: unknown }).step)
  )
    throw new CohortError(
      `${statePath} is damaged: not a checkpoint state (no integer "step").${fallbackHint(dir, runDir)}`,
    );
  return state as Record<string, unknown>;
}

/** Loads a checkpoint folder; the tensors are owned by the caller. */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const state = readCheckpointState(dir);
  const weights = readSafetensors(join(dir, "weights.safetensors")).tensors;
  const opt = readSafetensors(join(dir, "optimizer.safetensors")).tensors;
  return {
    step: Number(state.step),
    weights,
    optimizer: { tensors: opt, meta: state.optimizerMeta as Record<string, unknown> },
    state,
    dir,
  };
}

export const toBase64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
export const fromBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));

/**
 * Saves a run's checkpoint at `step` (with data parallelism: rank 0 writes every rank's state; other ranks
 * return ""). The rollout source's state is the one from before any batch generated ahead (resume regenerates
 * those batches); `runId` lets --resume refuse a checkpoint of another run (rundir.ts).
 */
export function saveRun<C>(run: LoopRun<C>, step: number, runId?: string): string {
  const local: Record<string, unknown> = {
    ...(run.source.state?.() ?? {}),
    torchRng: toBase64(getRngState()),
    components: run.pipeline.state(),
    diagnostics: run.diagnostics.state(),
  };
  const state = run.sync.checkpointState(local);
  if (state === null) return "";
  if (runId !== undefined) state.runId = runId;
  return saveCheckpoint(
    run.runDir,
    { step, weights: Object.fromEntries(run.trainable()), optimizer: run.opt.state(), state },
    run.cfg.checkpoint.keep,
  );
}

/** Restores a run from a checkpoint folder: weights, optimizer, RNGs, data position and component state. */
export function restoreRun<C>(run: LoopRun<C>, dir: string): number {
  const ck = loadCheckpoint(dir);
  const named = new Map(run.trainable());
  const s = run.sync.rankState(ck.state, dir) as {
    torchRng: string;
    components?: Record<string, unknown>;
    diagnostics?: Record<string, unknown>;
  } & Record<string, unknown>;
  tidy(() => {
    for (const [name, p] of named) {
      const src = ck.weights[name];
      if (src === undefined)
        throw new CohortError(`checkpoint ${dir} lacks "${name}"; was it written by a different config?`);
      p.copy_(src);
    }
  });
  run.opt.load(ck.optimizer);
  for (const t of [...Object.values(ck.weights), ...Object.values(ck.optimizer.tensors)]) t.dispose();
  run.source.load?.(s);
  setRngState(fromBase64(s.torchRng));
  run.pipeline.load(s.components ?? {});
  run.diagnostics.load(s.diagnostics ?? {});
  return ck.step;
}
