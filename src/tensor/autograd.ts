/**
 * Functional autograd: gradients of outputs with respect to chosen inputs, returned rather than accumulated
 * into `.grad` (torch.autograd.grad), and Hessian-vector products by double backward.
 *
 * | function                         | value                                                                  |
 * |----------------------------------|------------------------------------------------------------------------|
 * | grad(ys, xs, {gradOutputs})      | [Σ_k ⟨g_k, ∂y_k/∂x_i⟩]_i   (g_k = 1 for a scalar y_k)                   |
 * | grad(…, {createGraph: true})     | the same, with a graph of its own (differentiable again)                |
 * | hvp(f, xs, vs)                   | ∇²f · v = ∇_x ⟨∇_x f, v⟩   (two backward passes, no Hessian formed)      |
 *
 * Usage: `autograd.grad([loss], params, {createGraph: true})`. The results are new tensors owned by the caller
 * (in a `tidy` scope they are disposed with the scope unless returned).
 * @module
 */
import { CohortError } from "../errors.js";
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export interface GradOptions {
  /** One per output (a tensor of its shape), or null for a scalar output (= 1). Default: all null. */
  gradOutputs?: (Tensor | null)[];
  /** Build a graph of the gradient itself (for a second backward pass). Default false. */
  createGraph?: boolean;
  /** Keep the graph of the outputs after this pass. Default: `createGraph`. */
  retainGraph?: boolean;
  /** An input the outputs do not depend on gives null instead of an error. Default false. */
  allowUnused?: boolean;
}

/** ∂(outputs)/∂(inputs) contracted with `gradOutputs` (torch.autograd.grad). */
export function grad(outputs: Tensor[], inputs: Tensor[], opts: GradOptions & { allowUnused: true }): (Tensor | null)[];
export function grad(outputs: Tensor[], inputs: Tensor[], opts?: GradOptions): Tensor[];
export function grad(outputs: Tensor[], inputs: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const go = opts.gradOutputs;
  if (go !== undefined && go.length !== outputs.length)
    throw new CohortError(`autograd.grad: ${go.length} gradOutputs for ${outputs.length} outputs`);
  const r = native.autogradGrad(
    outputs.map((t) => t.h),
    inputs.map((t) => t.h),
    go === undefined ? null : go.map((g) => (g === null ? null : g.h)),
    opts.createGraph === true,
    opts.retainGraph ?? null,
    opts.allowUnused === true,
  );
  return r.map((x) => (x === null ? null : new Tensor(x)));
}

/**
 * Hessian-vector product ∇²f(x)·v of a scalar f by double backward: g = ∇f with a graph, then ∇⟨g, v⟩.
 * `retainGraph` keeps f's graph for a further pass. Inputs f does not reach contribute zero.
 */
export function hvp(f: Tensor, inputs: Tensor[], vs: Tensor[], opts: { retainGraph?: boolean } = {}): Tensor[] {
  if (vs.length !== inputs.length)
    throw new CohortError(`autograd.hvp: ${vs.length} vectors for ${inputs.length} inputs`);
  vs.forEach((v, i) => {
    const x = inputs[i] as Tensor;
    if (v.shape.join(",") !== x.shape.join(","))
      throw new CohortError(`autograd.hvp: vector ${i} has shape [${v.shape}], input ${i} [${x.shape}]`);
  });
  const g = grad([f], inputs, { createGraph: true, allowUnused: true });
  const used = g.flatMap((x, i) => (x === null ? [] : [[x, i] as const]));
  if (used.length === 0) return inputs.map((x) => x.detach().mul(0));
  let dot: Tensor | null = null;
  for (const [gi, i] of used) {
    const term = gi.mul((vs[i] as Tensor).to(gi.dtype)).sum();
    dot = dot === null ? term : dot.add(term);
  }
  const out = dot?.requiresGrad
    ? grad([dot as Tensor], inputs, { allowUnused: true, retainGraph: opts.retainGraph === true })
    : inputs.map(() => null);
  return out.map((h, i) => (h === null ? (inputs[i] as Tensor).detach().mul(0) : h));
}
