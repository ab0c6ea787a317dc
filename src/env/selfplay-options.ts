/**
 * The `selfPlay` options of the wordnet environment (Dr. Zero's proposer/solver loop, wordnet-selfplay.ts). Kept
 * apart from both environment files so either can be loaded first.
 * @module
 */
import { z } from "zod";
import { intRange } from "../task/options.js";

export const selfPlayOptions = z
  .strictObject({
    hops: intRange(1, 3)
      .default([1, 2])
      .meta({ description: "Hop counts the proposer is asked for, [min, max] (a proposal may use at most max)." }),
    proposerBaseline: z.enum(["hops", "batch"]).default("hops").meta({
      description:
        "Baseline groups of proposer rows: hops = proposals asked for the same hop count share one (Dr. Zero's HRPO), batch = all proposals of the step.",
    }),
    solverBaseline: z.enum(["question", "hops"]).default("question").meta({
      description:
        "Baseline groups of solver rows: question = the n attempts at one proposed question (the authors' solver GRPO), hops = every attempt at a question of the same hop count.",
    }),
    alternate: z.number().int().min(0).default(0).meta({
      description:
        "0 = proposer and solver rows in one update each step; k > 0 = k steps training the proposer only, then k the solver only, and so on (the authors alternate whole iterations).",
    }),
    pretrainShare: z
      .number()
      .min(0)
      .max(1)
      .default(0.3)
      .meta({ description: "Share of proposer tasks among the scripted train episodes of `cohort pretrain --env`." }),
  })
  .meta({
    description:
      "Dr. Zero self-play: the policy proposes questions (kindN(word)=?) from a seed document and solves them; cohort train uses the self-play source.",
  });

export type SelfPlayOptions = z.output<typeof selfPlayOptions>;
