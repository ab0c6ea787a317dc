"""PyTorch peer of bench/scale.ts: the Qwen2-shaped model read from the safetensors file Cohort wrote.

Run with /usr/bin/python3 (Debian's torch). OMP_NUM_THREADS is set by the caller; torch's intra-op threads
come from --threads.

usage:
  scale_peer.py step DIR --steps S --warmup W --threads N
      one LoRA GRPO micro-step (forward + backward of the policy loss; LoRA on q and v from the file,
      scale alpha/r = 2) on DIR/step.json; prints {"ms", "times", "loss", "gradNorm", "rss_gb"}
  scale_peer.py decode DIR --batch B --new-tokens T --reps R --threads N
      greedy KV-cache decoding (an HF-like manual loop: preallocated cache, fused q/k/v and gate/up) of the
      first B prompts of DIR/prompts.json; prints {"tok_s", "tokens", "rss_gb"}

Weights are read tensor by tensor straight into torch storage (no second copy), so the peak RSS is the model's.
"""

import json
import resource
import sys
import time

import torch
import torch.nn.functional as F
from llama_ops import read_safetensors, rms_norm, rotate_half


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def rss_gb():
    # VmHWM: ru_maxrss carries the parent's high-water mark across fork and exec on Linux
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


class Model:
    def __init__(self, cfg, W, lora=False):
        self.D = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or self.D // self.H
        self.eps = cfg["rms_norm_eps"]
        self.emb = W["model.embed_tokens.weight"]
        self.head = self.emb if cfg["tie_word_embeddings"] else W["lm_head.weight"]
        self.norm = W["model.norm.weight"]
        self.lora_params = []
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            L = dict(
                n1=W[p + "input_layernorm.weight"],
                o=W[p + "self_attn.o_proj.weight"],
                n2=W[p + "post_attention_layernorm.weight"],
                gu=torch.cat([W.pop(p + "mlp.gate_proj.weight"), W.pop(p + "mlp.up_proj.weight")], 0),
                down=W[p + "mlp.down_proj.weight"],
            )
            if lora:  # separate q, k, v (LoRA on q and v)
                for n in "qkv":
                    L[n] = W[p + f"self_attn.{n}_proj.weight"]
                    L["b" + n] = W[p + f"self_attn.{n}_proj.bias"]
                for n in "qv":
                    a = W[p + f"self_attn.{n}_proj.lora_A.weight"].requires_grad_()
                    b = W[p + f"self_attn.{n}_proj.lora_B.weight"].requires_grad_()
                    L["A" + n], L["B" + n] = a, b
                    self.lora_params += [a, b]
            else:
                L["qkv"] = torch.cat([W.pop(p + f"self_attn.{n}_proj.weight") for n in "qkv"], 0)
                L["bqkv"] = torch.cat([W.pop(p + f"self_attn.{n}_proj.bias") for n in "qkv"], 0)
            self.layers.append(L)
        hd = self.hd
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.arange(cfg["max_position_embeddings"]).float()[:, None] * inv[None]
        emb = torch.cat((freqs, freqs), -1)
        self.cos, self.sin = emb.cos(), emb.sin()

    # ---- training forward (LoRA) ------------------------------------------------------------------------
    def lora_proj(self, x, L, n, scale=2.0):
        y = F.linear(x, L[n], L["b" + n])
        if "A" + n in L:
            y = y + scale * F.linear(F.linear(x, L["A" + n]), L["B" + n])
        return y

    def hidden(self, ids):
        B, T = ids.shape
        H, Hkv, hd = self.H, self.Hkv, self.hd
        x = self.emb[ids]
        cos, sin = self.cos[:T][None, None], self.sin[:T][None, None]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        g = H // Hkv
        for L in self.layers:
            h = rms_norm(x, L["n1"], self.eps)
            q = self.lora_proj(h, L, "q").view(B, T, H, hd).transpose(1, 2)
            k = self.lora_proj(h, L, "k").view(B, T, Hkv, hd).transpose(1, 2)
            v = self.lora_proj(h, L, "v").view(B, T, Hkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(g, 1)
            v = v.repeat_interleave(g, 1)
            att = (q @ k.transpose(-2, -1)) / hd**0.5
            att = att.masked_fill(~causal, float("-inf"))
            o = (torch.softmax(att, -1) @ v).transpose(1, 2).reshape(B, T, H * hd)
            x = x + o @ L["o"].T
            h = rms_norm(x, L["n2"], self.eps)
            gate, up = (h @ L["gu"].T).chunk(2, -1)
            x = x + (F.silu(gate) * up) @ L["down"].T
        return rms_norm(x, self.norm, self.eps)

    # ---- decoding ---------------------------------------------------------------------------------------
    def step(self, x, pos, caches):
        B, T, _ = x.shape
        H, Hkv, hd = self.H, self.Hkv, self.hd
        cos = self.cos[pos : pos + T][None, None]
        sin = self.sin[pos : pos + T][None, None]
        g = H // Hkv
        for L, (kc, vc) in zip(self.layers, caches):
            h = rms_norm(x, L["n1"], self.eps)
            qkv = F.linear(h, L["qkv"], L["bqkv"])
            q, k, v = qkv.split([H * hd, Hkv * hd, Hkv * hd], -1)
            q = q.view(B, T, H, hd).transpose(1, 2)
            k = k.view(B, T, Hkv, hd).transpose(1, 2)
            v = v.view(B, T, Hkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            kc[:, :, pos : pos + T] = k
            vc[:, :, pos : pos + T] = v
            S = pos + T
            ks = kc[:, :, :S].repeat_interleave(g, 1)
            vs = vc[:, :, :S].repeat_interleave(g, 1)
            att = (q @ ks.transpose(-2, -1)) / hd**0.5
            if T > 1:
                causal = torch.ones(T, S, dtype=torch.bool).tril(S - T)
                att = att.masked_fill(~causal, float("-inf"))
            o = (torch.softmax(att, -1) @ vs).transpose(1, 2).reshape(B, T, H * hd)
            x = x + o @ L["o"].T
            h = rms_norm(x, L["n2"], self.eps)
            gate, up = (h @ L["gu"].T).chunk(2, -1)
            x = x + (F.silu(gate) * up) @ L["down"].T
        return rms_norm(x[:, -1], self.norm, self.eps) @ self.head.T  # [B, V]


def generate(model, prompts, new_tokens):
    B, P = prompts.shape
    S = P + new_tokens
    caches = [(torch.zeros(B, model.Hkv, S, model.hd), torch.zeros(B, model.Hkv, S, model.hd)) for _ in model.layers]
    logits = model.step(model.emb[prompts], 0, caches)
    out = []
    for t in range(new_tokens):
        tok = logits.argmax(-1, keepdim=True)  # greedy
        out.append(tok)
        if t == new_tokens - 1:
            break
        logits = model.step(model.emb[tok], P + t, caches)
    return torch.cat(out, 1)


def main():
    mode, d = sys.argv[1], sys.argv[2]
    torch.set_num_threads(int(arg("--threads", 2)))
    cfg = json.load(open(f"{d}/config.json"))
    W = read_safetensors(f"{d}/model.safetensors")
    if mode == "step":
        model = Model(cfg, W, lora=True)
        del W
        data = json.load(open(f"{d}/step.json"))
        ids = torch.tensor(data["ids"])
        adv = torch.tensor(data["advantages"])
        steps, warmup = int(arg("--steps", 2)), int(arg("--warmup", 1))
        C = int(arg("--completion", 128))
        T = ids.shape[1]
        P = T - C
        times, last = [], None
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            for p in model.lora_params:
                p.grad = None
            h = model.hidden(ids)[:, P - 1 : T - 1]  # the positions that predict the completion
            logits = h @ model.head.T
            lp = torch.log_softmax(logits, -1).gather(-1, ids[:, P:, None])[..., 0]  # [N, C]
            ratio = torch.exp(lp - lp.detach())
            a = adv[:, None]
            surr = torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
            loss = -(surr.mean(-1)).mean()  # seq-mean-token-mean
            loss.backward()
            gn = sum(p.grad.pow(2).sum().item() for p in model.lora_params) ** 0.5
            dt = (time.perf_counter() - t0) * 1000
            if i >= warmup:
                times.append(dt)
            last = {"loss": loss.item(), "gradNorm": gn}
            del h, logits, lp, ratio, surr, loss
        times_sorted = sorted(times)
        m = len(times_sorted) // 2
        med = times_sorted[m] if len(times_sorted) % 2 else (times_sorted[m - 1] + times_sorted[m]) / 2
        print(json.dumps({"ms": med, "times": times, **last, "rss_gb": rss_gb()}))
    else:
        model = Model(cfg, W)
        del W
        B = int(arg("--batch"))
        new_tokens = int(arg("--new-tokens", 32))
        reps = int(arg("--reps", 3))
        prompts = torch.tensor(json.load(open(f"{d}/prompts.json"))[:B])
        with torch.inference_mode():
            generate(model, prompts, 4)  # warm-up
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                toks = generate(model, prompts, new_tokens)
                times.append(time.perf_counter() - t0)
        times.sort()
        m = len(times) // 2
        med = times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2
        print(json.dumps({"tok_s": B * new_tokens / med, "tokens": toks.tolist(), "rss_gb": rss_gb()}))


main()
