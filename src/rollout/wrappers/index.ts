/**
 * Rollout wrappers (ALGORITHMS.md §C `RolloutWrapper`): iGRPO (draft → refine), SAGE and Scaf-GRPO (hints
 * for all-fail groups), DaGRPO (off-policy anchors for all-fail groups), PS-GRPO (paraphrase-set groups with
 * a group-similarity reward), MQR (MathForge's question reformulations). Importing this module registers them.
 * @module
 */
import "./dagrpo.js";
import "./igrpo.js";
import "./mqr.js";
import "./ps-grpo.js";
import "./sage.js";
import "./scaf-grpo.js";

export { DagrpoWrapper } from "./dagrpo.js";
export * from "./hints.js";
export { draftCount, IgrpoWrapper } from "./igrpo.js";
export { MQR_ASPECTS, MQR_STORIES, MQR_TERMS, type MqrAspect, MqrWrapper, reformulate } from "./mqr.js";
export { answerSimilarity, type ParaphrasingTask, PsGrpoWrapper, paraphrasesOf } from "./ps-grpo.js";
export * from "./registry.js";
export { SAGE_INSTRUCTIONS, SageWrapper } from "./sage.js";
export { arithmeticTiers, SCAF_TIERS, ScafGrpoWrapper } from "./scaf-grpo.js";
