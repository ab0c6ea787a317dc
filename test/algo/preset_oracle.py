"""A float64 PyTorch re-derivation of each preset's training step (reward → advantage → filters → loss →
gradient), written from ALGORITHMS.md §0, §A, §B, §C and §D alone. test/algo/preset-oracle.test.ts compares
Cohort's `computeStepLoss` against it. Run with /usr/bin/python3 (Debian's torch).

stdin:  a JSON list of cases, each
          {"id", "preset", "params": {...},
           "rewards": [K][N], "group": [N], "lengths"?: [N], "meanLogprobs"?: [N],
           "mask": [N][T] (0/1, right padding), "lp", "lpOld", "lpRef"?, "entropy"?: [N][T], "tokenIds"?: [N][T]}
stdout: a JSON object id → {"loss": float, "grad": [N][T] (dLoss/dℓ), "keep": [N],
          "advantages": [N] or [N][T] or null, "advantageLevel": "sequence" | "token" | null}
        or id → {"error": traceback}.

Letters: N completions, T completion columns, K reward functions, G completions of one group.
The hyperparameters of each preset are the defaults of its ALGORITHMS.md entry; run-specific values
(L_max, reward weights, β of KL-in-reward) come from "params".
"""

import json
import sys
import traceback

import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

EPS = 1e-6  # §0 convention 2: default epsilon of std denominators
LOG_RATIO_CLAMP = 20.0  # §0 convention 4: ℓ − ℓ_old clamped to [−20, 20] before exp
SEQ_LOG_RATIO_CLAMP = 10.0  # §0 convention 4: GSPO log-ratio ≤ 10


class Batch:
    def __init__(self, c):
        f = lambda k: torch.tensor(c[k], dtype=torch.float64)  # noqa: E731
        self.params = c.get("params") or {}
        self.rewards = f("rewards")  # [K, N]
        self.group = [int(g) for g in c["group"]]  # [N]
        self.mask = f("mask")  # [N, T]
        self.lp = f("lp").requires_grad_(True)  # [N, T] ℓ
        self.lp_old = f("lpOld")  # [N, T] ℓ^old
        self.lp_ref = f("lpRef") if c.get("lpRef") is not None else None
        self.entropy = f("entropy") if c.get("entropy") is not None else None
        self.token_ids = c.get("tokenIds")
        self.lengths = c.get("lengths")
        self.mean_lp = c.get("meanLogprobs")
        self.N, self.T = self.mask.shape
        self.n_valid = self.mask.sum(1)  # [N] |o_i|

    def right_padded(self):
        """Valid tokens are 0 .. |o_i|−1 (needed where positions are counted from either end)."""
        for i in range(self.N):
            n = int(self.n_valid[i])
            assert torch.all(self.mask[i, :n] == 1) and torch.all(self.mask[i, n:] == 0), "mask is not right-padded"

    def groups(self):
        """§A.6 Grouping: by group id, never by adjacency. Index lists in order of first appearance."""
        out = {}
        for i, g in enumerate(self.group):
            out.setdefault(g, []).append(i)
        return list(out.values())


# ---- reward combination and shaping (§C RewardCombiner / RewardShaper) ----------------------------------


def combine_sum(b, weights=None):
    """§C.1 RewardCombiner default: weighted sum Σ_k w_k r^(k)_i (w_k = 1 unless configured)."""
    K = b.rewards.shape[0]
    w = torch.tensor(weights if weights is not None else [1.0] * K)
    return (w[:, None] * b.rewards).sum(0)


def combine_wco(b):
    """§B.29 WCO: R = min_k R_k."""
    return b.rewards.min(0).values


def combine_mean(b):
    """§B.29 MEAN: R = mean_k R_k."""
    return b.rewards.mean(0)


def combine_uwo(b, lam):
    """§B.29 UWO: R = mean_k R_k − λ·Var_k(R_k), population variance over the K models."""
    mean = b.rewards.mean(0)
    var = ((b.rewards - mean) ** 2).mean(0)
    return mean - lam * var


def k1_old_ref(b):
    """§A.4 / §B.5 KL in the reward: k1 on π_old, ℓ^old − ℓ^ref per valid token (no gradient). [N, T]"""
    return (b.lp_old - b.lp_ref) * b.mask


