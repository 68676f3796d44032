"""Summary of bench/optim_study.sh: final losses, tokens-to-target, clipping and MaxVio (markdown)."""
import json
import sys


def load(p):
    return [json.loads(l) for l in open(p)]


def evals(r):
    return [(x["tokens"], x["eval_loss"]) for x in r if "eval_loss" in x]


def tokens_to(r, target):
    """first token count at which the eval loss reaches target (linear interpolation between evals)"""
    prev = None
    for t, l in evals(r):
        if l <= target:
            if prev is None:
                return t
            (t0, l0) = prev
            return t0 + (t - t0) * (l0 - target) / (l0 - l) if l0 != l else t
        prev = (t, l)
    return None


adamw, muon, clip, hm, hc, nob = (load(p) for p in sys.argv[1:7])
tau = float(sys.argv[7])
name = lambda p: p.rsplit("/", 1)[-1][:-6]
print("| run | final eval loss | max logit (peak) | MaxVio at end (per MoE layer) |")
print("|---|---|---|---|")
for p, r in zip(sys.argv[1:7], (adamw, muon, clip, hm, hc, nob)):
    print(f"| {name(p)} | {evals(r)[-1][1]:.4f} | {max(x['max_logit'] for x in r):.2f} | {', '.join(f'{v:.2f}' for v in r[-1]['maxvio'])} |")
target = evals(adamw)[-1][1]
total = evals(adamw)[-1][0]
for p, r in ((sys.argv[2], muon), (sys.argv[3], clip)):
    t = tokens_to(r, target)
    frac = f"{t / total:.0%}" if t else "not reached"
    print(f"\n{name(p)} reaches AdamW's final eval loss {target:.4f} after {t or 0:.0f} of {total:.0f} tokens: {frac}")
over_m = sum(x["max_logit"] > tau for x in hm)
over_c = sum(x["max_logit"] > tau for x in hc[1:])
clipped = sum(x["clipped"] for x in hc)
print(f"\nhigh lr, tau = {tau}: plain Muon above tau in {over_m} of {len(hm)} steps (peak {max(x['max_logit'] for x in hm):.2f}); "
      f"MuonClip peak {max(x['max_logit'] for x in hc):.2f}, above tau in {over_c} steps, {clipped} head clips; "
      f"final eval loss Muon {evals(hm)[-1][1]:.4f}, MuonClip {evals(hc)[-1][1]:.4f}")
print(f"\nMaxVio at the end: with bias updates {max(clip[-1]['maxvio']):.2f} (max over layers), "
      f"without {max(nob[-1]['maxvio']):.2f}")
