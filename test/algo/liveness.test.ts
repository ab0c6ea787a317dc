// Liveness: every option a preset sets that distinguishes it from GRPO changes something on fixed inputs —
// the loss or the gradient of a step, the state of a stateful component after it, or the next step's loss and
// gradient. An inert knob fails here. The knobs are read from each preset's own config (nothing hand-kept);
// rollout-level fields (algo.rollout) act on sampling and are covered by test/rollout.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { z } from "zod";
import { advantageEstimators } from "../../src/algo/advantage.js";
import { AGGREGATE_MODES } from "../../src/algo/aggregate.js";
import type { ComponentDef } from "../../src/algo/component.js";
import { type AlgoConfigInput, parseAlgoConfig } from "../../src/algo/config.js";
import { sampleFilters, tokenFilters } from "../../src/algo/filters.js";
import { gates } from "../../src/algo/gates.js";
import { policyLosses } from "../../src/algo/losses.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { RATIO_LEVELS } from "../../src/algo/ratio.js";
import { regularizers } from "../../src/algo/regularizers.js";
import { rewardCombiners, rewardShapers } from "../../src/algo/rewards.js";
import { advantageReweighters } from "../../src/algo/reweight.js";
import { computeStepLoss } from "../../src/algo/step.js";
import { ConfigError } from "../../src/errors.js";
import { deepMerge, getPreset, presetNames, resolvePreset } from "../../src/presets/index.js";
import type { Tensor } from "../../src/tensor/index.js";
import { RUN_SPECIFIC, stepFixture } from "../helpers/step-fixture.js";

const fixtures = new Map<number, ReturnType<typeof stepFixture>>();
after(() => {
  for (const f of fixtures.values()) f.dispose();
});
/** The fixture for a config: groups of 4, or larger when its estimator needs them (pass@k: k + 1). */
function fixtureFor(cfg: AlgoConfigInput): ReturnType<typeof stepFixture> {
  const c = parseAlgoConfig(cfg, ctx);
  const G = Math.max(4, advantageEstimators.get(c.advantage.estimator).minGroupSize?.(c.advantage.options) ?? 0);
  let f = fixtures.get(G);
  if (f === undefined) {
    f = stepFixture(5, 3, G);
    fixtures.set(G, f);
  }
  return f;
}

type Json = unknown;
const ctx = { rewardFunctions: 2 };

/** Two steps through one pipeline: loss and gradient of each, and the components' state in between. */
function outcome(cfg: AlgoConfigInput, fx = fixtureFor(cfg)): number[] {
  const pl = new Pipeline(cfg);
  const out: number[] = [];
  for (const step of [1, 400]) {
    const tokens = fx.tokens();
    const res = computeStepLoss(pl, fx.rows, tokens, { step });
    pl.endStep(true);
    const g = tokens.logprobs.grad as Tensor | null;
    out.push(res.loss, ...(g ? Array.from(g.data() as Float64Array) : []));
    g?.dispose();
    tokens.logprobs.dispose();
    for (const a of new Set([res.advantages, res.stage.estimated])) if (a.kind === "token") a.values.dispose();
    for (const rec of Object.values(pl.state())) out.push(...Object.values(rec));
  }
  return out;
}

function differs(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return true;
  return a.some((x, i) => !(Math.abs(x - (b[i] as number)) <= 1e-12 * Math.max(1, Math.abs(x))));
}

function get(o: Json, path: (string | number)[]): Json {
  let cur = o;
  for (const k of path) cur = cur !== null && typeof cur === "object" ? (cur as Record<string, Json>)[k] : undefined;
  return cur;
}
function set(o: Json, path: (string | number)[], v: Json): Json {
  const copy = structuredClone(o) as Record<string | number, Json>;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, Json>;
  const last = path.at(-1) as string | number;
  if (v === undefined) {
    if (Array.isArray(cur)) cur.splice(last as number, 1);
    else delete cur[last];
  } else cur[last] = v;
  return copy;
}

