/**
 * A Bradley–Terry preference model trained in Cohort on labelled pairs: a linear head on the frozen final
 * hidden state of a shipped causal LM.
 *
 * | quantity       | definition                                                                                  |
 * |----------------|---------------------------------------------------------------------------------------------|
 * | features f(x,y)| the final-norm hidden state [D] of the last token of BOS + encode(prompt + completion), no gradient |
 * | score          | r(x, y) = w·f(x, y)   (a bias would cancel in every comparison)                              |
 * | preference     | P(a ≻ b | x) = σ(r(x, a) − r(x, b))                                                           |
 * | training loss  | mean over pairs of −log σ(w·(f(x, chosen) − f(x, rejected))) + (λ/2)·‖w‖²                     |
 *
 * The loss is convex in w (logistic regression on feature differences), trained by full-batch AdamW from
 * w = 0; the base model never changes. A model directory written by `saveBradleyTerry` holds `bt.json`
 * (base model path, λ, steps, the pairs' counts and held-out accuracy) and `bt-head.safetensors` (w).
 * @module
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { CohortError, ConfigError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { CausalLM } from "../model/llama.js";
import { AdamW, noGrad, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import { loadTokenizer } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { PreferenceFn } from "./preference.js";

export interface LabelledPair {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** The frozen base: model and tokenizer of a model directory. */
export interface BtBase {
  model: CausalLM;
  tok: Tokenizer;
  dir: string;
}

export function loadBtBase(dir: string): BtBase {
  const d = readModelDir(dir);
  if (d.tokenizer === undefined)
    throw new CohortError(`${dir} has no tokenizer.json; the preference model needs its tokenizer`);
  const model = CausalLM.fromHF(d.config, d.tensors);
  for (const p of model.parameters()) p.requireGrad(false);
  return { model, tok: loadTokenizer(dir), dir };
}

/** Features [n, D] (float64) of prompt + completion texts: the last token's final hidden state. */
export function btFeatures(base: BtBase, texts: readonly string[], batch = 16): Float64Array[] {
  const out: Float64Array[] = [];
  const maxPos = base.model.config.maxPositionEmbeddings;
  for (let s = 0; s < texts.length; s += batch) {
    const ids = texts.slice(s, s + batch).map((t) => {
      const e = [...(base.tok.bosId !== null ? [base.tok.bosId] : []), ...base.tok.encode(t)];
      // the last maxPositions tokens (the completion's end is what the score reads)
      return e.length > maxPos ? e.slice(e.length - maxPos) : e;
    });
    const T = Math.max(...ids.map((x) => x.length));
    // left padding, so the last column is every row's last token
    const flat = ids.flatMap((x) => [...new Array(T - x.length).fill(base.tok.padId), ...x]);
    const mask = ids.flatMap((x) => [...new Array(T - x.length).fill(0), ...new Array(x.length).fill(1)]);
    const h = noGrad(() =>
      tidy(() => {
        const input = tensor(flat, { shape: [ids.length, T], dtype: "i64" });
        const m = tensor(mask, { shape: [ids.length, T], dtype: "i64" });
        return base.model
          .hidden(input, m)
          .narrow(1, T - 1, 1)
          .squeeze(1)
          .to("f64"); // [b, D]
      }),
    );
    const d = h.data() as Float64Array;
    const D = h.shape[1] as number;
    h.dispose();
    for (let i = 0; i < ids.length; i++) out.push(d.slice(i * D, (i + 1) * D));
  }
  return out;
}

/** The BT loss and its gradient at w for feature differences Δ [n, D] (float64; for tests and diagnostics). */
export function btLoss(
  w: Float64Array,
  diffs: readonly Float64Array[],
  l2: number,
): { loss: number; grad: Float64Array } {
  const D = w.length;
  const grad = new Float64Array(D);
  let loss = 0;
  for (const d of diffs) {
    let z = 0;
    for (let k = 0; k < D; k++) z += (w[k] as number) * (d[k] as number);
    // −log σ(z) = softplus(−z), stable on both sides
    loss += z > 0 ? Math.log1p(Math.exp(-z)) : -z + Math.log1p(Math.exp(z));
    const g = -1 / (1 + Math.exp(z)); // d/dz of −log σ(z) = −σ(−z)
    for (let k = 0; k < D; k++) grad[k] = (grad[k] as number) + (g * (d[k] as number)) / diffs.length;
  }
  loss /= diffs.length;
  let sq = 0;
  for (let k = 0; k < D; k++) {
    sq += (w[k] as number) ** 2;
    grad[k] = (grad[k] as number) + l2 * (w[k] as number);
  }
  return { loss: loss + 0.5 * l2 * sq, grad };
}

export interface BtTrainOptions {
  steps?: number;
  lr?: number;
  /** L2 coefficient λ on w. */
  l2?: number;
  /** Pairs held out for the accuracy estimate (the last fraction). */
  evalFraction?: number;
}

export interface BtModel {
  base: BtBase;
  w: Float64Array;
  info: {
    pairs: number;
    evalPairs: number;
    trainAccuracy: number;
    evalAccuracy: number | null;
    loss: number;
    steps: number;
    l2: number;
  };
}

const accuracy = (w: Float64Array, diffs: readonly Float64Array[]) =>
  diffs.length === 0
    ? null
    : diffs.filter((d) => d.reduce((s, x, k) => s + x * (w[k] as number), 0) > 0).length / diffs.length;