def reward_kl_sequence(b, r, beta):
    """§A.4 "KL in reward" for a sequence-level estimator: the token rewards r_{i,t} − β·k1_{i,t} summed over
    the completion (verl token_level_rewards.sum(-1)): r_i − β Σ_t m k1."""
    return r - beta * k1_old_ref(b).sum(1)


def shape_overlong(b, r, max_length, cache_length, factor):
    """§B.2 item 4 (D.6): r_i ← r_i + factor·R_len(|o_i|)."""
    out = r.clone()
    for i in range(b.N):
        L = b.lengths[i]
        if L <= max_length - cache_length:
            pen = 0.0
        elif L <= max_length:
            pen = ((max_length - cache_length) - L) / cache_length
        else:
            pen = -1.0
        out[i] = r[i] + factor * pen
    return out


def shape_unlikeliness(b, r, beta_rank):
    """§B.18 (D.11): u_i = mean_t ℓ^old_{i,t}; rank_i = position of u_i in ascending order within the group
    (stable sort); r'_i = r_i·(1 − β_rank·rank_i/G)."""
    u = (b.lp_old * b.mask).sum(1) / b.n_valid
    out = r.clone()
    for idx in b.groups():
        G = len(idx)
        order = sorted(range(G), key=lambda j: float(u[idx[j]]))  # Python's sort is stable
        for rank, j in enumerate(order):
            i = idx[j]
            out[i] = r[i] * (1 - beta_rank * rank / G)
    return out


# ---- advantage estimators (§A.2, §B) -----------------------------------------------------------------


def mean_std(x):
    """Mean and unbiased (Bessel) std, §0 convention 1."""
    m = x.mean()
    s = torch.sqrt(((x - m) ** 2).sum() / (x.numel() - 1)) if x.numel() > 1 else torch.tensor(0.0)
    return m, s


def adv_grpo(b, r, eps=EPS):
    """§A.2: A_i = (r_i − mean_g)/(std_g + eps), unbiased std; groups of one → 0 (§A.6)."""
    A = torch.zeros(b.N)
    for idx in b.groups():
        if len(idx) == 1:
            continue
        m, s = mean_std(r[idx])
        if s + eps > 0:  # §0 convention 5: an all-equal group is exactly 0, also with eps = 0
            A[idx] = (r[idx] - m) / (s + eps)
    return A


def adv_dr_grpo(b, r):
    """§B.1: A_i = r_i − mean_g."""
    A = torch.zeros(b.N)
    for idx in b.groups():
        A[idx] = r[idx] - r[idx].mean()
    return A


def adv_rloo(b, r):
    """§B.5 RLOO: A_i = r_i − mean_{j≠i} r_j = G/(G−1)·(r_i − mean_g); group of one: A = r."""
    A = torch.zeros(b.N)
    for idx in b.groups():
        G = len(idx)
        A[idx] = r[idx] if G == 1 else (r[idx] - r[idx].mean()) * G / (G - 1)
    return A


def whiten_tokens(b, x):
    """§B.5 batch token whitening: (x − μ_tok)/(σ_tok + 1e-8), μ/σ the masked mean and unbiased std over every
    valid token of the batch; masked positions → 0."""
    m = b.mask
    n = m.sum()
    mu = (x * m).sum() / n
    var = (((x - mu) ** 2) * m).sum() / (n - 1)
    return (x - mu) / (torch.sqrt(var) + 1e-8) * m


def adv_reinforce_pp(b, r, beta, gamma=1.0):
    """§B.5 REINFORCE++: token rewards = outcome reward at the last valid token minus β·k1 per token (§A.4 KL in
    reward), discounted return-to-go R_{i,t} = Σ_{t'≥t} γ^{t'−t} r_{i,t'}, then batch token whitening."""
    tr = -beta * k1_old_ref(b)
    for i in range(b.N):
        last = int(b.mask[i].nonzero().max())
        tr[i, last] += r[i]
    R = torch.zeros(b.N, b.T)
    run = torch.zeros(b.N)
    for t in range(b.T - 1, -1, -1):
        run = tr[:, t] + gamma * run
        R[:, t] = run
    return whiten_tokens(b, R * b.mask)


def adv_reinforce_pp_baseline(b, r, beta):
    """§B.5 REINFORCE++-baseline: sequence reward with the KL summed in (§A.4), A_i = r_i − mean_g broadcast to
    the tokens, then batch token whitening."""
    s = reward_kl_sequence(b, r, beta)
    A = adv_dr_grpo(b, s)
    return whiten_tokens(b, A[:, None] * b.mask)


