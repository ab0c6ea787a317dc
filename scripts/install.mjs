#!/usr/bin/env node
// The package's install step (npm runs it when the package is installed, from a tarball, a git URL or a
// checkout): builds the native addon with node-gyp against libtorch (scripts/libtorch.mjs finds it), unless
// build/Release/cohort_native.node is already newer than every source it is built from (a checkout set up by
// `bash setup.sh`).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(root, "build", "Release", "cohort_native.node");
const sources = [
  join(root, "binding.gyp"),
  join(root, "scripts", "libtorch.mjs"),
  ...readdirSync(join(root, "native"))
    .filter((f) => /\.(cc|h)$/.test(f))
    .map((f) => join(root, "native", f)),
];
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
if (existsSync(addon) && statSync(addon).mtimeMs >= newest) {
  console.log("cohort-grpo: the native addon is up to date (build/Release/cohort_native.node)");
  process.exit(0);
}
console.log("cohort-grpo: building the native addon against libtorch with node-gyp (a few minutes)");
const r = spawnSync("node-gyp", ["rebuild", "-j", String(Math.max(1, availableParallelism()))], {
  cwd: root,
  stdio: "inherit",
  shell: process.platform === "win32",
});
if (r.error) console.error(`cohort-grpo: could not run node-gyp: ${r.error.message}`);
process.exit(r.status ?? 1);
