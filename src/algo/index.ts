/**
 * The design space of ALGORITHMS.md §C: every slot's components, registered by name.
 * @module
 */
export * from "./advantage.js";
export * from "./agent.js";
export * from "./aggregate.js";
export * from "./component.js";
export * from "./config.js";
export * from "./filters.js";
export * from "./gates.js";
export * from "./hrpo.js";
export * from "./importance.js";
export * from "./losses.js";
export * from "./pair-mask.js";
export * from "./pipeline.js";
export * from "./policy-loss.js";
export * from "./preference.js";
export * from "./ratio.js";
export * from "./registry.js";
export * from "./regularizers.js";
export * from "./rewards.js";
export * from "./reweight.js";
export * from "./step.js";
export type * from "./types.js";