def beta_pdf(p, a, c):
    """§B.6 Beta_pdf(p; α, β) = p^(α−1)(1−p)^(β−1)Γ(α+β)/(Γ(α)Γ(β))."""
    p = torch.tensor(float(p))
    a = torch.tensor(float(a))
    c = torch.tensor(float(c))
    log_norm = torch.lgamma(a + c) - torch.lgamma(a) - torch.lgamma(c)
    return torch.pow(p, a - 1) * torch.pow(1 - p, c - 1) * torch.exp(log_norm)


def adv_bnpo(b, r):
    """§B.6 (D.8): r̃ = r (r_min 0, r_max 1); p_q group mean; m, v = mean and unbiased variance of {p_q};
    k = m(1−m)/v − 1; α = max(1 + km/3, 1), β = max(1 + k(1−m)/3, 1); A_i = (r̃_i − p_q)/Beta_pdf(p_q),
    1/pdf clamped to [0, 1e6]; v = 0 → α = β = 1."""
    gs = b.groups()
    p = torch.stack([r[idx].mean() if len(idx) > 1 else torch.tensor(0.0) for idx in gs])
    if len(gs) == 1:
        m, v = 0.0, 1.0
    else:
        m = float(p.mean())
        v = float(((p - p.mean()) ** 2).sum() / (len(gs) - 1))
    if v == 0:
        alpha = beta = 1.0
    else:
        k = m * (1 - m) / v - 1
        alpha = max(1 + k * m / 3, 1.0)
        beta = max(1 + k * (1 - m) / 3, 1.0)
    A = torch.zeros(b.N)
    for q, idx in enumerate(gs):
        inv = torch.clamp(1 / beta_pdf(float(p[q]), alpha, beta), 0, 1e6)
        A[idx] = (r[idx] - p[q]) * inv
    return A


def adv_gdpo(b, weights, eps=EPS):
    """§B.7 (D.9): per group and reward function ŕ^(k) = (r^(k) − mean_g)/(std_g + eps); s_i = Σ_k w_k ŕ^(k)_i;
    A = (s − mean_batch(s))/(std_batch(s) + eps) over all completions of the batch."""
    K = b.rewards.shape[0]
    w = weights if weights is not None else [1.0] * K
    s = torch.zeros(b.N)
    for k in range(K):
        s = s + w[k] * adv_grpo(b, b.rewards[k], eps)
    m, sd = mean_std(s)
    return (s - m) / (sd + eps)


def adv_dgpo(b, r):
    """§B.10 item 1 (D.10, code form with eps 1e-4): A_i = G·(r_i − mean_g)/(Σ_j |r_j − mean_g| + 1e-4)."""
    A = torch.zeros(b.N)
    for idx in b.groups():
        G = len(idx)
        d = r[idx] - r[idx].mean()
        A[idx] = G * d / (d.abs().sum() + 1e-4)
    return A


# ---- reweighters and filters (§C AdvantageReweighter / SampleFilter / TokenFilter) ----------------------


def zero_std_groups(b, r):
    """Indices of groups whose rewards are all equal (std_g = 0)."""
    return [idx for idx in b.groups() if bool(torch.all(r[idx] == r[idx][0]))]


def filter_zero_std(b, r):
    """§B.2 item 2: groups whose rewards are all equal are dropped (keep = 0)."""
    keep = torch.ones(b.N)
    for idx in zero_std_groups(b, r):
        keep[idx] = 0
    return keep


def reweight_dgpo_dqw(b, A, temperature):
    """§B.10 item 2 (D.10): over the V groups with non-zero std, w_q = V·softmax_q(−acc_q/T) with acc_q the mean
    of the main (first) reward of group q (acc_q = 0 with non-zero std → 1); zero-std groups keep w = 1."""
    r_main = b.rewards[0]
    r_all = combine_sum(b)
    varying = [idx for idx in b.groups() if not bool(torch.all(r_all[idx] == r_all[idx][0]))]
    V = len(varying)
    if V == 0:
        return A
    acc = torch.stack([r_main[idx].mean() for idx in varying])
    acc = torch.where(acc == 0, torch.ones_like(acc), acc)
    w = V * torch.softmax(-acc / temperature, 0)
    out = A.clone()
    for q, idx in enumerate(varying):
        out[idx] = A[idx] * w[q]
    return out


