#!/usr/bin/python3
"""The K2 architecture (spec section 4) in PyTorch, for the training-throughput comparison with k2c train.

Same model as k2c (MLA with q_lora, YaRN RoPE on interleaved pairs, RMSNorm, sigmoid noaux_tc router with
bias-corrected top-k and normalized unbiased weights, SwiGLU routed + shared experts, dense first layers),
same batch, sequence length and thread count; a training step is forward + backward + the optimizer:
AdamW on everything, or (--optimizer muon) Muon as k2c runs it (spec section 6: Nesterov momentum 0.95, NS5,
0.2 sqrt(max(A, B)) RMS matching, decoupled weight decay, every expert matrix and the router on its own) on
the hidden matrices with AdamW on the embedding, head and vectors. PyTorch 1.13 has no Muon; this is the
plain loop a PyTorch user would write. It has no QK-Clip (k2c's MuonClip does more work per step).
Prints one line: tokens/s over the timed steps.

usage: /usr/bin/python3 bench/train_torch.py CONFIG.json --batch B --seq T --threads N --steps S [--optimizer muon]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def yarn_mscale(s, m):
    return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0


def rope_tables(c, T):
    dr = c["qk_rope_head_dim"]
    theta = c["rope_theta"]
    rs = c.get("rope_scaling") or {}
    inv = []
    low = high = 0.0
    yarn = rs.get("type") == "yarn"
    if yarn:
        orig = rs["original_max_position_embeddings"]

        def cdim(n):
            return dr * math.log(orig / (n * 2 * math.pi)) / (2 * math.log(theta))

        low = max(math.floor(cdim(rs["beta_fast"])), 0)
        high = min(math.ceil(cdim(rs["beta_slow"])), dr - 1)
        if low == high:
            high += 0.001
    for i in range(dr // 2):
        extra = theta ** (-2.0 * i / dr)
        if not yarn:
            inv.append(extra)
            continue
        ramp = min(max((i - low) / (high - low), 0.0), 1.0)
        inv.append(extra * (1 - ramp) + extra / rs["factor"] * ramp)
    scale = 1.0 / math.sqrt(c["qk_nope_head_dim"] + dr)
    cs = 1.0
    if yarn:
        cs = yarn_mscale(rs["factor"], rs["mscale"]) / yarn_mscale(rs["factor"], rs["mscale_all_dim"])
        m = yarn_mscale(rs["factor"], rs["mscale_all_dim"])
        scale *= m * m
    pos = torch.arange(T, dtype=torch.float64)[:, None] * torch.tensor(inv, dtype=torch.float64)[None, :]
    return (torch.cos(pos) * cs).float(), (torch.sin(pos) * cs).float(), scale


def rope(x, cos, sin):  # x [..., T, ?, dr] interleaved pairs; cos/sin [T, dr/2]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def lin(i, o):
    l = nn.Linear(i, o, bias=False)
    nn.init.normal_(l.weight, std=0.02)
    return l


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H = c["hidden_size"], c["num_attention_heads"]
        self.H, self.dn, self.dr, self.dv, self.r = H, c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        qd = self.dn + self.dr
        ql = c.get("q_lora_rank")
        if ql:
            self.q_a, self.q_a_norm, self.q_b = lin(D, ql), RMSNorm(ql, 1e-6), lin(ql, H * qd)
        else:
            self.q_a = None
            self.q = lin(D, H * qd)
        self.kv_a = lin(D, self.r + self.dr)
        self.kv_a_norm = RMSNorm(self.r, 1e-6)
        self.kv_b = lin(self.r, H * (self.dn + self.dv))
        self.o = lin(H * self.dv, D)

    def forward(self, x, cos, sin, scale, mask):
        B, T, _ = x.shape
        H, dn, dr, dv = self.H, self.dn, self.dr, self.dv
        q = self.q_b(self.q_a_norm(self.q_a(x))) if self.q_a is not None else self.q(x)
        q = q.view(B, T, H, dn + dr)
        qn, qp = q[..., :dn], rope(q[..., dn:], cos, sin)
        a = self.kv_a(x)
        kv = self.kv_b(self.kv_a_norm(a[..., :self.r])).view(B, T, H, dn + dv)
        kn, v = kv[..., :dn], kv[..., dn:]
        kp = rope(a[..., self.r:].unsqueeze(2), cos, sin)  # [B, T, 1, dr]
        qf = torch.cat((qn, qp), -1).transpose(1, 2)                       # [B, H, T, qd]
        kf = torch.cat((kn, kp.expand(B, T, H, dr)), -1).transpose(1, 2)   # [B, H, T, qd]
        s = (qf @ kf.transpose(-1, -2)) * scale + mask
        p = torch.softmax(s, -1)
        out = (p @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, H * dv)
        return self.o(out)


class SwiGLU(nn.Module):
    def __init__(self, D, F_):
        super().__init__()
        self.gate, self.up, self.down = lin(D, F_), lin(D, F_), lin(F_, D)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, E = c["hidden_size"], c["n_routed_experts"]
        self.K, self.E, self.rsf = c["num_experts_per_tok"], E, c["routed_scaling_factor"]
        self.gate = lin(D, E)
        self.register_buffer("bias", torch.zeros(E))
        self.experts = nn.ModuleList([SwiGLU(D, c["moe_intermediate_size"]) for _ in range(E)])
        ns = c["n_shared_experts"]
        self.shared = SwiGLU(D, c["moe_intermediate_size"] * ns) if ns else None

    def forward(self, x):
        shp = x.shape
        x = x.reshape(-1, shp[-1])
        s = torch.sigmoid(self.gate(x))
        idx = (s.detach() + self.bias).topk(self.K, dim=-1).indices
        w = s.gather(1, idx)
        w = w / (w.sum(-1, keepdim=True) + 1e-20) * self.rsf
        y = self.shared(x) if self.shared is not None else torch.zeros_like(x)
        for e in range(self.E):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            y = y.index_add(0, tok, self.experts[e](x[tok]) * w[tok, slot, None])
        return y.view(shp)


class Layer(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        eps = c["rms_norm_eps"]
        self.n1, self.n2 = RMSNorm(c["hidden_size"], eps), RMSNorm(c["hidden_size"], eps)
        self.attn = MLA(c)
        self.ffn = MoE(c) if moe else SwiGLU(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, cos, sin, scale, mask):
        x = x + self.attn(self.n1(x), cos, sin, scale, mask)
        return x + self.ffn(self.n2(x))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList([Layer(c, l >= c["first_k_dense_replace"]) for l in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.head = lin(c["hidden_size"], c["vocab_size"])

    def forward(self, ids, cos, sin, scale, mask):
        x = self.embed(ids)
        for l in self.layers:
            x = l(x, cos, sin, scale, mask)
        return self.head(self.norm(x))


def ns5(G, steps=5):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G / (G.norm() + 1e-7)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if tall else X


class Muon:
    def __init__(self, params, lr, mu=0.95, wd=0.1):
        self.params, self.lr, self.mu, self.wd = list(params), lr, mu, wd
        self.bufs = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, m in zip(self.params, self.bufs):
            m.mul_(self.mu).add_(p.grad)
            o = ns5(p.grad + self.mu * m)
            p.mul_(1 - self.lr * self.wd).add_(o, alpha=-self.lr * 0.2 * max(p.shape) ** 0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = json.load(open(a.config))
    m = Model(c)
    adamw = lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    if a.optimizer == "muon":   # hidden matrices: every 2-D weight but the embedding and the head
        hidden = [p for n, p in m.named_parameters() if p.dim() == 2 and not n.startswith(("embed", "head"))]
        ids_h = {id(p) for p in hidden}
        opts = [Muon(hidden, lr=1e-3), adamw([p for p in m.parameters() if id(p) not in ids_h])]
    else:
        opts = [adamw(m.parameters())]
    cos, sin, scale = rope_tables(c, a.seq)
    mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)
    V = c["vocab_size"]
    g = torch.Generator().manual_seed(1)
    t0 = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            t0 = time.perf_counter()
        ids = torch.randint(0, V, (a.batch, a.seq + 1), generator=g)
        logits = m(ids[:, :-1], cos, sin, scale, mask)
        loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
        m.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
    dt = time.perf_counter() - t0
    n = sum(p.numel() for p in m.parameters())
    print(f"torch {torch.__version__}: {n} parameters, loss {loss.item():.4f}, {a.steps * a.batch * a.seq / dt:.1f} tokens/s")


if __name__ == "__main__":
    main()
