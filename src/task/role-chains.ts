/**
 * Role-conditioned reasoning chains for arithmetic: the data pipeline of MultiRole-R1 (arXiv 2507.20187), made
 * for a verifiable task. The paper synthesises reasoning chains that take several role perspectives and fine-tunes
 * on them before GRPO with diversity rewards; on a task with a verifier, a chain is kept here only when it checks
 * out and its perspectives are diverse. The generator is a deterministic writer instead of an LLM, so the
 * pipeline's three stages are:
 *
 * | stage    | what it does (design choices, per problem of the arithmetic task's train split)                      |
 * |----------|--------------------------------------------------------------------------------------------------------|
 * | generate | `candidates` chains; each takes 1–3 of the roles below in a seeded order (the checker never first), a |
 * |          | seeded wording per role, and with probability `slip` one writer's mistake in a computing role (a     |
 * |          | dropped carry or borrow, a column off by one, an estimate corrected with the wrong sign) that the    |
 * |          | chain carries on to its answer, as a generator's errors would                                         |
 * | verify   | `verifyRoleChain`: the task's verifier says the `<answer>` is right, every role is a known one with   |
 * |          | a non-empty part, every equation `x±y…=z` in the chain holds, and every part states the answer (a    |
 * |          | computing role ends on it, the checker starts from it)                                                |
 * | select   | keep chains with at least `minRoles` distinct roles (perspective diversity) and distinct-2 of the     |
 * |          | whitespace tokens ≥ `minDistinct2` (lexical diversity), drop repeats, then draw `perProblem` of them  |
 * |          | (seeded), so the data mixes two- and three-role chains and GRPO's perspective reward has room          |
 *
 * The roles, each a correct and differently worded way to the answer:
 *
 * | role        | perspective                                  | e.g. 47+85= (answer 132)                             |
 * |-------------|----------------------------------------------|------------------------------------------------------|
 * | `teacher`   | decomposes the digits, column by column      | `ones 7+5=12 carry 1 tens 4+8+1=13 so 132`           |
 * | `checker`   | verifies the answer by the inverse operation | `check 132-85=47 ok`                                  |
 * | `estimator` | rounds to tens first, then corrects          | `round 50+90=140 then 140-3-5=132`                    |
 *
 * A chain is `<role>teacher</role> … <role>checker</role> … <answer>132</answer>`: the role tags are those the
 * `perspective` reward reads (reward/process.ts `roleTags`). Addition and non-negative subtraction only.
 *
 * Confidence: ABSTRACT. The abstract describes an unsupervised pipeline that synthesises reasoning chains with
 * diverse role perspectives; filtering them by the verifier and by diversity, the roles, their wordings, the slip
 * model, the verifier's rules and the thresholds are our design choices for a verifiable arithmetic task.
 * @module
 */
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
import { distinctN, roleTags } from "../reward/process.js";
import { type ArithmeticMeta, arithmeticOptions, arithmeticTask } from "./arithmetic.js";
import { Rng } from "./rng.js";
import type { Problem, Split } from "./types.js";

export const CHAIN_ROLES = ["teacher", "checker", "estimator"] as const;
export type ChainRole = (typeof CHAIN_ROLES)[number];

/** Number of wordings each role has (the `variant` of `writeRole`). */
export const ROLE_VARIANTS: Record<ChainRole, number> = { teacher: 3, checker: 3, estimator: 3 };

export const roleChainOptions = z.strictObject({
  task: arithmeticOptions
    .prefault({ ops: { add: 1, sub: 1 }, digits: [1, 3] })
    .meta({ description: "Options of the arithmetic task the problems come from (add and sub only)." }),
  problems: z
    .number()
    .int()
    .min(1)
    .default(6000)
    .meta({ description: "Training problems, each with at least one kept chain (duplicates skipped)." }),
  evalProblems: z
    .number()
    .int()
    .min(0)
    .default(200)
    .meta({ description: "Held-out problems (the task's eval split)." }),
  candidates: z.number().int().min(1).default(6).meta({ description: "Chains generated per problem." }),
  slip: z
    .number()
    .min(0)
    .lt(1)
    .default(0.2)
    .meta({ description: "Probability that a generated chain carries one writer's mistake." }),
  minRoles: z.number().int().min(1).max(3).default(2).meta({ description: "Distinct roles a kept chain needs." }),
  minDistinct2: z.number().min(0).max(1).default(0.6).meta({ description: "distinct-2 a kept chain needs." }),
  perProblem: z.number().int().min(1).default(1).meta({ description: "Kept chains drawn per problem (at most)." }),
  seed: z.number().int().min(0).default(0),
});
export type RoleChainOptions = z.input<typeof roleChainOptions>;

