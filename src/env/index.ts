/**
 * Multi-turn environments and agents: the `Environment` contract, built-in environments (maze, calculator),
 * tools with zod arguments, the batched episode roller, episodes as training rows, and SFT on scripted episodes.
 * @module
 */
export * from "./calculator.js";
export * from "./evaluate.js";
export * from "./maze.js";
export * from "./registry.js";
export * from "./roller.js";
export * from "./sft.js";
export * from "./source.js";
export * from "./template.js";
export * from "./tools.js";
export type * from "./types.js";