def gtpo_conflict_weights(b, A, W):
    """§B.9 item 1: per group, positive set A > 0 and negative set A < 0 (A before the entropy shift). Position t
    of o_i is a forward conflict if o_{i,t} occurs at position t in ≥ 1 positive and ≥ 1 negative completion and
    every earlier position of o_i is a conflict; backward conflicts are the same with positions counted from the
    end. δ = 1 (no conflict), W (conflict, A_i > 0), 0 (conflict, A_i < 0); δ_{i,t} = δ_fwd·δ_bwd. [N, T]"""
    b.right_padded()
    tok = b.token_ids
    n = [int(x) for x in b.n_valid]
    delta = torch.ones(b.N, b.T)
    for idx in b.groups():
        pos = [j for j in idx if A[j] > 0]
        neg = [j for j in idx if A[j] < 0]

        def occurs(js, i, t, from_end):
            for j in js:
                if from_end:
                    if t < n[j] and tok[j][n[j] - 1 - t] == tok[i][n[i] - 1 - t]:
                        return True
                elif t < n[j] and tok[j][t] == tok[i][t]:
                    return True
            return False

        for i in idx:
            assert A[i] != 0 or not (pos and neg), "GTPO case with A_i = 0 in a mixed group (δ undefined)"
            wt = W if A[i] > 0 else 0.0
            run = True
            for t in range(n[i]):  # forward, cumulative product
                run = run and occurs(pos, i, t, False) and occurs(neg, i, t, False)
                if run:
                    delta[i, t] *= wt
            run = True
            for k in range(n[i]):  # backward, positions from the end
                run = run and occurs(pos, i, k, True) and occurs(neg, i, k, True)
                if run:
                    delta[i, n[i] - 1 - k] *= wt
    return delta


def reweight_gtpo_entropy(b, A, threshold, scale):
    """§B.9 item 2: H_i = mean over valid tokens of the entropy; H_i > threshold → A_i = 0, else A_i − scale·H_i."""
    H = (b.entropy * b.mask).sum(1) / b.n_valid
    return torch.where(H > threshold, torch.zeros_like(A), A - scale * H)


# ---- ratio, gates, regularizers, aggregation (§A.3–A.5, §B) ----------------------------------------------


def token_ratio(b):
    """§0 / §A.3: ρ = exp(ℓ − ℓ^old), log-ratio clamped to [−20, 20]."""
    return torch.exp(torch.clamp(b.lp - b.lp_old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))


def seq_log_ratio(b):
    """§B.3: log s_i = (1/|o_i|) Σ_t m (ℓ − ℓ^old), clamped ≤ 10 (§0 convention 4). [N, 1]"""
    lr = ((b.lp - b.lp_old) * b.mask).sum(1) / b.n_valid
    return torch.clamp(lr, max=SEQ_LOG_RATIO_CLAMP)[:, None]


def gate_clip(ratio, A, low, high):
    """§A.3: L = −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)A)."""
    return -torch.minimum(ratio * A, torch.clamp(ratio, 1 - low, 1 + high) * A)


def gate_sapo(ratio, A, tau_pos=1.0, tau_neg=1.05):
    """§B.4 (D.12): L = −(4/τ)σ(τ(ρ − 1))·A, τ = τ_pos if A > 0 else τ_neg."""
    tau = torch.where(A > 0, torch.full_like(A, tau_pos), torch.full_like(A, tau_neg))
    return -(4 / tau) * torch.sigmoid(tau * (ratio - 1)) * A


def kl_k3(b):
    """§A.4 (D.4): k3 = exp(Δ) − Δ − 1, Δ = ℓ^ref − ℓ clamped to [−20, 20], k3 clamped to [−10, 10]."""
    d = torch.clamp(b.lp_ref - b.lp, -20, 20)
    return torch.clamp(torch.exp(d) - d - 1, -10, 10)


def aggregate(b, L, mode, keep, max_length=None):
    """§A.5 (D.7) over the kept sequences (m' = m·keep); fully masked sequences leave the sequence count."""
    m = b.mask * keep[:, None]
    if mode == "token-mean":
        return (L * m).sum() / m.sum()
    per_seq_tokens = m.sum(1)
    seqs = per_seq_tokens > 0
    n_seq = int(seqs.sum())
    if mode == "seq-mean-token-mean":
        per_seq = (L * m).sum(1)[seqs] / per_seq_tokens[seqs]
        return per_seq.sum() / n_seq
    if mode == "seq-mean-token-sum-norm":
        return (L * m).sum() / (n_seq * max_length)
    raise ValueError(mode)


