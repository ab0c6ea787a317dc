/**
 * Training-Free GRPO (arXiv 2510.08191, ALGORITHMS.md §B.28 [CODE]): an experience library learned by group
 * rollouts against an OpenAI-compatible endpoint, with no weight updates.
 * @module
 */
export { loadTfgrpoConfig, parseTfgrpoConfig, type TfgrpoConfig, tfgrpoConfigSchema } from "./config.js";
export * from "./library.js";
export * from "./parse.js";
export * from "./prompts.js";
export {
  type ChatEndpoint,
  chatN,
  endpointsOf,
  evaluateWithLibrary,
  problemsOf,
  runDirOf,
  runTfgrpo,
  type TfgrpoOptions,
  type TfgrpoResult,
} from "./run.js";
