// Shared set-up of the data-parallel tests: two ranks of test/parallel/worker.ts, a micro run config and
// `cohort train` in a child process.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../src/parallel/launch.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "../train/helpers.js";

const parity = resolve("test/fixtures/rewards/parity.ts");

/** A 4-step run config named `name` in `root`. */
export function writeConfig(
  root: string,
  model: string,
  name: string,
  algo = "algo: {regularizers: [{type: kl, estimator: k3, beta: 0.04}]}",
): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `outputDir: ${root}`,
      "seed: 7",
      `model: {path: ${model}}`,
      "task: {name: arithmetic, options: {digits: [1, 1]}}",
      `rewards: ["${parity}#parity", correctness]`,
      algo,
      // 2 prompts × 4 completions per rank = 2 micro-batches of 4 on each rank, the 1-process run's 4 micro-batches
      "train: {steps: 4, promptsPerStep: 4, groupSize: 4, innerIterations: 2, microBatchSize: 4, lr: 0.003}",
      "sampling: {maxNewTokens: 6}",
      "eval: {everySteps: 2, problems: 8}",
      "checkpoint: {everySteps: 2}",
      "",
    ].join("\n"),
  );
  return file;
}

/** `cohort train …` in a child process; `stderr` fills as it runs. */
export function cohort(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const out = { stderr: "" };
  child.stderr.on("data", (d) => {
    out.stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on("exit", (code, signal) => res({ code, signal })),
  );
  return { child, out, exited };
}

/** A record without wall-clock fields and without the data-parallel-only `dist/*` ones. */
const comparable = (m: MetricRecord) =>
  Object.fromEntries(Object.entries(deterministicPart(m)).filter(([k]) => !k.startsWith("dist/")));

/** The numeric, deterministic entries of a metric record. */
export const numeric = (m: MetricRecord) =>
  Object.entries(comparable(m)).filter((e): e is [string, number] => typeof e[1] === "number");

/** Asserts two metric trajectories agree within `tol` (relative above 1; wall-clock and `dist/*` fields excluded). */
export function assertSameTrajectory(
  actual: MetricRecord[],
  expected: MetricRecord[],
  tol: number,
  what: string,
): void {
  if (actual.length !== expected.length)
    throw new Error(`${what}: ${actual.length} records, expected ${expected.length}`);
  expected.forEach((m, i) => {
    const d = actual[i] as MetricRecord;
    const ka = Object.keys(comparable(d)).sort().join();
    const ke = Object.keys(comparable(m)).sort().join();
    if (ka !== ke) throw new Error(`${what}: step ${m.step} metric keys differ: ${ka} vs ${ke}`);
    for (const [k, v] of numeric(m)) {
      // float32 sums in another order: tol is relative above 1 (a grad norm of 38 agrees to ~3e-7)
      if (!(Math.abs((d[k] as number) - v) <= tol * Math.max(1, Math.abs(v))))
        throw new Error(`${what}: step ${m.step} ${k}: ${d[k]}, expected ${v} (tol ${tol})`);
    }
  });
}

export { tinyModelDir, tmpRunRoot };

export type Result = Record<string, unknown>;

/** Runs test/parallel/worker.ts as two ranks; resolves with each rank's JSON result. */
export async function twoRanks(mode: string, env: Record<string, string> = {}): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), "cohort-dist-"));
  const port = await freePort();
  const runs = [0, 1].map(
    (rank) =>
      new Promise<Result>((resolve, reject) => {
        const out = join(dir, `rank${rank}.json`);
        const child = spawn(process.execPath, ["--import", "tsx", "test/parallel/worker.ts", mode, out], {
          env: { ...process.env, ...env, WORLD_SIZE: "2", RANK: String(rank), MASTER_PORT: String(port) },
          stdio: ["ignore", "inherit", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d) => {
          stderr += d;
        });
        child.on("exit", (code) => {
          if (code !== 0) reject(new Error(`rank ${rank} (${mode}) exited with ${code}: ${stderr}`));
          else resolve(JSON.parse(readFileSync(out, "utf8")) as Result);
        });
      }),
  );
  return await Promise.all(runs);
}
