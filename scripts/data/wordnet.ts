/**
 * Derives data/wordnet/isa.tsv — a small "is a kind of" graph of common English nouns — from WordNet 3.0 as
 * Debian's `wordnet-base` package ships it (Princeton University; license and notice in
 * data/wordnet/README.md). Nothing is downloaded from anywhere but Debian's archive:
 *
 *   node --import tsx scripts/data/wordnet.ts [DICT_DIR]
 *
 * DICT_DIR defaults to /usr/share/wordnet when the package is installed; otherwise the script fetches the
 * package with `apt-get download wordnet-base` into a temporary folder and unpacks it with `dpkg -x`.
 *
 * Selection (deterministic): the noun synsets of three of WordNet's lexicographer files — animals (05), foods
 * (13) and plants (20) — named by their first lemma when it is 3–9 lowercase letters, whose first hypernym is
 * named the same way, plus their hypernym chains up to 3 levels (any file). A name carried by more than one
 * selected synset is ambiguous and dropped (with it, the chains through it end there). One line per synset:
 * `name<TAB>parent name<TAB>lexicographer file`, sorted by name.
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FILES = new Set(["05", "13", "20"]);
const NAME = /^[a-z]{3,9}$/;

function dictDir(arg: string | undefined): string {
  if (arg) return arg;
  if (existsSync("/usr/share/wordnet/data.noun")) return "/usr/share/wordnet";
  const tmp = mkdtempSync(join(tmpdir(), "cohort-wordnet-"));
  execFileSync("apt-get", ["download", "wordnet-base"], { cwd: tmp, stdio: "inherit" });
  const deb = readdirSync(tmp).find((f) => f.startsWith("wordnet-base") && f.endsWith(".deb"));
  if (!deb) throw new Error("apt-get download wordnet-base produced no .deb");
  execFileSync("dpkg", ["-x", join(tmp, deb), join(tmp, "x")]);
  return join(tmp, "x/usr/share/wordnet");
}

const dir = dictDir(process.argv[2]);
// data.noun: offset lex_filenum ss_type w_cnt(hex) [word lex_id]… p_cnt [ptr offset pos src/tgt]… | gloss
const firstLemma = new Map<string, string>();
const hypernym = new Map<string, string>();
for (const line of readFileSync(join(dir, "data.noun"), "latin1").split("\n")) {
  if (line.startsWith(" ") || line.trim() === "") continue;
  const f = line.split(" | ")[0]?.split(" ") as string[];
  const off = f[0] as string;
  const wCnt = Number.parseInt(f[3] as string, 16);
  firstLemma.set(off, (f[4] as string).toLowerCase());
  let i = 4 + 2 * wCnt;
  const pCnt = Number(f[i]);
  i++;
  for (let p = 0; p < pCnt; p++, i += 4) if (f[i] === "@" && !hypernym.has(off)) hypernym.set(off, f[i + 1] as string);
}
const lexFile = new Map<string, string>();
for (const line of readFileSync(join(dir, "data.noun"), "latin1").split("\n"))
  if (!line.startsWith(" ") && line.trim() !== "") lexFile.set(line.slice(0, 8), line.split(" ")[1] as string);
const named = (off: string | undefined): off is string => off !== undefined && NAME.test(firstLemma.get(off) ?? "");
const selected = new Set<string>();
for (const [off, file] of lexFile) {
  if (!FILES.has(file) || !named(off) || !named(hypernym.get(off))) continue;
  let x: string | undefined = off;
  for (let d = 0; d < 4 && named(x) && named(hypernym.get(x)); d++) {
    selected.add(x);
    x = hypernym.get(x);
  }
}
const names = new Map<string, number>();
for (const off of selected)
  names.set(firstLemma.get(off) as string, (names.get(firstLemma.get(off) as string) ?? 0) + 1);
const rows: string[] = [];
for (const off of selected) {
  const name = firstLemma.get(off) as string;
  const parent = firstLemma.get(hypernym.get(off) as string) as string;
  if ((names.get(name) as number) > 1 || name === parent) continue;
  rows.push(`${name}\t${parent}\t${lexFile.get(off)}`);
}
const lines = rows.sort().join("\n");
const out = "data/wordnet/isa.tsv";
writeFileSync(`${out}.tmp`, `${lines}\n`);
renameSync(`${out}.tmp`, out);
console.log(`wrote ${out}: ${rows.length} synsets`);
