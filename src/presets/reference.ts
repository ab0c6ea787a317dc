/**
 * Documentation generated from the registries, so that it cannot drift from the code: the component reference
 * (docs/COMPONENTS.md: every registered component of every slot with its paper, confidence tag, what it reads
 * and its options — type, default, allowed values and bounds — from its zod params schema), and the README's
 * tables of `algo:` keys and of presets. `npm run docs:components` writes them; a test fails when they differ.
 * @module
 */
import { z } from "zod";
import { advantageEstimators } from "../algo/advantage.js";
import "../algo/agent.js";
import { AGGREGATE_MODES } from "../algo/aggregate.js";
import type { ComponentDef } from "../algo/component.js";
import { sampleFilters, tokenFilters } from "../algo/filters.js";
import { gates } from "../algo/gates.js";
import { policyLosses } from "../algo/losses.js";
import "../algo/pair-mask.js";
import { RATIO_LEVELS } from "../algo/ratio.js";
import { regularizers } from "../algo/regularizers.js";
import { rewardCombiners, rewardShapers } from "../algo/rewards.js";
import { advantageReweighters } from "../algo/reweight.js";
import { getPreset, presetNames } from "./index.js";

/** The slots of `algo:`, their config key and how an entry names its component. */
export const SLOTS: { key: string; entry: string; registry: { list(): ComponentDef[] } }[] = [
  { key: "algo.advantage", entry: "{estimator: NAME, options: {…}}", registry: advantageEstimators },
  { key: "algo.reward", entry: "{combine: NAME, weights: [w_k], options: {…}}", registry: rewardCombiners },
  { key: "algo.shapers", entry: "[{name: NAME, options: {…}}]", registry: rewardShapers },
  { key: "algo.reweighters", entry: "[{name: NAME, options: {…}}]", registry: advantageReweighters },
  { key: "algo.sampleFilters", entry: "[{name: NAME, options: {…}}]", registry: sampleFilters },
  { key: "algo.tokenFilters", entry: "[{name: NAME, options: {…}}]", registry: tokenFilters },
  { key: "algo.gate", entry: "{type: NAME, …options}", registry: gates },
  { key: "algo.loss", entry: "{type: NAME, …options}", registry: policyLosses },
  { key: "algo.regularizers", entry: "[{type: NAME, …options}]", registry: regularizers },
];

interface JsonProp {
  type?: string | string[];
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  anyOf?: JsonProp[];
  items?: JsonProp;
}

function describeType(p: JsonProp): string {
  if (p.enum) return p.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  if (p.anyOf) return p.anyOf.map(describeType).join(" or ");
  const t = Array.isArray(p.type) ? p.type.join("/") : (p.type ?? "any");
  const bounds: string[] = [];
  if (p.minimum !== undefined) bounds.push(`≥ ${p.minimum}`);
  if (p.exclusiveMinimum !== undefined) bounds.push(`> ${p.exclusiveMinimum}`);
  if (p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${p.maximum}`);
  if (p.exclusiveMaximum !== undefined) bounds.push(`< ${p.exclusiveMaximum}`);
  const inner = t === "array" && p.items ? ` of ${describeType(p.items)}` : "";
  return `${t}${inner}${bounds.length ? ` (${bounds.join(", ")})` : ""}`;
}

/** The options of a component as a markdown list (name: type, default). */
function optionsOf(def: ComponentDef): string {
  const schema = z.toJSONSchema(def.params, { unrepresentable: "any", io: "input" }) as {
    properties?: Record<string, JsonProp>;
    required?: string[];
  };
  const props = Object.entries(schema.properties ?? {});
  if (props.length === 0) return "none";
  return props
    .map(([k, p]) => {
      const required = schema.required?.includes(k) && p.default === undefined;
      const dflt =
        p.default !== undefined ? `, default \`${JSON.stringify(p.default)}\`` : required ? ", required" : "";
      return `\`${k}\` ${describeType(p)}${dflt}`;
    })
    .join("; ");
}