def llds_term(b, A_tok, lam, gate="action"):
    """§B.12 (D.15): d = ℓ^old − ℓ; preserving set P = m·1[A ≥ 0]; A-gate g = 1[Σ_{action} d > 0] over maximal
    runs of P = 1 (R-gate: over the response's P tokens); λ·Σ m g max(0, d)/Σ m, the gate a constant."""
    d = b.lp_old - b.lp
    dv = d.detach()
    P = b.mask * (A_tok >= 0)
    g = torch.zeros(b.N, b.T)
    for i in range(b.N):
        if gate == "response":
            if float((P[i] * dv[i]).sum()) > 0:
                g[i] = P[i]
            continue
        t = 0
        while t < b.T:
            if P[i, t] == 1:
                s = t
                while t < b.T and P[i, t] == 1:
                    t += 1
                if float(dv[i, s:t].sum()) > 0:
                    g[i, s:t] = 1
            else:
                t += 1
    return lam * (b.mask * g * torch.clamp(d, min=0)).sum() / b.mask.sum()


def finish(b, loss, adv, keep, level):
    loss.backward()
    if adv is not None and level == "token":
        adv = adv * b.mask
    return {
        "loss": float(loss),
        "grad": b.lp.grad.tolist(),
        "keep": [int(k) for k in keep],
        "advantages": None if adv is None else adv.detach().tolist(),
        "advantageLevel": level if adv is not None else None,
    }


def clipped_step(b, A, low, high, mode, kl_beta=0.0, keep=None, max_length=None):
    """§A.3 token-level clipped surrogate (+ β·k3 of §A.4 when kl_beta > 0), aggregated per §A.5."""
    keep = torch.ones(b.N) if keep is None else keep
    A_tok = A[:, None] if A.dim() == 1 else A
    L = gate_clip(token_ratio(b), A_tok, low, high)
    if kl_beta > 0:
        L = L + kl_beta * kl_k3(b)
    return aggregate(b, L, mode, keep, max_length), keep


# ---- presets -----------------------------------------------------------------------------------------

PRESETS = {}


def preset(name):
    def reg(fn):
        PRESETS[name] = fn
        return fn

    return reg


def outcome(b):
    """§C.1 RewardCombiner (weighted sum), then §A.4/§B.5 KL in the reward when params.rewardKlBeta is set."""
    r = combine_sum(b, b.params.get("weights"))
    if b.params.get("rewardKlBeta") is not None:
        r = reward_kl_sequence(b, r, b.params["rewardKlBeta"])
    return r


@preset("grpo")
def p_grpo(b):
    """§A.2 advantages, §A.3 clip ε = 0.2, §A.4 k3 with β = 0.04 in the loss (β = 0 with KL in the reward,
    §A.4 / §B.5), §A.5 seq-mean-token-mean."""
    A = adv_grpo(b, outcome(b))
    beta = 0.0 if b.params.get("rewardKlBeta") is not None else 0.04
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean", kl_beta=beta)
    return finish(b, loss, A, keep, "sequence")


@preset("dr_grpo")
def p_dr_grpo(b):
    """§B.1: A = r − mean_g, clip ε = 0.2 (§A.3), no KL, Σ m L/(N·L_max) (§A.5 seq-mean-token-sum-norm)."""
    A = adv_dr_grpo(b, outcome(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-sum-norm", max_length=b.params["maxLength"])
    return finish(b, loss, A, keep, "sequence")


@preset("dapo")
def p_dapo(b):
    """§B.2 without the rollout refill: overlong shaping (item 4), GRPO advantages (§A.2), zero-std groups
    dropped (item 2), clip-higher 0.2/0.28 (item 1), token-mean over the kept tokens (item 3, §A.5), no KL."""
    p = b.params
    r = shape_overlong(b, outcome(b), p["maxLength"], p["cacheLength"], p.get("factor", 1.0))
    A = adv_grpo(b, r)
    keep = filter_zero_std(b, r)
    loss, keep = clipped_step(b, A, 0.2, 0.28, "token-mean", keep=keep)
    return finish(b, loss, A, keep, "sequence")


@preset("gspo")
def p_gspo(b):
    """§B.3 (D.5): s_i = exp(mean_t(ℓ − ℓ^old)), L_i = −min(s_i A_i, clip(s_i, 1 − 3e-4, 1 + 4e-4) A_i), mean over
    sequences (seq-mean-token-mean of a per-sequence loss), no KL; GRPO advantages (§A.2)."""
    A = adv_grpo(b, outcome(b))
    s = torch.exp(seq_log_ratio(b))  # [N, 1]
    L = gate_clip(s, A[:, None], 3e-4, 4e-4).expand(b.N, b.T)
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "seq-mean-token-mean", keep), A, keep, "sequence")


