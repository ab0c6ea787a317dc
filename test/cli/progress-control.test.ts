/** The plain progress line shows a control run's mean episode return as its reward. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { progressReporter } from "../../src/cli/progress.js";

test("progress line: a control run's reward is its mean episode return, a language-model run's reward_mean", () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  const tty = process.stderr.isTTY;
  Object.defineProperty(process.stderr, "isTTY", { value: false, configurable: true });
  process.stderr.write = ((s: string) => {
    lines.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  try {
    const p = progressReporter(10);
    p.update({
      step: 1,
      reward: 12.5,
      episode_return: 12.5,
      entropy: 0.5,
      "time/sampling_s": 0.25,
      "time/train_s": 0.5,
    });
    p.update({ step: 2, reward_mean: 0.25 });
    p.stop();
  } finally {
    process.stderr.write = write;
    Object.defineProperty(process.stderr, "isTTY", { value: tty, configurable: true });
  }
  assert.match(lines[0] as string, /^step 1\/10 reward 12\.500 .*sampling 0\.250s, train 0\.500s/);
  assert.match(lines[1] as string, /^step 2\/10 reward 0\.250 /);
});
