// `npm run bench:scale` on a shrunken model (2 layers, d 128, vocab 4096): the JSON lines have the documented
// shape, the LoRA micro-step's loss and gradient norm equal PyTorch's, ours and PyTorch decode the same
// greedy tokens at fp32, and llama.cpp loads the GGUF export.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";

test("bench:scale, shrunken: JSON shape, step agrees with PyTorch, same greedy tokens", () => {
  const out = execFileSync(process.execPath, ["--import", "tsx", "bench/scale.ts"], {
    encoding: "utf8",
    env: {
      ...process.env,
      SCALE_LAYERS: "2",
      SCALE_VOCAB: "4096",
      SCALE_HIDDEN: "128",
      SCALE_MLP: "256",
      SCALE_INIT_STD: "0.3", // varied greedy tokens (0.02 repeats one token)
      SCALE_ROWS: "2",
      SCALE_PROMPT: "8",
      SCALE_COMPLETION: "8",
      SCALE_STEPS: "1",
      SCALE_WARMUP: "0",
      SCALE_BATCHES: "2",
      SCALE_NEW_TOKENS: "8",
      SCALE_PROMPT_TOKENS: "8",
      SCALE_REPS: "1",
      SCALE_THREADS: "1",
      SCALE_LLAMA_QUANTS: "f16",
    },
  });
  const lines = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  const step = lines.find((l) => l.bench === "scale-step");
  assert.ok(step, out);
  for (const k of ["ours_ms", "peer_ms", "ratio", "peak_rss_gb"]) assert.equal(typeof step[k], "number", k);
  assert.ok(step.grad_norm_rel_diff < 1e-3, `LoRA grad norm differs from PyTorch's by ${step.grad_norm_rel_diff}`);
  const decode = lines.filter((l) => l.bench === "scale-decode");
  assert.deepEqual(
    decode.map((l) => `${l.batch} ${l.precision} ${l.peer}`),
    ["fp32", "int8"].flatMap((p) => ["pytorch-fp32", "llama.cpp-f16"].map((peer) => `2 ${p} ${peer}`)),
  );
  for (const l of decode)
    for (const k of ["ours_tok_s", "peer_tok_s", "ratio"]) assert.ok(l[k] > 0, `${k} of ${JSON.stringify(l)}`);
  const summary = lines.at(-1);
  assert.equal(summary.bench, "scale");
  assert.equal(summary.b2_fp32_tokens_match_pytorch, true, "ours and PyTorch decode the same greedy tokens");
  assert.equal(typeof summary.goals, "object");
});
