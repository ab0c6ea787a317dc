/**
 * Diagnostics that explain themselves: each prints once, when it first triggers, with what it means and
 * what to try. Their memory (running statistics, what was already said) is checkpointed.
 * @module
 */

export interface DiagnosticsOptions {
  /** Mean token entropy below this is a collapse (nats). */
  entropyFloor?: number;
  /** A grad norm above this many times the running median is a spike. */
  spikeFactor?: number;
  /** Falls of the mean log-prob of correct completions, in nats below its best, that count as a decline. */
  likelihoodDrop?: number;
}

export class Diagnostics {
  #said = new Set<string>();
  #gradNorms: number[] = [];
  #bestCorrectLp = Number.NEGATIVE_INFINITY;
  #declineSteps = 0;
  readonly #opts: Required<DiagnosticsOptions>;

  constructor(
    readonly log: (line: string) => void,
    opts: DiagnosticsOptions = {},
  ) {
    this.#opts = { entropyFloor: 0.05, spikeFactor: 10, likelihoodDrop: 0.5, ...opts };
  }

  #once(key: string, step: number, message: string): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    this.log(`diagnostic at step ${step}: ${message}`);
  }

  zeroStd(step: number, fraction: number): void {
    if (fraction >= 1) {
      this.#once(
        "zero-std",
        step,
        "every group's rewards are identical, so every advantage is 0: no learning signal. Enable dynamic " +
          "sampling (DAPO), raise train.groupSize, or use easier (or harder) data.",
      );
    }
  }

  entropy(step: number, meanEntropy: number): void {
    if (meanEntropy > 0 && meanEntropy < this.#opts.entropyFloor) {
      this.#once(
        "entropy",
        step,
        `mean token entropy fell to ${meanEntropy.toFixed(4)} nats: the policy is collapsing to near-deterministic ` +
          "outputs and exploration stops. Try clip-higher (algo.gate.high 0.28), an entropy bonus, or a lower learning rate.",
      );
    }
  }

  /** Mean token log-prob of correct completions; a sustained fall is the LLD death spiral (arXiv 2512.04220). */
  correctLikelihood(step: number, meanLp: number): void {
    if (meanLp > this.#bestCorrectLp) {
      this.#bestCorrectLp = meanLp;
      this.#declineSteps = 0;
      return;
    }
    if (meanLp < this.#bestCorrectLp - this.#opts.likelihoodDrop) this.#declineSteps++;
    else this.#declineSteps = 0;
    if (this.#declineSteps >= 3) {
      this.#once(
        "lld",
        step,
        `the likelihood of correct answers keeps falling (mean token log-prob ${meanLp.toFixed(3)}, best ` +
          `${this.#bestCorrectLp.toFixed(3)}): the lazy-likelihood-displacement spiral that precedes collapse. ` +
          'Add the LLDS regularizer (preset "llds"), lower the learning rate, or add a KL term.',
      );
    }
  }

  gradNorm(step: number, norm: number): void {
    const hist = this.#gradNorms;
    if (hist.length >= 5) {
      const sorted = [...hist].sort((a, b) => a - b);
      const median = sorted[sorted.length >> 1] as number;
      if (median > 0 && norm > this.#opts.spikeFactor * median) {
        this.#once(
          "grad-spike",
          step,
          `gradient norm ${norm.toExponential(2)} is over ${this.#opts.spikeFactor}x its running median ` +
            `${median.toExponential(2)}. Gradient clipping (train.maxGradNorm) bounds the update; if spikes recur, lower the learning rate.`,
        );
      }
    }
    hist.push(norm);
    if (hist.length > 50) hist.shift();
  }

  nonFinite(step: number, what: string): void {
    this.log(
      `step ${step}: the ${what} is NaN or infinite; the update was skipped and the last good weights kept. ` +
        "If this repeats, lower the learning rate or check the reward functions.",
    );
  }

  /** The built-in verifier reads no held-out completion while a reward function scores them (evaluate.ts). */
  verifierNeverMatches(step: number, message: string): void {
    this.#once("verifier-never-matches", step, message);
  }

  rewardFailures(step: number, count: number, first: { reward: string; kind: string; message: string }): void {
    this.#once(
      "reward-failures",
      step,
      `${count} reward call(s) failed (first: "${first.reward}", ${first.kind}: ${first.message}). Failed calls ` +
        "score as the reward's fallback (null = not applicable); every failure is logged with its sample in reward_failures.jsonl.",
    );
  }

  state(): Record<string, unknown> {
    return {
      said: [...this.#said],
      gradNorms: this.#gradNorms,
      bestCorrectLp: Number.isFinite(this.#bestCorrectLp) ? this.#bestCorrectLp : null,
      declineSteps: this.#declineSteps,
    };
  }

  load(s: Record<string, unknown>): void {
    this.#said = new Set((s.said as string[] | undefined) ?? []);
    this.#gradNorms = [...((s.gradNorms as number[] | undefined) ?? [])];
    this.#bestCorrectLp = typeof s.bestCorrectLp === "number" ? s.bestCorrectLp : Number.NEGATIVE_INFINITY;
    this.#declineSteps = Number(s.declineSteps ?? 0);
  }
}
