/**
 * `algo.control`: the parts of a method that only control policies have, beside the design-space pipeline:
 *
 * ```yaml
 * algo:
 *   control:
 *     optimizer: {type: harpg, gamma0: 0.1, eta0: 1}   # adamw (the loop's) | pg | npg_igt | harpg (pg-optim.ts)
 *     iwocs: {stepsPerModel: 20, maxModels: 4, tol: 0.01}  # worst-case model search (iwocs.ts)
 *     grouping: {groups: auto, samples: 20000}          # action grouping (grouping.ts)
 * ```
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { groupingSchema } from "./grouping.js";
import { iwocsSchema } from "./iwocs.js";
import { pgOptimizerSchema } from "./pg-optim.js";

export const controlAlgoSchema = z.strictObject({
  optimizer: pgOptimizerSchema.default({ type: "adamw" }),
  iwocs: iwocsSchema.optional(),
  grouping: groupingSchema.optional(),
});
export type ControlAlgo = z.output<typeof controlAlgoSchema>;

/** `algo.control` parsed (ConfigErrors name the key path under `root`). */
export function parseControlAlgo(input: unknown, root = "algo.control"): ControlAlgo {
  const r = controlAlgoSchema.safeParse(input ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const path = i?.path.length ? `${root}.${i.path.join(".")}` : root;
    let msg = i?.message ?? "invalid";
    if (i?.code === "unrecognized_keys")
      msg = `unknown key(s) ${i.keys.join(", ")}; allowed: ${Object.keys(i.path.length ? {} : controlAlgoSchema.shape).join(", ") || "see the docs"}`;
    if (i?.path.at(-1) === "type" || (i?.path[0] === "optimizer" && i.path.length === 1))
      msg = `${msg} (optimizer.type is one of adamw, pg, npg_igt, harpg)`;
    throw new ConfigError(msg, path);
  }
  return r.data;
}
