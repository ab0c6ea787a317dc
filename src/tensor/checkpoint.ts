/**
 * Activation checkpointing of one region of a forward pass (Chen et al. 2016, arXiv:1604.06174
 * [PAPER-KNOWN]; the scheme of PyTorch's `torch.utils.checkpoint`), through the native `checkpoint` node.
 *
 *   forward:  y = fn(inputs) with autograd off: none of fn's intermediates are kept, only `inputs`
 *   backward: y' = fn(inputs.detach()) with autograd on, then ∂L/∂inputs, ∂L/∂params = grad(y', …, ∂L/∂y)
 *
 * `fn` must be a pure function of `inputs` and of the tensors in `params` (plus constants): it runs twice and
 * both runs must compute the same thing (no dropout, no in-place writes to shared state). `params` must list
 * every trainable tensor `fn` reads; their gradients flow through the node (a tensor `fn` reads but that is
 * missing from `params` gets no gradient from the region). CPU tensors only: the backward calls back into
 * JavaScript, which libtorch does on the calling thread only for the CPU.
 * @module
 */
import { CohortError } from "../errors.js";
import { native, type TensorHandle } from "./native.js";
import { tidy } from "./scope.js";
import { Tensor } from "./tensor.js";

/** `fn(inputs)`, its activations recomputed in the backward instead of kept (see the module doc). */
export function checkpoint(fn: (inputs: Tensor[]) => Tensor, inputs: Tensor[], params: Tensor[]): Tensor {
  const region = (handles: TensorHandle[]): TensorHandle => {
    const out = tidy(() => fn(handles.map((h) => new Tensor(h))));
    if (!(out instanceof Tensor)) throw new CohortError("checkpoint: the region must return one tensor");
    return out.h; // moved out by the native node; the JS object reads as disposed afterwards
  };
  return new Tensor(
    native.checkpoint(
      region,
      inputs.map((t) => t.h),
      params.map((t) => t.h),
    ),
  );
}