/** Trains the head on `pairs` (features computed once; full-batch AdamW on the convex BT loss). */
export function trainBradleyTerry(base: BtBase, pairs: readonly LabelledPair[], o: BtTrainOptions = {}): BtModel {
  const steps = o.steps ?? 300;
  const lr = o.lr ?? 0.05;
  const l2 = o.l2 ?? 1e-3;
  const evalFraction = o.evalFraction ?? 0.2;
  if (pairs.length < 2)
    throw new ConfigError(`a preference model needs at least 2 labelled pairs, got ${pairs.length}`);
  const nEval = Math.floor(pairs.length * evalFraction);
  const fc = btFeatures(
    base,
    pairs.map((p) => p.prompt + p.chosen),
  );
  const fr = btFeatures(
    base,
    pairs.map((p) => p.prompt + p.rejected),
  );
  const diffs = fc.map((c, i) => c.map((x, k) => x - ((fr[i] as Float64Array)[k] as number)));
  const train = diffs.slice(0, diffs.length - nEval);
  const held = diffs.slice(diffs.length - nEval);
  const D = (diffs[0] as Float64Array).length;
  const X = tensor(
    train.flatMap((d) => Array.from(d)),
    { shape: [train.length, D], dtype: "f64" },
  );
  const w = zeros([D], { dtype: "f64" }).requireGrad();
  const opt = new AdamW([w], { lr, weightDecay: 0 });
  let loss = Number.NaN;
  try {
    for (let s = 0; s < steps; s++) {
      opt.zeroGrad();
      const l = tidy(() =>
        X.matmul(w)
          .neg()
          .softplus()
          .mean()
          .add(
            w
              .square()
              .sum()
              .mul(0.5 * l2),
          ),
      );
      loss = l.item();
      l.backward();
      l.dispose();
      opt.step();
    }
    const wf = Float64Array.from(w.data() as Float64Array);
    return {
      base,
      w: wf,
      info: {
        pairs: train.length,
        evalPairs: held.length,
        trainAccuracy: accuracy(wf, train) as number,
        evalAccuracy: accuracy(wf, held),
        loss,
        steps,
        l2,
      },
    };
  } finally {
    X.dispose();
    w.dispose();
    opt.dispose?.();
  }
}

/** Writes `bt.json` and `bt-head.safetensors` into `out` (atomically); the base is referenced by path. */
export function saveBradleyTerry(m: BtModel, out: string): void {
  mkdirSync(out, { recursive: true });
  const head = tensor(m.w, { shape: [m.w.length], dtype: "f64" });
  try {
    writeSafetensors(join(out, "bt-head.safetensors"), { w: head }, { format: "pt" });
  } finally {
    head.dispose();
  }
  const meta = {
    kind: "bradley_terry",
    base: relative(resolve(out), resolve(m.base.dir)),
    features: "last-token final hidden state",
    ...m.info,
  };
  writeFileSync(join(out, "bt.json.tmp"), `${JSON.stringify(meta, null, 2)}\n`);
  renameSync(join(out, "bt.json.tmp"), join(out, "bt.json"));
}

/** A saved preference model as a preference: P(a ≻ b) = σ(r(x, a) − r(x, b)); scores are cached by text. */
export function btPreference(dir: string): PreferenceFn {
  let meta: { kind?: string; base?: string };
  try {
    meta = JSON.parse(readFileSync(join(dir, "bt.json"), "utf8"));
  } catch (e) {
    throw new ConfigError(
      `${dir} is not a preference model directory (bt.json: ${(e as Error).message}); make one with cohort preference-model`,
      "preference.bt.path",
    );
  }
  if (meta.kind !== "bradley_terry" || typeof meta.base !== "string")
    throw new ConfigError(`${join(dir, "bt.json")} does not describe a Bradley–Terry model`, "preference.bt.path");
  const baseDir = isAbsolute(meta.base) ? meta.base : resolve(dir, meta.base);
  const base = loadBtBase(baseDir);
  const st = readSafetensors(join(dir, "bt-head.safetensors")).tensors;
  const wt = st.w as Tensor;
  const w = Float64Array.from(wt.to("f64").data() as Float64Array);
  for (const t of Object.values(st)) (t as Tensor).dispose();
  const cache = new Map<string, number>();
  const score = (text: string) => {
    let r = cache.get(text);
    if (r === undefined) {
      const f = btFeatures(base, [text])[0] as Float64Array;
      r = f.reduce((s, x, k) => s + x * (w[k] as number), 0);
      cache.set(text, r);
    }
    return r;
  };
  return (s) => 1 / (1 + Math.exp(-(score(s.prompt + s.a) - score(s.prompt + s.b))));
}

/** Labelled pairs from a JSONL file: one `{"prompt", "chosen", "rejected"}` object per line. */
export function readPairs(file: string): LabelledPair[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: LabelledPair[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new ConfigError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    for (const k of ["prompt", "chosen", "rejected"])
      if (typeof o[k] !== "string")
        throw new ConfigError(`${file}:${i + 1}: "${k}" must be a string (a line is {"prompt", "chosen", "rejected"})`);
    out.push({ prompt: o.prompt as string, chosen: o.chosen as string, rejected: o.rejected as string });
  });
  return out;
}

export const btDirOf = (configFile: string | undefined, p: string) =>
  isAbsolute(p) ? p : resolve(configFile ? dirname(resolve(configFile)) : process.cwd(), p);