@preset("gspo_token")
def p_gspo_token(b):
    """§B.3 GSPO-token: log s_{i,t} = sg(log s_i) + ℓ_{i,t} − sg(ℓ_{i,t}), clip 3e-4/4e-4, seq-mean-token-mean."""
    A = adv_grpo(b, outcome(b))
    log_s = seq_log_ratio(b).detach() + b.lp - b.lp.detach()
    L = gate_clip(torch.exp(log_s), A[:, None], 3e-4, 4e-4)
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "seq-mean-token-mean", keep), A, keep, "sequence")


@preset("sapo")
def p_sapo(b):
    """§B.4: soft gate (4/τ)σ(τ(ρ − 1)) on the token ratio, τ_pos 1.0, τ_neg 1.05, seq-mean-token-mean; GRPO
    advantages (§A.2)."""
    A = adv_grpo(b, outcome(b))
    L = gate_sapo(token_ratio(b), A[:, None])
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "seq-mean-token-mean", keep), A, keep, "sequence")


@preset("rloo")
def p_rloo(b):
    """§B.5 RLOO advantages, §A.3 clip ε = 0.2, no KL, seq-mean-token-mean."""
    A = adv_rloo(b, outcome(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean")
    return finish(b, loss, A, keep, "sequence")


@preset("reinforce_pp")
def p_reinforce_pp(b):
    """§B.5 REINFORCE++ with KL in the reward (k1, β from params, preset 0.001; §A.4), token whitening, clip
    ε = 0.2 (§A.3), token-mean (§A.5)."""
    A = adv_reinforce_pp(b, combine_sum(b, b.params.get("weights")), b.params.get("rewardKlBeta", 0.001))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "token-mean")
    return finish(b, loss, A, keep, "token")


@preset("reinforce_pp_baseline")
def p_reinforce_pp_baseline(b):
    """§B.5 REINFORCE++-baseline with KL in the reward (k1, β = 0.001, §A.4), clip ε = 0.2, token-mean."""
    A = adv_reinforce_pp_baseline(b, combine_sum(b, b.params.get("weights")), b.params.get("rewardKlBeta", 0.001))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "token-mean")
    return finish(b, loss, A, keep, "token")


@preset("bnpo")
def p_bnpo(b):
    """§B.6 BNPO advantages (binary rewards), §A.3 clip ε = 0.2, no KL, seq-mean-token-mean."""
    A = adv_bnpo(b, outcome(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean")
    return finish(b, loss, A, keep, "sequence")


@preset("gdpo")
def p_gdpo(b):
    """§B.7 decoupled normalisation with the configured weights, §A.3 clip ε = 0.2, no KL, seq-mean-token-mean."""
    A = adv_gdpo(b, b.params.get("weights"))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean")
    return finish(b, loss, A, keep, "sequence")


@preset("dgpo")
def p_dgpo(b):
    """§B.10: MAD-normalised advantages (item 1, eps 1e-4) and question weights V·softmax(−acc/2) (item 2); the
    token-count rescale of item 3 is not applied (seq-mean-token-mean is not a token-count aggregator); clip
    ε = 0.2 (§A.3), no KL."""
    A = reweight_dgpo_dqw(b, adv_dgpo(b, outcome(b)), 2.0)
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean")
    return finish(b, loss, A, keep, "sequence")


@preset("gtpo")
def p_gtpo(b):
    """§B.9: conflict weights δ (item 1, W = 2) from the GRPO advantages (§A.2) before the entropy shift; entropy
    filter/shift (item 2, threshold 0.7, λ_H 0.1); loss −ρ A_i δ_{i,t} with ρ = exp(ℓ − sg(ℓ)) (item 3, no
    clip, no KL), mean over each completion's own valid tokens, then over completions (no division by the
    conflict count)."""
    A0 = adv_grpo(b, outcome(b))
    delta = gtpo_conflict_weights(b, A0, 2.0)
    A = reweight_gtpo_entropy(b, A0, 0.7, 0.1)
    rho = torch.exp(b.lp - b.lp.detach())
    L = -rho * A[:, None] * delta
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "seq-mean-token-mean", keep), A, keep, "sequence")


