/**
 * The data-parallel flags of `cohort train`: `--nproc N` (N local ranks) or one rank of a job started on
 * several machines (`--world-size/--rank/--master-addr/--master-port`, or WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT).
 * @module
 */
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../errors.js";
import { DataParallel } from "./data-parallel.js";
import { ProcessGroup } from "./group.js";
import { launchLocal } from "./launch.js";
import { resolveRendezvous } from "./rendezvous.js";

export { followLauncher, launchedRank } from "./launch.js";

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;
const str = (v: Values[string]) => (typeof v === "string" ? v : undefined);

/** `--nproc N` as a number (null without the flag); refuses it together with the multi-machine flags. */
export function nprocOf(values: Values): number | null {
  const raw = str(values.nproc);
  if (raw === undefined) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new ConfigError(`--nproc: expected an integer in 1..64 (local ranks), received ${JSON.stringify(raw)}`);
  if (values["world-size"] !== undefined || values.rank !== undefined)
    throw new ConfigError(
      "--nproc starts every rank itself; drop --world-size/--rank (they are for one rank of a multi-machine job)",
    );
  return n;
}

/** The command line of a rank: `args` without `--nproc N` / `--nproc=N`. */
export function withoutNproc(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--nproc") i++;
    else if (!a.startsWith("--nproc=")) out.push(a);
  }
  return out;
}

/**
 * `cohort train … --nproc N`: checks that the B prompts per step split over N ranks, then runs N ranks of
 * the same command line on this machine. Resolves to the launcher's exit code.
 */
export async function launchRanks(nproc: number, promptsPerStep: number, args: readonly string[]): Promise<number> {
  DataParallel.checkPrompts(promptsPerStep, nproc);
  // the CLI entry next to this module (src/cli/main.ts under tsx, dist/cli/main.js when built)
  const here = fileURLToPath(import.meta.url);
  const script = join(dirname(here), "..", "cli", `main${extname(here)}`);
  return await launchLocal({ nproc, script, args: ["train", ...withoutNproc(args)] });
}

/** Joins the group the flags or variables describe, or returns null for a lone process. */
export function groupFromFlags(values: Values): ProcessGroup | null {
  const opts = resolveRendezvous({
    worldSize: str(values["world-size"]),
    rank: str(values.rank),
    masterAddr: str(values["master-addr"]),
    masterPort: str(values["master-port"]),
    timeoutS: str(values["dist-timeout"]),
    backend: str(values["dist-backend"]),
  });
  return opts === null ? null : ProcessGroup.init(opts);
}