/** One written role part: its text (without the tag) and the result it arrives at (the checked value for the checker). */
export interface RolePart {
  role: ChainRole;
  text: string;
  result: bigint;
}

/** Writer's mistakes a computing role can make (`slip` of `writeRole`). */
export type Slip = "carry" | "column" | "sign";

const PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands"];
const digitsOf = (x: bigint): number[] => [...x.toString()].reverse().map(Number);
const signed = (x: bigint): string => (x >= 0n ? `+${x}` : `${x}`);

/** The teacher's column-wise steps and result; `slip` drops a carry/borrow or puts one column off by one. */
function teacher(meta: ArithmeticMeta, variant: number, slip: Slip | null, rng: Rng): RolePart {
  const a = BigInt(meta.a);
  const b = BigInt(meta.b);
  const da = digitsOf(a);
  const db = digitsOf(b);
  const cols = Math.max(da.length, db.length);
  // the column where the slip happens: a dropped carry/borrow needs one to drop
  const wrongCol = slip === "column" ? rng.int(0, cols - 1) : -1;
  const steps: string[] = [];
  const notes: (string | null)[] = [];
  const out: number[] = [];
  let carry = 0;
  let carryDropped = false;
  for (let i = 0; i < cols; i++) {
    let use = carry;
    if (slip === "carry" && carry > 0 && !carryDropped) {
      use = 0;
      carryDropped = true;
    }
    let value: number;
    let eq: string;
    if (meta.op === "add") {
      const terms = [da[i], db[i], use > 0 ? use : undefined].filter((t): t is number => t !== undefined);
      value = terms.reduce((x, y) => x + y, 0);
      eq = `${terms.join("+")}=`;
      carry = value >= 10 ? 1 : 0;
      out.push(value % 10);
    } else {
      const top = da[i] as number;
      const sub = db[i] ?? 0;
      const lend = top - use < sub ? 10 : 0;
      value = top + lend - sub - use;
      eq = `${top + lend}-${sub}${use > 0 ? "-1" : ""}=`;
      carry = lend > 0 ? 1 : 0;
      out.push(value);
    }
    const shown = i === wrongCol ? value + (value > 0 && rng.bool() ? -1 : 1) : value;
    if (i === wrongCol) {
      // the written (wrong) column value is what the writer carries on with
      if (meta.op === "add") out[i] = shown % 10;
      else out[i] = ((shown % 10) + 10) % 10;
    }
    steps.push(`${eq}${shown}`);
    notes.push(carry > 0 && i < cols - 1 ? (meta.op === "add" ? "carry 1" : "borrow 1") : null);
  }
  if (meta.op === "add" && carry > 0) out.push(1);
  const result = BigInt(
    out
      .slice()
      .reverse()
      .join("")
      .replace(/^0+(?=\d)/, ""),
  );
  let text: string;
  if (variant === 0)
    text = `${steps.map((s, i) => [PLACES[i], s, notes[i]].filter((x) => x !== null).join(" ")).join(" ")} so ${result}`;
  else if (variant === 1) text = `digits ${steps.join(", ")} makes ${result}`;
  else text = `right to left ${steps.join(" then ")} reads ${result}`;
  return { role: "teacher", text, result };
}

/** Round to the nearest ten (halves up). */
const roundTen = (x: bigint): bigint => ((x + 5n) / 10n) * 10n;