/** Leaf paths of a config object (arrays and objects walked). */
function leaves(o: Json, path: (string | number)[] = []): (string | number)[][] {
  if (o === null || typeof o !== "object") return [path];
  const entries = Array.isArray(o) ? o.map((v, i) => [i, v] as const) : Object.entries(o);
  return entries.flatMap(([k, v]) => leaves(v, [...path, k]));
}

/** The component whose params hold `path` (e.g. ["gate", "low"] → the gate's def and key "low"). */
function ownerOf(cfg: Json, path: (string | number)[]): { def: ComponentDef; key: string } | null {
  const [head, i, k, key] = path;
  const byName = (reg: { get(n: string): ComponentDef }, n: Json) => reg.get(String(n));
  if (head === "advantage" && i === "options")
    return { def: byName(advantageEstimators, get(cfg, ["advantage", "estimator"])), key: String(k) };
  if (head === "reward" && i === "options")
    return { def: byName(rewardCombiners, get(cfg, ["reward", "combine"])), key: String(k) };
  const lists: Record<string, { get(n: string): ComponentDef }> = {
    shapers: rewardShapers,
    reweighters: advantageReweighters,
    sampleFilters,
    tokenFilters,
  };
  if (typeof head === "string" && head in lists && k === "options") {
    return { def: byName(lists[head] as never, get(cfg, [head, i as number, "name"])), key: String(key) };
  }
  if (head === "gate" && typeof i === "string" && i !== "type")
    return { def: byName(gates, get(cfg, ["gate", "type"])), key: i };
  if (head === "loss" && typeof i === "string" && i !== "type")
    return { def: byName(policyLosses, get(cfg, ["loss", "type"])), key: i };
  if (head === "regularizers" && typeof k === "string" && k !== "type") {
    return { def: byName(regularizers, get(cfg, ["regularizers", i as number, "type"])), key: k };
  }
  return null;
}

/** The enum values a params key allows, from the component's own zod schema. */
function enumValues(def: ComponentDef, key: string): string[] {
  let s = (def.params as z.ZodObject).shape?.[key] as z.ZodType | undefined;
  for (let i = 0; i < 4 && s !== undefined; i++) {
    const d = s._zod.def as { type: string; innerType?: z.ZodType; entries?: Record<string, string> };
    if (d.type === "enum") return Object.values(d.entries ?? {});
    s = d.innerType;
  }
  return [];
}

