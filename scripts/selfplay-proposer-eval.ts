// The proposer numbers of a self-play model (models/wordnet-selfplay-tiny/PRETRAIN.md): valid and asked-hop rates of
// its proposals on 200 proposer tasks, greedy and sampled.  node --import tsx scripts/selfplay-proposer-eval.ts <model dir>
import { createEnv } from "../src/env/registry.js";
import { EpisodeRoller } from "../src/env/roller.js";
import { checkProposal, drawProposerTask, type SelfPlayFactory } from "../src/env/wordnet-selfplay.js";
import { readModelDir } from "../src/io/hf.js";
import { CausalLM } from "../src/model/llama.js";
import { LocalSampler } from "../src/model/sampler.js";
import { Rng } from "../src/task/rng.js";
import { tokenizerFromFiles } from "../src/tokenizer/index.js";

const dir = process.argv[2] as string;
const d = readModelDir(dir);
const tok = tokenizerFromFiles(d.tokenizer!.json, d.tokenizer!.config);
const model = CausalLM.fromHF(d.config, d.tensors);
const f = createEnv("wordnet", { hops: [1, 2], topK: 1, selfPlay: {} }) as SelfPlayFactory;
const roller = new EpisodeRoller(f, tok, { template: "text" });
const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
const rng = Rng.fromSeed(12345n);
const tasks = Array.from({ length: 200 }, () => drawProposerTask(rng, [1, 2], f.trainSeeds));
for (const T of [0, 1]) {
  const eps = roller.roll(
    sampler,
    tasks,
    tasks.map((_, i) => i),
    { temperature: T, stopTokenIds: [tok.eosId] },
  );
  const cs = eps.map((e, i) =>
    checkProposal(e.steps[0]?.action ?? "", tasks[i]!.hops, { maxHops: 2, evalFraction: f.evalFraction }),
  );
  const valid = cs.filter((c) => c.valid).length / cs.length;
  const match = cs.filter((c) => c.valid && c.matches).length / cs.length;
  const reasons: Record<string, number> = {};
  for (const c of cs) reasons[c.reason] = (reasons[c.reason] ?? 0) + 1;
  console.log(
    `T=${T}: valid ${(100 * valid).toFixed(1)}%, valid with the hop count asked ${(100 * match).toFixed(1)}%`,
    JSON.stringify(reasons),
  );
}
