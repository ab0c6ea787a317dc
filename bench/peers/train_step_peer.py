"""PyTorch peer of bench/train-step.ts: the same small GPT, op for op, one fwd+bwd+AdamW step timed.
Prints one JSON line: {"peer_ms": median, "losses": [...], "threads": ...}. Run with /usr/bin/python3."""
import json, sys, time, statistics
import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
L, C, H, M, V, T, B = (cfg[k] for k in ("layers", "dModel", "heads", "mlp", "vocab", "seq", "batch"))
torch.manual_seed(cfg["seed"])
dev = torch.device(cfg.get("device", "cpu"))
specs = [("wte", (V, C)), ("wpe", (T, C))]
for l in range(L):
    specs += [(f"h{l}.ln1", (C,)), (f"h{l}.qkv", (3 * C, C)), (f"h{l}.proj", (C, C)), (f"h{l}.ln2", (C,)),
              (f"h{l}.fc", (M, C)), (f"h{l}.fc2", (C, M))]
specs += [("lnf", (C,)), ("head", (V, C))]
P = {}
for name, shape in specs:
    t = torch.randn(shape) * (0 if len(shape) == 1 else 0.02) + (1 if len(shape) == 1 else 0)
    P[name] = t.to(dev).requires_grad_()

def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

def sdpa(q, k, v):
    scores = (q @ k.transpose(-2, -1)) / (q.size(-1) ** 0.5)
    mask = torch.ones(T, T, dtype=torch.bool, device=dev).tril()
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v

def loss_fn(ids):
    inp, tgt = ids[:, :T], ids[:, 1:T + 1]
    x = F.embedding(inp, P["wte"]) + P["wpe"]
    hd = C // H
    for l in range(L):
        h = rms(x, P[f"h{l}.ln1"])
        q, k, v = F.linear(h, P[f"h{l}.qkv"]).split(C, -1)
        heads = lambda t: t.view(B, T, H, hd).transpose(1, 2)
        y = sdpa(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, P[f"h{l}.proj"])
        x = x + F.linear(F.silu(F.linear(rms(x, P[f"h{l}.ln2"]), P[f"h{l}.fc"])), P[f"h{l}.fc2"])
    logits = F.linear(rms(x, P["lnf"]), P["head"])
    lse = torch.logsumexp(logits, -1)
    lp = logits.gather(-1, tgt.unsqueeze(-1)).squeeze(-1) - lse
    return -lp.mean()

opt = torch.optim.AdamW(list(P.values()), lr=1e-3, weight_decay=0.01, foreach=False)
ids = torch.randint(0, V, (B, T + 1), generator=torch.Generator().manual_seed(cfg["seed"] + 1)).to(dev)
times, losses = [], []
for i in range(cfg["warmup"] + cfg["steps"]):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(ids)
    loss.backward()
    opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) * 1000
    losses.append(loss.item())
    if i >= cfg["warmup"]:
        times.append(dt)
print(json.dumps({"peer_ms": statistics.median(times), "losses": losses, "threads": torch.get_num_threads()}))
