/**
 * Data-parallel training on PyTorch's c10d: process groups (Gloo on CPU, NCCL on GPU), the rendezvous from
 * flags or the usual variables, the local launcher behind `--nproc N`, and the trainer's data-parallel rules.
 * @module
 */
export * from "./data-parallel.js";
export * from "./group.js";
export * from "./launch.js";
export * from "./metrics.js";
export * from "./rendezvous.js";
