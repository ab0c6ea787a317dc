/**
 * Writes the role-conditioned reasoning chains models/arithmetic-roles was fine-tuned on (MultiRole-R1's data
 * pipeline for 1–3 digit addition and subtraction, src/task/role-chains.ts): generate candidate chains per
 * problem, verify them, keep the diverse ones. Deterministic: a rerun writes the same bytes.
 *
 *   node --import tsx examples/multirole/make-data.ts [out-dir]   # default examples/multirole
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeRoleChainData, type RoleChainLine } from "../../src/task/role-chains.js";

const out = process.argv[2] ?? join("examples", "multirole");
mkdirSync(out, { recursive: true });
const data = makeRoleChainData({ task: { ops: { add: 1, sub: 1 }, digits: [1, 3] }, problems: 6000, evalProblems: 200 });
const write = (file: string, lines: RoleChainLine[]) =>
  writeFileSync(join(out, file), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
write("role-chains.jsonl", data.train);
write("role-chains-eval.jsonl", data.eval);
for (const [split, s] of Object.entries(data.stats)) {
  console.log(
    `${split}: ${s.problems} problems, ${s.generated} chains generated, ${s.droppedWrong} dropped as wrong, ` +
      `${s.droppedNotDiverse} as not diverse, ${s.droppedRepeat} as repeats; ${s.kept} lines ` +
      `(${s.byRoleCount[2]} with 2 roles, ${s.byRoleCount[3]} with 3); ${s.emptyProblems} problems without a line`,
  );
}
