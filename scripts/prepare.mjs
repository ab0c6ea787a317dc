#!/usr/bin/env node
// The package's prepare step (npm runs it for `npm pack`, a git install and a checkout used by npx): compiles the
// TypeScript into dist/ unless dist/index.js is already newer than every file under src/.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const index = join(root, "dist", "index.js");
if (existsSync(index) && statSync(index).mtimeMs >= newest(join(root, "src"))) {
  console.log("cohort-grpo: dist/ is up to date");
  process.exit(0);
}
console.log("cohort-grpo: compiling the TypeScript into dist/");
const r = spawnSync("tsc", ["-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
  shell: process.platform === "win32",
});
if (r.error) console.error(`cohort-grpo: could not run tsc (a devDependency): ${r.error.message}`);
process.exit(r.status ?? 1);
