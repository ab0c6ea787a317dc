/**
 * LoRA weight sync without the full weights: the trainer writes only the adapters (`lora_A` / `lora_B` per
 * adapted projection, with the scale α/r in the safetensors metadata), and `cohort serve` folds them into
 * the base weights it started from: W = W₀ + scale·B·A. Each push is a complete description of the policy
 * relative to W₀, so a worker that joins late, or reloads twice, ends up with the same weights.
 * @module
 */
import { CohortError } from "../errors.js";
import { writeSafetensors } from "../io/safetensors.js";
import type { CausalLM } from "../model/llama.js";
import type { LoraAdapter } from "../model/lora.js";
import { dispose, keep, noGrad, type Tensor, tidy } from "../tensor/index.js";

/** The safetensors metadata key that marks an adapter snapshot and holds its scale α/r. */
export const ADAPTER_SCALE_KEY = "cohort.lora_scale";

/** Writes the adapters of `lora` (Hugging Face PEFT names) and their scale to `file`. */
export function writeAdapterSnapshot(file: string, lora: LoraAdapter): void {
  writeSafetensors(file, Object.fromEntries(lora.namedParameters()), {
    format: "pt",
    [ADAPTER_SCALE_KEY]: String(lora.scale),
  });
}

/** The scale of an adapter snapshot's metadata, or null when the file holds full weights. */
export function adapterScaleOf(metadata: Record<string, string>, path: string): number | null {
  const raw = metadata[ADAPTER_SCALE_KEY];
  if (raw === undefined) return null;
  const scale = Number(raw);
  if (!Number.isFinite(scale))
    throw new CohortError(`${path}: ${ADAPTER_SCALE_KEY} is ${JSON.stringify(raw)}, not a number`);
  return scale;
}

/**
 * Sets every adapted projection of `model` to W₀ + scale·B·A, where W₀ is its weight before the first
 * adapter load (kept in `base`); projections that earlier loads adapted and this one does not go back to W₀.
 * Everything is checked before any weight changes. The adapter tensors stay owned by the caller.
 */
export function foldAdapters(
  model: CausalLM,
  base: Map<string, Tensor>,
  adapters: Record<string, Tensor>,
  scale: number,
  path: string,
): void {
  const weights = new Map(model.namedParameters());
  const pairs: { name: string; a: Tensor; b: Tensor; w: Tensor }[] = [];
  for (const key of Object.keys(adapters)) {
    if (key.endsWith(".lora_B.weight")) {
      if (adapters[key.replace(/\.lora_B\.weight$/, ".lora_A.weight")] === undefined)
        throw new CohortError(`${path}: "${key}" has no lora_A partner`);
      continue;
    }
    if (!key.endsWith(".lora_A.weight"))
      throw new CohortError(`${path}: "${key}" is not an adapter tensor (…lora_A.weight / …lora_B.weight)`);
    const name = key.replace(/\.lora_A\.weight$/, ".weight");
    const b = adapters[key.replace(/\.lora_A\.weight$/, ".lora_B.weight")];
    if (b === undefined) throw new CohortError(`${path}: "${key}" has no lora_B partner`);
    const w = weights.get(name);
    if (w === undefined) throw new CohortError(`${path}: the served model has no weight "${name}" to adapt`);
    const a = adapters[key] as Tensor;
    const [out, inp] = w.shape as [number, number];
    const r = a.shape[0] as number;
    if (a.ndim !== 2 || b.ndim !== 2 || a.shape[1] !== inp || b.shape[0] !== out || b.shape[1] !== r)
      throw new CohortError(
        `${path}: adapters of "${name}" have shapes A [${a.shape}], B [${b.shape}]; the weight [${w.shape}] needs A [r, ${inp}] and B [${out}, r]`,
      );
    pairs.push({ name, a, b, w });
  }
  if (pairs.length === 0) throw new CohortError(`${path}: the adapter snapshot holds no adapters`);
  noGrad(() =>
    tidy(() => {
      const adapted = new Set(pairs.map((p) => p.name));
      for (const [name, w0] of base) if (!adapted.has(name)) (weights.get(name) as Tensor).copy_(w0);
      for (const { name, a, b, w } of pairs) {
        let w0 = base.get(name);
        if (w0 === undefined) {
          w0 = keep(w.detach().clone());
          base.set(name, w0);
        }
        const dev = w.device;
        w.copy_(w0.add(b.to(dev).to(w.dtype).matmul(a.to(dev).to(w.dtype)).mul(scale)));
      }
    }),
  );
}

/** Forgets the base copies (after a full-weight load, the loaded weights are the new W₀ for adapters). */
export function clearAdapterBase(base: Map<string, Tensor>): void {
  dispose([...base.values()]);
  base.clear();
}