/** The estimator: round both operands to tens, operate, then correct by the rounding; `slip` flips a correction's sign. */
function estimator(meta: ArithmeticMeta, variant: number, slip: Slip | null, rng: Rng): RolePart {
  const a = BigInt(meta.a);
  const b = BigInt(meta.b);
  const ra = roundTen(a);
  const rb = roundTen(b);
  const sym = meta.op === "add" ? "+" : "-";
  const rough = meta.op === "add" ? ra + rb : ra - rb;
  const fixes = [a - ra, meta.op === "add" ? b - rb : rb - b];
  if (slip === "sign") {
    const nz = fixes.flatMap((f, i) => (f !== 0n ? [i] : []));
    if (nz.length > 0) {
      const i = nz[rng.int(0, nz.length - 1)] as number;
      fixes[i] = -(fixes[i] as bigint);
    }
  }
  const used = fixes.filter((f) => f !== 0n);
  const result = used.reduce((x, y) => x + y, rough);
  const corr = `${rough}${used.map(signed).join("")}=${result}`;
  const exact = used.length === 0;
  const word = ["round", "about", "estimate"][variant] as string;
  const fix = ["then", "fix", "correct"][variant] as string;
  return { role: "estimator", text: `${word} ${ra}${sym}${rb}=${rough} ${exact ? "exact" : `${fix} ${corr}`}`, result };
}

/** The checker: undoes the operation from the value `claim` (the chain's answer so far). */
function checker(meta: ArithmeticMeta, variant: number, claim: bigint): RolePart {
  const a = BigInt(meta.a);
  const b = BigInt(meta.b);
  const add = meta.op === "add";
  // addition is undone by subtracting one operand (the checker's third wording takes the other); subtraction by adding
  const other = add && variant === 2 ? a : b;
  const back = add ? claim - other : claim + b;
  const ok = back === (add ? (variant === 2 ? b : a) : a);
  const eq = `${claim}${add ? "-" : "+"}${other}=${back}`;
  const text =
    variant === 0
      ? `check ${eq} ${ok ? "ok" : "wrong"}`
      : variant === 1
        ? `undo ${eq} ${ok ? "same" : "differs"}`
        : `reverse ${eq} ${ok ? "fits" : "fails"}`;
  return { role: "checker", text, result: claim };
}

function metaOf(p: Problem): ArithmeticMeta {
  const m = p.meta as Partial<ArithmeticMeta>;
  if ((m.op !== "add" && m.op !== "sub") || typeof m.a !== "string" || typeof m.b !== "string")
    throw new CohortError(`role chains: problem ${p.id} is not an arithmetic add/sub problem (meta {op, a, b})`);
  if (m.op === "sub" && BigInt(m.a) < BigInt(m.b))
    throw new CohortError(`role chains: problem ${p.id} has a negative difference; role chains cover a ≥ b`);
  return m as ArithmeticMeta;
}

/**
 * One role part of a chain for `problem`. `claim` is the value the checker verifies (required for it);
 * `slip` makes a computing role write one mistake (a teacher drops a carry or misadds a column, an
 * estimator corrects with the wrong sign) that it carries on to its result.
 */
export function writeRole(
  problem: Problem,
  role: ChainRole,
  variant: number,
  opts: { claim?: bigint; slip?: Slip | null; rng?: Rng } = {},
): RolePart {
  const meta = metaOf(problem);
  if (!Number.isInteger(variant) || variant < 0 || variant >= ROLE_VARIANTS[role])
    throw new CohortError(`role chains: ${role} has wordings 0..${ROLE_VARIANTS[role] - 1}, got ${variant}`);
  const rng = opts.rng ?? Rng.fromSeed(0);
  if (role === "checker") {
    if (opts.claim === undefined) throw new CohortError("role chains: the checker needs a value to check (claim)");
    return checker(meta, variant, opts.claim);
  }
  return role === "teacher"
    ? teacher(meta, variant, opts.slip ?? null, rng)
    : estimator(meta, variant, opts.slip ?? null, rng);
}

/** Joins role parts into a completion: `<role>r</role> text …` then `<answer>v</answer>`. */
export function joinChain(parts: readonly RolePart[], answer: bigint): string {
  return `${parts.map((p) => `<role>${p.role}</role> ${p.text}`).join(" ")} <answer>${answer}</answer>`;
}

/** A plan for one candidate: the roles in order, a wording each, and the slip (role index and kind) if any. */
export interface ChainPlan {
  roles: ChainRole[];
  variants: number[];
  slip: { at: number; kind: Slip } | null;
}

