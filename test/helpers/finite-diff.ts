/**
 * Numerical gradients by central differences in float64, to check autograd independently of PyTorch.
 * @module
 */
import assert from "node:assert/strict";
import { noGrad, type Tensor, tensor, tidy, zeroGrad } from "../../src/tensor/index.js";
import { assertClose } from "./oracle.js";

/** ∂f/∂x by central differences: (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h for every element i. */
export function numericalGradient(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i] as number;
    xp[i] = x0 + eps;
    const fp = f(xp);
    xp[i] = x0 - eps;
    const fm = f(xp);
    xp[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/**
 * Numerical gradients of L = Σₖ sum(goutsₖ · outₖ) (over the floating outputs of `fn`, in order) with
 * respect to each input named in `wrt`. Those inputs must be f64; the others are passed through unchanged.
 */
export function finiteDiffGrads(
  fn: (x: Record<string, Tensor>) => Tensor | Tensor[],
  inputs: Record<string, Tensor>,
  wrt: string[],
  gouts: Tensor[],
  eps = 1e-6,
): Float64Array[] {
  const gvals = gouts.map((g) => Float64Array.from(g.toArray()));
  return wrt.map((name) => {
    const x = inputs[name];
    assert.ok(x !== undefined, `finiteDiffGrads: no input named ${name}`);
    assert.equal(x.dtype, "f64", `finiteDiffGrads: input ${name} must be f64, got ${x.dtype}`);
    const shape = [...x.shape];
    const loss = (v: Float64Array): number =>
      tidy(() =>
        noGrad(() => {
          const args = { ...inputs, [name]: tensor(v, { shape }) };
          const res = fn(args);
          const outs = (Array.isArray(res) ? res : [res]).filter((o) => o.dtype === "f64");
          assert.equal(outs.length, gvals.length, "finiteDiffGrads: outputs must be f64, one per upstream gradient");
          let total = 0;
          outs.forEach((o, k) => {
            const ov = o.toArray();
            const gk = gvals[k] as Float64Array;
            for (let i = 0; i < ov.length; i++) total += (ov[i] as number) * (gk[i] as number);
          });
          return total;
        }),
      );
    return numericalGradient(loss, Float64Array.from(x.toArray()), eps);
  });
}

/**
 * For every named f64 parameter: autograd's ∂objective/∂param equals central differences (rtol 1e-5, atol 1e-7).
 * `objective` returns a scalar built from the parameters; each parameter is restored after its differences.
 */
export function assertParamGradients(
  params: readonly [string, Tensor][],
  objective: () => Tensor,
  label: string,
): void {
  const all = params.map(([, t]) => t);
  for (const [name, param] of params) {
    zeroGrad(all);
    const f = objective();
    f.backward();
    const g = Float64Array.from((param.grad as Tensor).toArray());
    f.dispose();
    const x0 = Float64Array.from(param.toArray());
    const set = (x: Float64Array) => noGrad(() => param.copy_(tensor(x, { shape: [...param.shape], dtype: "f64" })));
    const num = numericalGradient((x) => {
      set(x);
      return noGrad(() => objective().item());
    }, x0);
    set(x0);
    assertClose(g, num, { rtol: 1e-5, atol: 1e-7 }, `${label} ∂/∂${name}`);
  }
}