/** Candidate changes of one knob: its config with the knob moved (several tries for numbers). */
function perturbations(cfg: Json, path: (string | number)[]): { what: string; cfg: Json }[] {
  const v = get(cfg, path);
  const last = path.at(-1);
  const head = path[0];
  const out: { what: string; cfg: Json }[] = [];
  const structural = last === "name" || last === "type" || last === "estimator" || last === "combine";
  if (structural) {
    if (path.length === 3)
      out.push({ what: `remove ${path.slice(0, 2).join(".")}`, cfg: set(cfg, path.slice(0, 2), undefined) });
    else if (head === "advantage")
      out.push({ what: "estimator grpo", cfg: set(cfg, ["advantage"], { estimator: "grpo" }) });
    else if (head === "reward")
      out.push({
        what: "combine sum",
        cfg: set(cfg, ["reward"], { ...(get(cfg, ["reward"]) as object), combine: "sum", options: {} }),
      });
    else if (head === "gate" && get(cfg, ["loss", "type"]) !== undefined && get(cfg, ["loss", "type"]) !== "surrogate")
      // an alternative loss implies gate "none": the loss is the knob
      out.push({
        what: "loss surrogate",
        cfg: set(set(cfg, ["loss"], { type: "surrogate" }), ["gate"], { type: "clip" }),
      });
    else if (head === "gate")
      for (const type of ["clip", "sapo", "none"].filter((t) => t !== v))
        out.push({ what: `gate ${type}`, cfg: set(cfg, ["gate"], { type }) });
    else if (head === "loss")
      out.push({
        what: "loss surrogate",
        cfg: set(set(cfg, ["loss"], { type: "surrogate" }), ["gate"], { type: "clip" }),
      });
    return out;
  }
  if (typeof v === "number") {
    for (const x of [v * 0.5, v * 1.5, v * 3, v + 1, v === 0 ? 0.3 : v * 0.1]) {
      const n: number = Number.isInteger(v) && Math.abs(v) >= 2 ? Math.round(x) : x;
      if (n !== v) out.push({ what: `${path.join(".")} ${v} → ${n}`, cfg: set(cfg, path, n) });
    }
    return out;
  }
  if (typeof v === "boolean") return [{ what: `${path.join(".")} → ${!v}`, cfg: set(cfg, path, !v) }];
  if (typeof v === "string") {
    const owner = ownerOf(cfg, path);
    let values = owner ? enumValues(owner.def, owner.key) : [];
    if (path.join(".") === "ratio.level") values = [...RATIO_LEVELS];
    if (path.join(".") === "aggregate.mode") values = [...AGGREGATE_MODES];
    if (path.join(".") === "ratio.hybrid.mix") values = ["average", "entropy"];
    if (last === "kind") values = ["constant", "linear", "cosine"];
    // a prompt field to group by: the fixture's rows carry two (step-fixture.ts)
    if (last === "field") values = ["hops", "level"];
    for (const x of values) {
      if (x === v) continue;
      let moved = set(cfg, path, x);
      // settings that only exist for the old value go with it (hybrid branches, Dr. GRPO's L_max)
      if (path.join(".") === "ratio.level") moved = set(moved, ["ratio", "hybrid"], undefined);
      if (path.join(".") === "aggregate.mode" && x !== "seq-mean-token-sum-norm")
        moved = set(moved, ["aggregate", "maxLength"], undefined);
      out.push({ what: `${path.join(".")} → ${x}`, cfg: moved });
    }
  }
  return out;
}

describe("every knob a preset sets changes the loss, the gradient or the state", () => {
  const grpo = getPreset("grpo").config as Json;
  for (const name of presetNames()) {
    test(name, () => {
      const raw = structuredClone(getPreset(name).config) as Record<string, Json>;
      delete raw.rollout; // sampling-level fields: test/rollout
      const run = RUN_SPECIFIC[name];
      const base = resolvePreset(name, run ?? {}, ctx);
      const fx = fixtureFor(base);
      const ref = outcome(base, fx);
      const inert: string[] = [];
      let knobs = 0;
      for (const path of leaves(raw)) {
        if (JSON.stringify(get(grpo, path)) === JSON.stringify(get(raw, path))) continue; // shared with GRPO
        knobs++;
        const tries = perturbations(raw, path);
        const live = tries.some(({ cfg }) => {
          let changed: AlgoConfigInput;
          try {
            // the preset with this knob moved (the run's overrides on top, unless the move replaced their section)
            const keepRun = Object.fromEntries(
              Object.entries(run ?? {}).filter(
                ([k]) => JSON.stringify(get(cfg, [k])) === JSON.stringify(get(raw, [k])),
              ),
            );
            changed = resolvePresetFrom(cfg as AlgoConfigInput, keepRun);
          } catch (e) {
            if (e instanceof ConfigError) return false; // a move the config refuses
            throw e;
          }
          return differs(ref, outcome(changed, fx));
        });
        if (!live) inert.push(`${path.join(".")} (${tries.map((t) => t.what).join("; ") || "no move"})`);
      }
      assert.deepEqual(inert, [], `inert knobs of ${name}`);
      // presets that differ from GRPO only in how they sample (algo.rollout) are covered by test/rollout
      if (name !== "grpo" && getPreset(name).config.rollout === undefined)
        assert.ok(knobs > 0, `${name} sets nothing GRPO does not`);
    });
  }
});

/** A raw preset config with run overrides, validated as resolvePreset would. */
function resolvePresetFrom(cfg: AlgoConfigInput, run: Record<string, unknown> | undefined): AlgoConfigInput {
  return parseAlgoConfig(deepMerge(structuredClone(cfg), structuredClone(run ?? {})), ctx);
}
