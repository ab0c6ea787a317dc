// The package installs into someone else's project under its own name (cohort-grpo; the npm name `cohort`
// belongs to an unrelated package): the packed tarball is installed into an empty project, which then imports the
// library and runs `cohort presets` / `cohort-grpo presets` from its node_modules/.bin. In a checkout,
// `npx cohort-grpo` and `npx cohort` run this package.
//
// The tarball holds dist/, which `bash setup.sh` (run before `npm test`) builds; it is rebuilt here when older
// than src/. The install runs with --ignore-scripts and the addon this checkout built is copied in: the install
// script would build the same addon with node-gyp (about 3 minutes on 2 cores), which setup.sh already does.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { tmpRunRoot } from "../train/helpers.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const npx = process.platform === "win32" ? "npx.cmd" : "npx";

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** dist/ as `npm pack` will take it: built from the current sources. */
function freshDist(): void {
  const index = resolve("dist/index.js");
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(resolve("src"))) return;
  execFileSync(npx, ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}

test("the packed tarball installs into an empty project, which imports the library and runs `presets`", () => {
  freshDist();
  const root = tmpRunRoot();
  const packed = JSON.parse(
    execFileSync(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", root], { encoding: "utf8" }),
  ) as { name: string; filename: string; files: { path: string }[] }[];
  const pkg = packed[0] as (typeof packed)[number];
  assert.equal(pkg.name, "cohort-grpo");
  const files = new Set(pkg.files.map((f) => f.path));
  for (const f of ["bin/cohort.js", "dist/index.js", "dist/cli/main.js", "dist/tensor/index.js", "binding.gyp"])
    assert.ok(files.has(f), `the tarball holds ${f}`);
  assert.ok(![...files].some((f) => f.startsWith("test/") || f.startsWith("src/")), "no tests or sources");

  const project = join(root, "my-project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-project", private: true, type: "module" }));
  execFileSync(
    npm,
    ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", join(root, pkg.filename)],
    { cwd: project, stdio: "pipe" },
  );
  const installed = join(project, "node_modules", "cohort-grpo");
  mkdirSync(join(installed, "build", "Release"), { recursive: true });
  copyFileSync(resolve("build/Release/cohort_native.node"), join(installed, "build", "Release", "cohort_native.node"));

  const env = { ...process.env, COHORT_SKIP_BLAS_CHECK: "1" };
  const lib = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { evaluateModel, loadTrainConfig, presets, sft, train } from "cohort-grpo";
       import { tensor } from "cohort-grpo/tensor";
       const fns = [evaluateModel, loadTrainConfig, sft, train].map((f) => typeof f).join(",");
       console.log(JSON.stringify({ presets: presets.presetNames(), fns, shape: tensor([[1, 2, 3]]).shape }));`,
    ],
    { cwd: project, encoding: "utf8", env },
  );
  assert.equal(lib.status, 0, lib.stderr);
  const out = JSON.parse(lib.stdout) as { presets: string[]; fns: string; shape: number[] };
  assert.ok(out.presets.includes("grpo") && out.presets.includes("dapo"));
  assert.equal(out.fns, "function,function,function,function");
  assert.deepEqual(out.shape, [1, 3]);
  for (const bin of ["cohort", "cohort-grpo"]) {
    const r = spawnSync(join(project, "node_modules", ".bin", bin), ["presets", "--json"], {
      cwd: project,
      encoding: "utf8",
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      (JSON.parse(r.stdout) as { name: string }[]).some((p) => p.name === "grpo"),
      bin,
    );
  }
});

test("in a checkout, `npx cohort-grpo` and `npx cohort` run this package", () => {
  freshDist();
  for (const name of ["cohort-grpo", "cohort"]) {
    const r = spawnSync(npx, ["--yes", name, "presets", "--json"], {
      encoding: "utf8",
      env: { ...process.env, COHORT_SKIP_BLAS_CHECK: "1" },
    });
    assert.equal(r.status, 0, `npx ${name}: ${r.stderr}`);
    assert.ok(
      (JSON.parse(r.stdout) as { name: string }[]).some((p) => p.name === "grpo"),
      name,
    );
  }
});