/** Draws a candidate's plan: 1–3 distinct roles in a random order, the checker never first. */
export function drawPlan(rng: Rng, slipP: number): ChainPlan {
  const k = rng.int(1, 3);
  const order = rng.shuffled([...CHAIN_ROLES]);
  let roles = order.slice(0, k);
  if (roles[0] === "checker")
    roles = k === 1 ? [order[1] as ChainRole] : [roles[1] as ChainRole, "checker", ...roles.slice(2)];
  const variants = roles.map((r) => rng.int(0, ROLE_VARIANTS[r] - 1));
  let slip: ChainPlan["slip"] = null;
  if (rng.bool(slipP)) {
    const computing = roles.flatMap((r, i) => (r === "checker" ? [] : [i]));
    const at = computing[rng.int(0, computing.length - 1)] as number;
    const kind: Slip = roles[at] === "estimator" ? "sign" : rng.bool() ? "carry" : "column";
    slip = { at, kind };
  }
  return { roles, variants, slip };
}

/** Writes a planned chain: the answer is the first computing role's result; the checker checks it. */
export function writeChain(problem: Problem, plan: ChainPlan, rng: Rng): string {
  const parts: RolePart[] = [];
  let claim: bigint | undefined;
  plan.roles.forEach((role, i) => {
    const slip = plan.slip?.at === i ? plan.slip.kind : null;
    const part = writeRole(problem, role, plan.variants[i] as number, {
      ...(claim !== undefined ? { claim } : {}),
      slip,
      rng,
    });
    if (claim === undefined) claim = part.result;
    parts.push(part);
  });
  return joinChain(parts, claim as bigint);
}

export interface ChainVerdict {
  ok: boolean;
  reason?: string;
}

const EQUATION_RE = /(\d+(?:[+-]\d+)*)=(-?\d+)/g;

/** Left-to-right value of `12+3-4` (digits, + and − only). */
function evalTerms(expr: string): bigint {
  const toks = expr.match(/[+-]?\d+/g) ?? [];
  return toks.reduce((s, t) => s + BigInt(t), 0n);
}

/**
 * The pipeline's check of one chain (see the module doc): the answer is right, the roles are known with
 * non-empty parts, every equation holds, and every part states the answer.
 */
export function verifyRoleChain(problem: Problem, chain: string): ChainVerdict {
  const meta = metaOf(problem);
  const truth = meta.op === "add" ? BigInt(meta.a) + BigInt(meta.b) : BigInt(meta.a) - BigInt(meta.b);
  const task = arithmeticTask({ ops: { add: 1, sub: 1 } });
  const v = task.verify(problem as Problem<ArithmeticMeta>, chain);
  if (!v.correct) return { ok: false, reason: `answer: ${v.reason ?? "wrong"}` };
  const m = /^(.*) <answer>(-?\d+)<\/answer>$/s.exec(chain);
  if (m === null) return { ok: false, reason: "the chain must end with its one <answer>…</answer>" };
  const body = m[1] as string;
  const pieces = body.split(/<role>([^<]*)<\/role>/);
  if ((pieces[0] as string).trim() !== "") return { ok: false, reason: "text before the first role tag" };
  const roles = roleTags(body);
  if (roles.length === 0) return { ok: false, reason: "no role tags" };
  for (let i = 1; i < pieces.length; i += 2) {
    const role = (pieces[i] as string).trim().toLowerCase();
    const text = (pieces[i + 1] as string).trim();
    if (!(CHAIN_ROLES as readonly string[]).includes(role))
      return { ok: false, reason: `unknown role ${JSON.stringify(role)} (known: ${CHAIN_ROLES.join(", ")})` };
    if (text === "") return { ok: false, reason: `the ${role} part is empty` };
    for (const e of text.matchAll(EQUATION_RE))
      if (evalTerms(e[1] as string) !== BigInt(e[2] as string))
        return { ok: false, reason: `false equation ${e[0]} in the ${role} part` };
    const nums = text.match(/-?\d+/g) ?? [];
    const stated = role === "checker" ? nums[0] : nums.at(-1);
    if (stated === undefined || BigInt(stated) !== truth)
      return { ok: false, reason: `the ${role} part arrives at ${stated ?? "nothing"}, not ${truth}` };
  }
  return { ok: true };
}

/** One line of the data: the task's prompt and answer, the chain (the SFT target) and its roles. */
export interface RoleChainLine {
  prompt: string;
  answer: string;
  chain: string;
  roles: ChainRole[];
  op: "add" | "sub";
  a: string;
  b: string;
}

export interface RoleChainStats {
  problems: number;
  generated: number;
  droppedWrong: number;
  droppedNotDiverse: number;
  droppedRepeat: number;
  kept: number;
  /** Lines written by number of distinct roles (index 1..3). */
  byRoleCount: number[];
  /** Problems none of whose candidates survived (no line). */
  emptyProblems: number;
}

