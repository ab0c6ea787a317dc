/**
 * Verifiable tasks: seeded generators with exact verifiers (arithmetic, countdown; nearest ranks items for
 * Rank-GRPO, ranking.ts), JSONL datasets, the answer format, hash-based train/eval splits and the project's own
 * seeded PRNG.
 * @module
 */
export * from "./arithmetic.js";
export * from "./countdown.js";
export * from "./expression.js";
export * from "./format.js";
export * from "./jsonl.js";
export * from "./nearest.js";
export * from "./ranking.js";
export { Fraction } from "./rational.js";
export * from "./registry.js";
export * from "./rng.js";
export * from "./sampler.js";
export * from "./split.js";
export * from "./template.js";
export type * from "./types.js";