def disco_step(b, form, tau=10.0, beta=1e3, delta=1e-4):
    """§B.11 (D.13): score s_i = (1/|o_i|) Σ_t ℓ (logL); per question with ≥ 1 positive (r > 0.5) and ≥ 1 negative,
    J_q = mean_pos s − τ log mean_neg exp(s/τ) (DisCO) or mean_pos s − mean_neg s (DisCO-b); J averaged over all
    questions of the batch (the others add 0 and count); KL_old = token mean over the whole batch of ρ − 1 − log ρ;
    loss = −J + sg(max(β(KL_old − δ), 0))·KL_old. No sample filter (§C.2): every row is kept."""
    r = outcome(b)
    s = (b.lp * b.mask).sum(1) / b.n_valid
    gs = b.groups()
    J = torch.tensor(0.0)
    for idx in gs:
        pos = [i for i in idx if r[i] > 0.5]
        neg = [i for i in idx if r[i] <= 0.5]
        if not pos or not neg:
            continue
        sp, sn = s[pos], s[neg]
        if form == "b":
            J = J + sp.mean() - sn.mean()
        else:
            J = J + sp.mean() - tau * torch.log(torch.exp(sn / tau).mean())
    J = J / len(gs)
    log_rho = torch.clamp(b.lp - b.lp_old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    kl = ((torch.exp(log_rho) - 1 - log_rho) * b.mask).sum() / b.mask.sum()
    coef = torch.clamp(beta * (kl.detach() - delta), min=0)
    loss = -J + coef * kl
    return finish(b, loss, None, torch.ones(b.N), None)


@preset("disco")
def p_disco(b):
    """§B.11 DisCO, logL score, log-mean-exp over negatives with τ = 10, β = 1e3, δ = 1e-4."""
    return disco_step(b, "lse")


@preset("disco_b")
def p_disco_b(b):
    """§B.11 DisCO-b, logL score, β = 1e3, δ = 1e-4."""
    return disco_step(b, "b")


@preset("llds")
def p_llds(b):
    """§B.12: GRPO advantages (§A.2), clip ε = 0.2 (§A.3), k3 β = 0.001 (§A.4), token-mean (§A.5), plus the LLDS
    term with λ = 0.2 and the A-gate."""
    A = adv_grpo(b, outcome(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "token-mean", kl_beta=0.001)
    loss = loss + llds_term(b, A[:, None].expand(b.N, b.T), 0.2, "action")
    return finish(b, loss, A, keep, "sequence")


@preset("unlikeliness")
def p_unlikeliness(b):
    """§B.18 rank shaping (β_rank = 0.25) before GRPO normalisation (§A.2), clip ε = 0.2, no KL,
    seq-mean-token-mean."""
    A = adv_grpo(b, shape_unlikeliness(b, outcome(b), 0.25))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean")
    return finish(b, loss, A, keep, "sequence")


def reinforce_tokens(b, A):
    """§B.33 REINFORCE: −A·ℓ per token."""
    return -A[:, None] * b.lp


@preset("opmd")
def p_opmd(b):
    """§B.33 OPMD: L = −A·ℓ + c(ℓ − ℓ^old)², c = 0.1, A = r − mean_g, token-mean."""
    A = adv_dr_grpo(b, outcome(b))
    L = reinforce_tokens(b, A) + 0.1 * (b.lp - b.lp_old) ** 2
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "token-mean", keep), A, keep, "sequence")


@preset("asymre")
def p_asymre(b):
    """§B.33 AsymRE: L = −A·ℓ − c·ℓ, c = 0.1, A = r − mean_g, token-mean."""
    A = adv_dr_grpo(b, outcome(b))
    L = reinforce_tokens(b, A) - 0.1 * b.lp
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "token-mean", keep), A, keep, "sequence")


