/**
 * `npm run bench:own-task`: the README's "Your own task" tutorial at full size. Its four commands (read from the
 * README's own-task block) run as written, as separate processes, in a temporary copy of examples/own-task/:
 * supervised fine-tuning of a fresh char model on data.jsonl, GRPO with the partial-credit reward of reward.ts,
 * evaluation of the final model on eval.jsonl by that reward, and the report. Prints the wall time of each
 * command and the held-out curve (the share of eval.jsonl the reward scores 1, and the reward's mean), measured
 * at every evaluation of the run. Last line: JSON `{"bench":"own-task","sft":…,"start":…,"end":…,"peak":…,…}`.
 * BENCH_KEEP=1 keeps the temporary directory.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const log = (line: string) => process.stderr.write(`${line}\n`);

function tutorialCommands(): string[][] {
  const readme = readFileSync("README.md", "utf8");
  const block = /<!-- own-task:start[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- own-task:end -->/.exec(readme);
  if (block === null) throw new Error("README.md has no own-task block");
  return (block[1] as string)
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => [...l.matchAll(/'([^']*)'|(\S+)/g)].map((m) => (m[1] ?? m[2]) as string));
}

const root = mkdtempSync(join(tmpdir(), "cohort-bench-own-task-"));
mkdirSync(join(root, "examples"));
cpSync("examples/own-task", join(root, "examples", "own-task"), {
  recursive: true,
  filter: (src) => !/[\\/](runs|sorter)$/.test(src),
});
const main = resolve("src/cli/main.ts");
const tsx = import.meta.resolve("tsx");
const times: Record<string, number> = {};
const outputs: Record<string, string> = {};
try {
  for (const [, , sub, ...args] of tutorialCommands()) {
    log(`$ cohort ${sub} ${args.join(" ")}`);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ["--import", tsx, main, sub as string, ...args], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
    times[sub as string] = (performance.now() - t0) / 1000;
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    for (const l of lines.filter((l) => !/^step \d+\/\d+ reward/.test(l) || /eval_acc/.test(l)).slice(-6))
      log(`  ${l}`);
    if (r.status !== 0) throw new Error(`cohort ${sub} exited ${r.status}:\n${r.stderr}`);
    outputs[sub as string] = r.stdout;
    log(`  ${r.stdout.trim().split("\n").at(-1)} (${(times[sub as string] as number).toFixed(0)} s)`);
  }
  const own = join(root, "examples", "own-task");
  const sft = /held-out accuracy ([\d.]+)%/.exec(outputs.pretrain ?? "");
  const curve = readFileSync(join(own, "runs", "sort-grpo", "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((m) => typeof m.eval_accuracy === "number")
    .map((m) => ({ step: m.step, accuracy: m.eval_accuracy, reward: m["eval_reward/reward#score"] }));
  log("\nheld-out (eval.jsonl, 200 lines, greedy): step, accuracy (reward = 1), mean reward");
  for (const c of curve)
    log(
      `  ${String(c.step).padStart(4)}  ${(100 * (c.accuracy as number)).toFixed(1).padStart(5)}%  ${(c.reward as number).toFixed(3)}`,
    );
  const acc = curve.map((c) => c.accuracy as number);
  const finalEval = /accuracy ([\d.]+)% \(reward/.exec(outputs.eval ?? "");
  console.log(
    JSON.stringify({
      bench: "own-task",
      sft: sft ? Number(sft[1]) / 100 : null,
      start: acc[0],
      end: acc.at(-1),
      peak: Math.max(...acc),
      evalCommand: finalEval ? Number(finalEval[1]) / 100 : null,
      curve,
      seconds: times,
    }),
  );
} finally {
  if (process.env.BENCH_KEEP === "1") log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
