"""PyTorch peer of bench/decode.ts: batched KV-cache sampling from the same Llama-style model.

Run with /usr/bin/python3 (Debian's torch). Thread variables (OPENBLAS_NUM_THREADS, OMP_*) are set by the
caller before start-up; torch's intra-op threads come from --threads.

usage: decode_peer.py DIR --threads N --new-tokens T [--device cuda]
  DIR holds config.json, model.safetensors, prompts.json ([[ids]] of equal length)
prints one JSON line: {"tok_s": …, "seconds": …, "cpu_seconds": …, "tokens": …, "threads": N, "mean_logprob": …}

The decoding loop is the fast one for CPU batch decoding (DESIGN.md §6): a preallocated cache
[B, Hkv, Smax, hd], single-token attention written elementwise (q·k summed over hd, no bmm), fused
q/k/v and gate/up projections, one multinomial over the batch and the log-prob of each drawn token.
"""

import json
import sys
import time

import torch
from llama_ops import read_safetensors, rms_norm, rotate_half


class Model:
    def __init__(self, cfg, W):
        self.cfg = cfg
        self.D = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim", self.D // self.H)
        self.eps = cfg["rms_norm_eps"]
        self.emb = W["model.embed_tokens.weight"]
        self.head = self.emb if cfg["tie_word_embeddings"] else W["lm_head.weight"]
        self.norm = W["model.norm.weight"]
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            self.layers.append(
                dict(
                    n1=W[p + "input_layernorm.weight"],
                    qkv=torch.cat([W[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], 0),
                    o=W[p + "self_attn.o_proj.weight"],
                    n2=W[p + "post_attention_layernorm.weight"],
                    gu=torch.cat([W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"]], 0),
                    down=W[p + "mlp.down_proj.weight"],
                )
            )
        hd = self.hd
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.arange(4096).float()[:, None] * inv[None]
        emb = torch.cat((freqs, freqs), -1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def to(self, dev):
        for k in ("emb", "head", "norm", "cos", "sin"):
            setattr(self, k, getattr(self, k).to(dev))
        self.layers = [{k: v.to(dev) for k, v in L.items()} for L in self.layers]
        return self

    def step(self, x, pos, caches, col):
        """x [B, T, D] at positions pos..pos+T-1 written into cache columns col..col+T-1."""
        B, T, _ = x.shape
        H, Hkv, hd = self.H, self.Hkv, self.hd
        cos = self.cos[pos : pos + T][None, None]
        sin = self.sin[pos : pos + T][None, None]
        for L, (kc, vc) in zip(self.layers, caches):
            h = rms_norm(x, L["n1"], self.eps)
            qkv = h @ L["qkv"].T
            q, k, v = qkv.split([H * hd, Hkv * hd, Hkv * hd], -1)
            q = q.view(B, T, H, hd).transpose(1, 2)
            k = k.view(B, T, Hkv, hd).transpose(1, 2)
            v = v.view(B, T, Hkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            kc[:, :, col : col + T] = k
            vc[:, :, col : col + T] = v
            S = col + T
            ks, vs = kc[:, :, :S], vc[:, :, :S]
            g = H // Hkv
            if T == 1:
                qg = q.view(B, Hkv, g, 1, hd)
                att = (qg * ks[:, :, None]).sum(-1) / hd**0.5  # [B, Hkv, g, S]
                att = torch.softmax(att, -1)
                o = (att[..., None] * vs[:, :, None]).sum(-2)  # [B, Hkv, g, hd]
                o = o.reshape(B, 1, H * hd)
            else:
                ks = ks.repeat_interleave(g, 1)
                vs = vs.repeat_interleave(g, 1)
                att = (q @ ks.transpose(-2, -1)) / hd**0.5
                causal = torch.ones(T, S, dtype=torch.bool, device=att.device).tril(S - T)
                att = att.masked_fill(causal.logical_not(), float("-inf"))
                o = (torch.softmax(att, -1) @ vs).transpose(1, 2).reshape(B, T, H * hd)
            x = x + o @ L["o"].T
            h = rms_norm(x, L["n2"], self.eps)
            gate, up = (h @ L["gu"].T).chunk(2, -1)
            x = x + (torch.nn.functional.silu(gate) * up) @ L["down"].T
        return rms_norm(x[:, -1], self.norm, self.eps) @ self.head.T  # [B, V]


def generate(model, prompts, new_tokens, seed):
    B, P = prompts.shape
    S = P + new_tokens
    dev = prompts.device
    caches = [
        (torch.zeros(B, model.Hkv, S, model.hd, device=dev), torch.zeros(B, model.Hkv, S, model.hd, device=dev))
        for _ in model.layers
    ]
    gen = torch.Generator(device=dev).manual_seed(seed)
    logits = model.step(model.emb[prompts], 0, caches, 0)
    out, lps = [], []
    for t in range(new_tokens):
        logp = torch.log_softmax(logits, -1)
        tok = torch.multinomial(logp.exp(), 1, generator=gen)  # [B, 1]
        out.append(tok)
        lps.append(logp.gather(-1, tok))
        if t == new_tokens - 1:
            break
        logits = model.step(model.emb[tok], P + t, caches, P + t)
    return torch.cat(out, 1), torch.cat(lps, 1)


def main():
    d = sys.argv[1]
    threads = int(sys.argv[sys.argv.index("--threads") + 1])
    new_tokens = int(sys.argv[sys.argv.index("--new-tokens") + 1])
    dev = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    torch.set_num_threads(threads)
    cfg = json.load(open(f"{d}/config.json"))
    model = Model(cfg, read_safetensors(f"{d}/model.safetensors")).to(dev)
    prompts = torch.tensor(json.load(open(f"{d}/prompts.json"))).to(dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        generate(model, prompts[:8], 16, 0)  # warm-up
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        toks, lps = generate(model, prompts, new_tokens, 1)
        sync()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = toks.numel()
    print(
        json.dumps(
            {"tok_s": n / dt, "seconds": dt, "cpu_seconds": cpu, "tokens": n, "threads": threads, "mean_logprob": lps.mean().item()}
        )
    )


main()