/** docs/COMPONENTS.md as generated from the registries. */
export function componentReference(): string {
  const lines = [
    "# Components",
    "",
    "Generated from the registries by `npm run docs:components` (src/presets/reference.ts); a test fails when",
    "this file and the code disagree. Every option below is checked when the config is read. **Needs** are the",
    "inputs a component reads beyond rewards and its options; a run that cannot supply one is refused at",
    "config time (src/algo/component.ts `NEEDS`). Confidence: CODE (the authors' code), CODE-FW (TRL / verl),",
    "PAPER (the paper read), PAPER-KNOWN (standard), ABSTRACT (the formula is a documented design choice).",
    "",
    `Ratio levels (\`algo.ratio.level\`): ${RATIO_LEVELS.map((l) => `\`${l}\``).join(", ")}.`,
    `Aggregation modes (\`algo.aggregate.mode\`): ${AGGREGATE_MODES.map((l) => `\`${l}\``).join(", ")}.`,
    "",
  ];
  for (const slot of SLOTS) {
    lines.push(`## \`${slot.key}\``, "", `Entry: \`${slot.entry}\`.`, "");
    lines.push("| name | paper | conf. | what it does | needs | options |", "|---|---|---|---|---|---|");
    for (const def of slot.registry.list()) {
      const needs =
        typeof def.needs === "function" ? "depends on options" : (def.needs ?? []).map((n) => `\`${n}\``).join(", ");
      const doc = def.doc.replaceAll("|", "\\|");
      lines.push(
        `| \`${def.name}\` | ${def.paper ?? "—"} | ${def.confidence ?? "—"} | ${doc} | ${needs || "—"} | ${optionsOf(def)} |`,
      );
    }
    lines.push("");
  }
  return `${lines.join("\n")}`;
}

/** Defaults the README states for each slot (the preset decides unless noted). */
const SLOT_DEFAULT: Record<string, string> = {
  "algo.advantage": "preset",
  "algo.reward": "sum",
  "algo.gate": "clip 0.2",
  "algo.loss": "surrogate",
};

/** The README's table of `algo:` keys (between the components markers), generated from the registries. */
export function readmeAlgoTable(): string {
  const rows = [
    "| key | default | components (options and papers: docs/COMPONENTS.md) |",
    "|---|---|---|",
    ...SLOTS.map((slot) => {
      const names = slot.registry
        .list()
        .map((d) => `\`${d.name}\``)
        .join(", ");
      return `| \`${slot.key}\` | ${SLOT_DEFAULT[slot.key] ?? "preset"} | \`${slot.entry.replaceAll("|", "\\|")}\`: ${names} |`;
    }),
    `| \`algo.ratio\` | token | \`{level, logRatioClamp, seqLogRatioClamp, hybrid?}\`: ${RATIO_LEVELS.map((l) => `\`${l}\``).join(", ")} |`,
    `| \`algo.aggregate\` | seq-mean-token-mean | \`{mode, maxLength?, countMaskedSequences}\`: ${AGGREGATE_MODES.map((l) => `\`${l}\``).join(", ")} (global counts: the loss does not depend on micro-batching or ranks) |`,
    "| `algo.rewardKl` | off | `{beta}`: KL in the reward (k1 on π_old, A.4), subtracted per token before the returns |",
    "| `algo.rollout` | preset | prompt sampler, budget allocator, dynamic sampling, rollout wrapper (see Rollout-level methods) |",
  ];
  return rows.join("\n");
}

/** The README's table of presets: those that change the loss side, or (`rollout`) those that change sampling. */
export function readmePresetTable(kind: "loss" | "rollout"): string {
  const rows = presetNames()
    .map(getPreset)
    .filter((p) => (p.config.rollout !== undefined) === (kind === "rollout"))
    .map((p) => `| \`${p.name}\` | ${p.arxiv} | ${p.confidence} | ${p.summary.replaceAll("|", "\\|")} |`);
  return ["| preset | paper | conf. | what it changes |", "|---|---|---|---|", ...rows].join("\n");
}

/** Generated blocks of the README: marker name → content. */
export function readmeBlocks(): Record<string, string> {
  return {
    components: readmeAlgoTable(),
    presets: readmePresetTable("loss"),
    "rollout-presets": readmePresetTable("rollout"),
  };
}

/** The markers around a generated README block. */
export function readmeMarkers(block: string): [string, string] {
  return [`<!-- ${block}:start (npm run docs:components) -->`, `<!-- ${block}:end -->`];
}
