// Used as a library, Cohort computes on every available core (libtorch alone may start with one), or on
// OMP_NUM_THREADS when it is set; an explicit setNumThreads wins.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const LIB = pathToFileURL(resolve("src/index.ts")).href;

/** The libtorch thread count a fresh process reports after importing the library (and running `then`). */
function threadsOf(env: Record<string, string | undefined>, then = ""): number {
  const { OMP_NUM_THREADS: _, ...rest } = process.env;
  const code = `const { t } = await import(${JSON.stringify(LIB)}); ${then} console.log(t.getNumThreads());`;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    env: { ...rest, ...env },
    encoding: "utf8",
  });
  return Number(out.trim().split("\n").at(-1));
}

test("library default: every available core", () => {
  assert.equal(threadsOf({}), availableParallelism());
});

test("OMP_NUM_THREADS, when set, is respected", () => {
  assert.equal(threadsOf({ OMP_NUM_THREADS: "1" }), 1);
  assert.equal(threadsOf({ OMP_NUM_THREADS: "3" }), 3);
});

test("an explicit setNumThreads overrides the default", () => {
  assert.equal(threadsOf({}, "t.setNumThreads(1);"), 1);
});
