/**
 * Built-in tasks by name. A spec carries the zod schema of its options (documented in `.meta()`), so a
 * config's `task: {name, options}` is validated before anything runs.
 * @module
 */
import type { z } from "zod";
import { Registry } from "../algo/registry.js";
import { type ArithmeticOptions, arithmeticOptions, arithmeticTask } from "./arithmetic.js";
import { type CountdownOptions, countdownOptions, countdownTask } from "./countdown.js";
import { type NearestOptions, nearestOptions, nearestTask } from "./nearest.js";
import type { Task } from "./types.js";

export interface TaskSpec<O = unknown> {
  name: string;
  description: string;
  /** Schema of the options; each field documented in `.meta()`. */
  options: z.ZodType;
  /** Build the task; throws a ConfigError at `path` (default `task.options`) on invalid options. */
  create(options?: O, path?: string): Task;
}

export function defineTask<O>(spec: TaskSpec<O>): TaskSpec<O> {
  return spec;
}

export const arithmeticSpec = defineTask<ArithmeticOptions>({
  name: "arithmetic",
  description: "Multi-digit addition, subtraction and multiplication; prompt 12+345=, answer <answer>357</answer>.",
  options: arithmeticOptions,
  create: (o, path) => arithmeticTask(o, path),
});

export const countdownSpec = defineTask<CountdownOptions>({
  name: "countdown",
  description: "Reach a target from given numbers; prompt 3 7 25 50 to 87=, answer <answer>expression</answer>.",
  options: countdownOptions,
  create: (o, path) => countdownTask(o, path),
});

export const nearestSpec = defineTask<NearestOptions>({
  name: "nearest",
  description:
    "Rank given numbers by closeness to a target (a ranked list of k, for Rank-GRPO); prompt 3 near 47: 12 50 33 81 45=, answer <answer>45 50 33</answer>.",
  options: nearestOptions,
  create: (o, path) => nearestTask(o, path),
});

/** The registry of built-in tasks. */
export const taskRegistry = new Registry<TaskSpec>("task");
taskRegistry.register(arithmeticSpec.name, arithmeticSpec as TaskSpec);
taskRegistry.register(countdownSpec.name, countdownSpec as TaskSpec);
taskRegistry.register(nearestSpec.name, nearestSpec as TaskSpec);

/**
 * Build a registered task from its name and options, e.g. `createTask("arithmetic", {digits: [2, 4]})`.
 * Unknown names and invalid options throw a ConfigError at `path` (default `task`).
 */
export function createTask(name: string, options: unknown = {}, path = "task"): Task {
  const spec = taskRegistry.get(name, `${path}.name`);
  return spec.create(options, `${path}.options`);
}
