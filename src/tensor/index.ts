/**
 * Tensors on libtorch: creation, ops with autograd, explicit memory ownership, optimizers.
 * @module
 */

export * as autograd from "./autograd.js";
export { checkBlas } from "./blas.js";
export { checkpoint } from "./checkpoint.js";
export { type Svd, svd, svdvals } from "./linalg.js";
export * from "./optim.js";
export { dispose, keep, tidy } from "./scope.js";
export * from "./tensor.js";
