/**
 * `cohort pretrain-flow`: the starting point of Flow-GRPO / VGPO on digits. Trains, seeded and deterministic,
 *
 * 1. the velocity network (velocity.ts) by conditional flow matching on the training split of data/digits:
 *    x_0 a digit of class c, ε ~ N(0, I), t ~ U(0, 1), x_t = (1 − t)·x_0 + t·ε, loss = mean ‖v_θ(x_t, t, c) − (ε − x_0)‖²,
 *    AdamW with a linear decay of the learning rate to 0;
 * 2. the reward classifier (classifier.ts) on the same split,
 *
 * and writes `generator.safetensors` + `generator.json` (shape, loss, the command) and `classifier.safetensors` +
 * `classifier.json` (held-out accuracy) into `out`. A training config points at that directory with
 * `env: {name: digits_flow, options: {generator: DIR}}`.
 * @module
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CohortError } from "../errors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { Rng } from "../task/rng.js";
import { AdamW, type DType, manualSeed, rand, randn, setNumThreads, tensor, tidy } from "../tensor/index.js";
import { DigitClassifier, trainClassifier } from "./classifier.js";
import { digitsSplit, PIXELS } from "./digits.js";
import { VelocityNet, type VelocityShape } from "./velocity.js";

export interface PretrainFlowOptions {
  out: string;
  seed?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  hidden?: number;
  layers?: number;
  classifierSteps?: number;
  threads?: number;
  /** The command line, recorded in generator.json. */
  command?: string;
  log?: (line: string) => void;
}

export interface PretrainFlowResult {
  steps: number;
  /** Mean flow-matching loss over the last 10% of steps. */
  finalLoss: number;
  classifierAccuracy: number;
}

export function pretrainFlow(o: PretrainFlowOptions): PretrainFlowResult {
  const seed = o.seed ?? 0;
  const steps = o.steps ?? 3000;
  const batch = o.batch ?? 128;
  const lr = o.lr ?? 2e-3;
  for (const [k, v, ok] of [
    ["steps", steps, Number.isInteger(steps) && steps >= 1],
    ["batch", batch, Number.isInteger(batch) && batch >= 1],
    ["lr", lr, lr > 0],
  ] as const)
    if (!ok) throw new CohortError(`pretrain-flow: ${k} ${v} is out of range (steps, batch ≥ 1; lr > 0)`);
  setNumThreads(o.threads ?? 1);
  mkdirSync(o.out, { recursive: true });
  const log = o.log ?? (() => {});

  const { classifier, heldoutAccuracy } = trainClassifier({ seed, steps: o.classifierSteps ?? 400 });
  log(`classifier: held-out accuracy ${(100 * heldoutAccuracy).toFixed(1)}%`);
  const ct = classifier.toTensors();
  try {
    writeSafetensors(join(o.out, "classifier.safetensors"), ct, { format: "pt" });
  } finally {
    for (const t of Object.values(ct)) t.dispose();
  }
  writeJsonAtomic(join(o.out, "classifier.json"), {
    heldoutAccuracy,
    hidden: 64,
    steps: o.classifierSteps ?? 400,
    seed,
  });

  manualSeed(seed);
  const train = digitsSplit("train");
  const data = tensor(train.images, { shape: [train.n, PIXELS], dtype: "f32" });
  const labels = tensor(train.labels, { shape: [train.n], dtype: "i64" });
  const net = new VelocityNet({ hidden: o.hidden ?? 128, layers: o.layers ?? 3 });
  const params = net.params.map(([, p]) => p);
  const opt = new AdamW(params, { lr, weightDecay: 0 });
  const rng = Rng.fromSeed(seed + 1);
  const tail = Math.max(1, Math.floor(steps / 10));
  let tailSum = 0;
  try {
    for (let s = 0; s < steps; s++) {
      opt.zeroGrad();
      const idx = tensor(
        Array.from({ length: batch }, () => rng.int(0, train.n - 1)),
        { dtype: "i64" },
      );
      const loss = tidy(() => {
        const x0 = data.indexSelect(0, idx); // [B, 64]
        const c = labels.indexSelect(0, idx); // [B]
        const eps = randn([batch, PIXELS], { dtype: "f32" }); // [B, 64]
        const t = rand([batch, 1], { dtype: "f32" }); // [B, 1]
        const xt = x0.mul(t.rsub(1)).add(eps.mul(t)); // [B, 64]
        const v = net.forward(xt, t.reshape(-1), c); // [B, 64]
        const l = v.sub(eps.sub(x0)).square().mean();
        l.backward();
        return l.item();
      });
      idx.dispose();
      opt.step(lr * (1 - s / steps));
      if (s >= steps - tail) tailSum += loss;
      if ((s + 1) % 500 === 0 || s === 0) log(`flow matching step ${s + 1}/${steps}: loss ${loss.toFixed(4)}`);
    }
    const st = net.state();
    try {
      writeSafetensors(join(o.out, "generator.safetensors"), st, { format: "pt" });
    } finally {
      for (const t of Object.values(st)) t.dispose();
    }
    const finalLoss = tailSum / tail;
    writeJsonAtomic(join(o.out, "generator.json"), {
      kind: "digits_flow",
      shape: net.shape,
      steps,
      batch,
      lr,
      seed,
      finalLoss,
      data: "data/digits/digits.txt (UCI optical digits, https://doi.org/10.24432/C50P49)",
      ...(o.command !== undefined ? { command: o.command } : {}),
    });
    return { steps, finalLoss, classifierAccuracy: heldoutAccuracy };
  } finally {
    opt.dispose();
    net.dispose();
    data.dispose();
    labels.dispose();
  }
}

/** The velocity network saved by `pretrainFlow` in `dir`. */
export function loadGenerator(dir: string, dtype: DType = "f32"): VelocityNet {
  let meta: { kind?: string; shape?: VelocityShape };
  try {
    meta = JSON.parse(readFileSync(join(dir, "generator.json"), "utf8"));
  } catch (e) {
    throw new CohortError(
      `no generator in ${dir} (${(e as Error).message}); make one with \`cohort pretrain-flow --out ${dir}\``,
    );
  }
  if (meta.kind !== "digits_flow" || meta.shape === undefined)
    throw new CohortError(`${dir}/generator.json is not a digits flow generator (kind ${meta.kind})`);
  const net = new VelocityNet(meta.shape, dtype);
  const { tensors } = readSafetensors(join(dir, "generator.safetensors"));
  try {
    net.load(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  return net;
}

/** The reward classifier saved by `pretrainFlow` in `dir`. */
export function loadClassifier(dir: string): DigitClassifier {
  let tensors: Record<string, import("../tensor/index.js").Tensor>;
  try {
    tensors = readSafetensors(join(dir, "classifier.safetensors")).tensors;
  } catch (e) {
    throw new CohortError(
      `no reward classifier in ${dir} (${(e as Error).message}); make one with \`cohort pretrain-flow --out ${dir}\``,
    );
  }
  try {
    return DigitClassifier.fromTensors(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