@preset("rec")
def p_rec(b):
    """§B.33 REC: A = r − mean_g weighted by sg(ρ) (importance_sampling); one-side mask
    (A ≥ 0 ∧ ρ ≤ 1 + 0.2) ∨ (A ≤ 0 ∧ ρ ≥ 1 − 0.2); L = −A·sg(ρ)·ℓ·mask, token-mean over the valid tokens."""
    A = adv_dr_grpo(b, outcome(b))
    rho = token_ratio(b).detach()
    At = A[:, None].expand(b.N, b.T)
    keep_tok = ((At >= 0) & (rho <= 1.2)) | ((At <= 0) & (rho >= 0.8))
    L = -At * rho * b.lp * keep_tok
    keep = torch.ones(b.N)
    return finish(b, aggregate(b, L, "token-mean", keep), A, keep, "sequence")


@preset("rm_ensemble_wco")
def p_rm_ensemble_wco(b):
    """§B.29 WCO (min over the reward models), GRPO (§A.2–A.3), k3 β = 0.01 (§A.4), seq-mean-token-mean."""
    A = adv_grpo(b, combine_wco(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean", kl_beta=0.01)
    return finish(b, loss, A, keep, "sequence")


@preset("rm_ensemble_uwo")
def p_rm_ensemble_uwo(b):
    """§B.29 UWO (mean − 0.5·population variance), GRPO (§A.2–A.3), k3 β = 0.01 (§A.4), seq-mean-token-mean."""
    A = adv_grpo(b, combine_uwo(b, 0.5))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean", kl_beta=0.01)
    return finish(b, loss, A, keep, "sequence")


@preset("rm_ensemble_mean")
def p_rm_ensemble_mean(b):
    """§B.29 MEAN (mean over the reward models), GRPO (§A.2–A.3), k3 β = 0.01 (§A.4), seq-mean-token-mean."""
    A = adv_grpo(b, combine_mean(b))
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean", kl_beta=0.01)
    return finish(b, loss, A, keep, "sequence")


@preset("safe_gdpo")
def p_safe_gdpo(b):
    """§B.7 decoupled normalisation of (task, safety) with weights [1, 2], §A.3 clip ε = 0.2, §A.4 k3 with
    β = 0.01, seq-mean-token-mean."""
    A = adv_gdpo(b, [1.0, 2.0])
    loss, keep = clipped_step(b, A, 0.2, 0.2, "seq-mean-token-mean", kl_beta=0.01)
    return finish(b, loss, A, keep, "sequence")


@preset("dcpo")
def p_dcpo(b):
    """§B.31 (D.16): H = −(masked token mean of ℓ) of the previous update (0 before the first; params.lpWarm is the
    ℓ of that update); T = 1.2 if H ≤ 0.5 else 0.8; ρ^T = exp(log-softmax(logits_old/T)[o] − ℓ^old); b_i = 1[r_i > 0.05];
    p = mean_i b_i; α = min(|0.5 − H|, 0.1)/p, α ← α/(1 + α) (p = 0 → α = 0); A' = (1 − α)A_i + α b_i ρ^T on GRPO
    advantages (§A.2); clip ε = 0.2 (§A.3), token-mean (§A.5), no KL."""
    p = b.params
    if p.get("lpWarm") is not None:
        warm = torch.tensor(p["lpWarm"])
        H = float(-(warm * b.mask).sum() / b.mask.sum())
    else:
        H = 0.0
    temp = 1.2 if H <= 0.5 else 0.8
    logits = torch.tensor(p["oldLogits"])  # [N, T, V]
    idx = torch.tensor(b.token_ids, dtype=torch.long)[:, :, None]
    lp_old_t = torch.log_softmax(logits / temp, -1).gather(-1, idx).squeeze(-1)
    rho_t = torch.exp(lp_old_t - b.lp_old)
    r = outcome(b)
    correct = (r > 0.05).to(torch.float64)
    frac = float(correct.mean())
    if frac == 0:
        alpha = 0.0
    else:
        alpha = min(abs(0.5 - H), 0.1) / frac
        alpha = alpha / (1 + alpha)
    A = (1 - alpha) * adv_grpo(b, r)[:, None] + alpha * correct[:, None] * rho_t
    loss, keep = clipped_step(b, A, 0.2, 0.2, "token-mean")
    return finish(b, loss, A, keep, "token")


def main():
    cases = json.load(sys.stdin)
    out = {}
    for c in cases:
        try:
            out[c["id"]] = PRESETS[c["preset"]](Batch(c))
        except Exception:
            out[c["id"]] = {"error": traceback.format_exc(limit=4)}
    json.dump(out, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
