/**
 * Where a rank finds its group: `--world-size/--rank/--master-addr/--master-port` flags, or the variables
 * PyTorch's launchers set (`WORLD_SIZE`, `RANK`, `MASTER_ADDR`, `MASTER_PORT`); a flag wins over its variable.
 * Also `--dist-timeout` / `COHORT_DIST_TIMEOUT_S` (seconds) and `--dist-backend` / `COHORT_DIST_BACKEND`.
 * @module
 */
import { ConfigError } from "../errors.js";
import { type Backend, DEFAULT_TIMEOUT_MS, type GroupOptions } from "./group.js";

export interface RendezvousFlags {
  worldSize?: string | undefined;
  rank?: string | undefined;
  masterAddr?: string | undefined;
  masterPort?: string | undefined;
  timeoutS?: string | undefined;
  backend?: string | undefined;
}

/** PyTorch's default rendezvous port (torchrun). */
export const DEFAULT_MASTER_PORT = 29500;

function integer(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${what}: expected an integer in ${min}..${max}, received ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * The group this process should join, or null when it runs alone (no world size given, or world size 1).
 * Throws a ConfigError naming the flag and its variable when a value is missing or malformed.
 */
export function resolveRendezvous(
  flags: RendezvousFlags,
  env: Record<string, string | undefined> = process.env,
): GroupOptions | null {
  const pick = (flag: string | undefined, name: string) => (flag !== undefined ? flag : env[name]);
  const ws = pick(flags.worldSize, "WORLD_SIZE");
  const rank = pick(flags.rank, "RANK");
  if (ws === undefined || ws === "") {
    if (rank !== undefined && rank !== "" && flags.rank !== undefined)
      throw new ConfigError("--rank needs --world-size (or WORLD_SIZE)");
    return null;
  }
  const worldSize = integer(ws, "--world-size (WORLD_SIZE)", 1, 1 << 16);
  if (worldSize === 1) return null;
  if (rank === undefined || rank === "") {
    throw new ConfigError(
      `world size ${worldSize} but no rank: start each process with its own --rank (or RANK) in 0..${worldSize - 1}, ` +
        "or use --nproc N to start N local ranks",
    );
  }
  const r = integer(rank, "--rank (RANK)", 0, worldSize - 1);
  const addr = pick(flags.masterAddr, "MASTER_ADDR") || "127.0.0.1";
  const port = pick(flags.masterPort, "MASTER_PORT");
  const masterPort =
    port === undefined || port === "" ? DEFAULT_MASTER_PORT : integer(port, "--master-port (MASTER_PORT)", 1, 65535);
  const t = pick(flags.timeoutS, "COHORT_DIST_TIMEOUT_S");
  const timeoutMs =
    t === undefined || t === ""
      ? DEFAULT_TIMEOUT_MS
      : integer(t, "--dist-timeout (COHORT_DIST_TIMEOUT_S)", 1, 86400) * 1000;
  const b = pick(flags.backend, "COHORT_DIST_BACKEND") || "gloo";
  if (b !== "gloo" && b !== "nccl")
    throw new ConfigError(`--dist-backend (COHORT_DIST_BACKEND): expected gloo or nccl, received ${JSON.stringify(b)}`);
  return { worldSize, rank: r, masterAddr: addr, masterPort, timeoutMs, backend: b as Backend };
}