/** The stages for one problem: generate `candidates`, verify, select by diversity, draw `perProblem`. */
export function chainsFor(
  problem: Problem,
  o: z.output<typeof roleChainOptions>,
  rng: Rng,
  stats: RoleChainStats,
): RoleChainLine[] {
  const meta = metaOf(problem);
  const kept: string[] = [];
  for (let c = 0; c < o.candidates; c++) {
    const chain = writeChain(problem, drawPlan(rng, o.slip), rng);
    stats.generated++;
    if (!verifyRoleChain(problem, chain).ok) {
      stats.droppedWrong++;
      continue;
    }
    if (new Set(roleTags(chain)).size < o.minRoles || distinctN(chain, 2) < o.minDistinct2) {
      stats.droppedNotDiverse++;
      continue;
    }
    if (kept.includes(chain)) {
      stats.droppedRepeat++;
      continue;
    }
    kept.push(chain);
  }
  const chosen = rng.shuffled(kept).slice(0, o.perProblem);
  stats.problems++;
  if (chosen.length === 0) stats.emptyProblems++;
  return chosen.map((chain) => {
    const roles = roleTags(chain) as ChainRole[];
    stats.kept++;
    stats.byRoleCount[new Set(roles).size] = (stats.byRoleCount[new Set(roles).size] ?? 0) + 1;
    return {
      prompt: problem.prompt,
      answer: problem.answer as string,
      chain,
      roles,
      op: meta.op as "add" | "sub",
      a: meta.a,
      b: meta.b,
    };
  });
}

function newStats(): RoleChainStats {
  return {
    problems: 0,
    generated: 0,
    droppedWrong: 0,
    droppedNotDiverse: 0,
    droppedRepeat: 0,
    kept: 0,
    byRoleCount: [0, 0, 0, 0],
    emptyProblems: 0,
  };
}

/** Lines for `count` distinct problems of one split of the task (each prompt once). */
function splitLines(
  o: z.output<typeof roleChainOptions>,
  split: Split,
  count: number,
  seed: number,
): { lines: RoleChainLine[]; stats: RoleChainStats } {
  const task = arithmeticTask(o.task, "task");
  const problemRng = Rng.fromSeed(BigInt(seed) * 2n + (split === "eval" ? 1n : 0n));
  const chainRng = Rng.fromSeed(BigInt(seed) * 2n + (split === "eval" ? 1n : 0n) + 1000003n);
  const stats = newStats();
  const lines: RoleChainLine[] = [];
  const seen = new Set<string>();
  let misses = 0;
  while (stats.problems - stats.emptyProblems < count) {
    const p = task.sample(problemRng, split);
    if (seen.has(p.prompt)) {
      if (++misses > 100 * count + 10000)
        throw new CohortError(`role chains: the ${split} split has fewer than ${count} distinct problems`);
      continue;
    }
    seen.add(p.prompt);
    lines.push(...chainsFor(p, o, chainRng, stats));
  }
  return { lines, stats };
}

/** The whole pipeline: training lines (the task's train split) and held-out lines (its eval split). Deterministic. */
// arXiv 2507.20187 [ABSTRACT] (generate → verify → keep the diverse, as the abstract describes; every rule: design choice)
export function makeRoleChainData(options: RoleChainOptions = {}): {
  train: RoleChainLine[];
  eval: RoleChainLine[];
  stats: { train: RoleChainStats; eval: RoleChainStats };
} {
  const r = roleChainOptions.safeParse(options);
  if (!r.success)
    throw new ConfigError(
      r.error.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`).join("; "),
      "role chains",
    );
  const o = r.data;
  if ((o.task.ops.mul ?? 0) > 0)
    throw new ConfigError("role chains cover add and sub; set ops.mul to 0 (allowed ops: add, sub)", "task.ops");
  if (o.task.negative)
    throw new ConfigError("role chains cover a − b with a ≥ b; set negative: false", "task.negative");
  const train = splitLines(o, "train", o.problems, o.seed);
  const held = o.evalProblems > 0 ? splitLines(o, "eval", o.evalProblems, o.seed) : { lines: [], stats: newStats() };
  return { train: train.lines, eval: held.lines, stats: { train: train.stats, eval: held.stats } };
}
