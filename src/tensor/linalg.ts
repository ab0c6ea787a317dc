/**
 * Linear algebra over batches of matrices (native `svd` / `svdvals`, torch::linalg_svd).
 *
 * | function        | input          | output                                                          |
 * |-----------------|----------------|-----------------------------------------------------------------|
 * | `svd(A)`        | A [..., m, n]  | U [..., m, k], S [..., k] (descending), Vh [..., k, n]; k = min(m, n) |
 * | `svd(A, {full})`| A [..., m, n]  | U [..., m, m], S [..., k], Vh [..., n, n]                       |
 * | `svdvals(A)`    | A [..., m, n]  | S [..., k]                                                      |
 *
 * A = U diag(S) Vh for every leading index. f32 or f64; non-finite or empty inputs are refused with an
 * error naming the op and the shapes.
 * @module
 */
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export interface Svd {
  U: Tensor;
  S: Tensor;
  Vh: Tensor;
}

/** Batched singular value decomposition of A [..., m, n] (reduced unless `fullMatrices`). */
export function svd(a: Tensor, opts: { fullMatrices?: boolean } = {}): Svd {
  const [U, S, Vh] = native.svd(a.h, opts.fullMatrices === true).map((h) => new Tensor(h)) as [Tensor, Tensor, Tensor];
  return { U, S, Vh };
}

/** The singular values S [..., min(m, n)] of A [..., m, n], descending. */
export function svdvals(a: Tensor): Tensor {
  return new Tensor(native.svdvals(a.h));
}
