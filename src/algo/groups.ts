/**
 * Group helpers shared by the design space's components: rows grouped by any id (never by adjacency),
 * composite keys (group × agent / step / state), statistics over a group's valid (non-NaN) values.
 * @module
 */
import { CohortError } from "../errors.js";
import type { Device, Tensor } from "../tensor/index.js";

export type StdKind = "unbiased" | "population";

/** Members (row indices) of each group, keyed by any id; groups keep the order of first appearance. */
export function groupMembers(keys: ArrayLike<number | string>): number[][] {
  const byKey = new Map<number | string, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as number | string;
    let m = byKey.get(k);
    if (m === undefined) {
      m = [];
      byKey.set(k, m);
    }
    m.push(i);
  }
  return [...byKey.values()];
}

/** Composite group keys: the group id combined with a second id (agent, step index, …). */
export function compositeKeys(a: Int32Array, b: ArrayLike<number | string>, what: string): string[] {
  if (b.length !== a.length) {
    throw new CohortError(`${what} has length ${b.length} but groupIndex has ${a.length}; give one value per row`);
  }
  const out: string[] = new Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = `${a[i]}\u0000${b[i]}`;
  return out;
}

/** Mean and std of the non-NaN entries of `values` at `idx`. n = number of valid entries. */
export function validStats(
  values: ArrayLike<number>,
  idx: readonly number[],
  std: StdKind = "unbiased",
): { n: number; mean: number; std: number } {
  let n = 0;
  let s = 0;
  for (const i of idx) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    n++;
    s += v;
  }
  if (n === 0) return { n, mean: Number.NaN, std: Number.NaN };
  const mean = s / n;
  let ss = 0;
  for (const i of idx) {
    const v = values[i]!;
    if (!Number.isNaN(v)) ss += (v - mean) * (v - mean);
  }
  const dof = std === "unbiased" ? n - 1 : n;
  return { n, mean, std: dof > 0 ? Math.sqrt(ss / dof) : 0 };
}

/** The device of `t`, for host data that must meet it. */
export const devOf = (t: Tensor): Device => t.device;
