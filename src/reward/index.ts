/**
 * Reward functions: the contract, built-in rewards over task verifiers, user rewards loaded from modules,
 * and safe scoring (timeouts, failures recorded and counted).
 * @module
 */
export * from "./builtin.js";
export * from "./judge.js";
export * from "./load.js";
export * from "./preference.js";
export * from "./process.js";
export * from "./score.js";
export type * from "./types.js";
