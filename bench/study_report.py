"""Summary of bench/optim_study.sh as markdown: the lr sweep, tokens-to-target, the high-lr clipping runs and
MaxVio. Arguments: STUDY_DIR BEST_ADAMW BEST_MUON BEST_MUONCLIP HIGH_TAU NOBIAS_LOG"""
import glob
import json
import os
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


name = lambda p: os.path.basename(p)[:-6]
study, best_a, best_m, best_c, tau, nobias = sys.argv[1:7]
tau = float(tau)

print("| run | lr | final eval loss | peak max logit | head clips | MaxVio at end (per MoE layer) |")
print("|---|---|---|---|---|---|")
for opt in ("adamw", "muon", "muonclip"):
    runs = sorted(glob.glob(f"{study}/{opt}-*.jsonl"), key=lambda p: float(name(p).split("-", 1)[1]))
    for p in runs:
        r = load(p)
        star = " (best)" if p in (best_a, best_m, best_c) else ""
        print(f"| {opt}{star} | {name(p).split('-', 1)[1]} | {evals(r)[-1][1]:.4f} | {max(x['max_logit'] for x in r):.2f} | "
              f"{sum(x['clipped'] for x in r)} | {', '.join(f'{v:.2f}' for v in r[-1]['maxvio'])} |")

adamw = load(best_a)
target, total = evals(adamw)[-1][1], evals(adamw)[-1][0]
for p in (best_m, best_c):
    t = tokens_to(load(p), target)
    frac = f"{t / total:.1%}" if t else "not reached"
    print(f"\n{name(p)} reaches AdamW's final eval loss {target:.4f} ({name(best_a)}) after {t or 0:.0f} of {total:.0f} tokens: **{frac}**")

print(f"\nHigh lr, tau = {tau:g}:\n")
print("| run | final eval loss | peak max logit (step's forward) | steps above tau | peak after the step | steps above tau after the step | head clips |")
print("|---|---|---|---|---|---|---|")
for n in ("high-muon", "high-muonclip", "high-muonclip-updated"):
    r = load(f"{study}/{n}.jsonl")
    after = [x["max_logit_after_step"] for x in r]
    print(f"| {n} | {evals(r)[-1][1]:.4f} | {max(x['max_logit'] for x in r):.2f} | {sum(x['max_logit'] > tau for x in r)} | "
          f"{max(after):.4f} | {sum(a > tau for a in after)} | {sum(x['clipped'] for x in r)} |")

clip, nob = load(best_c), load(nobias)
print(f"\nMaxVio at the end ({name(best_c)} and {name(nobias)}): with bias updates {max(clip[-1]['maxvio']):.2f} "
      f"(worst layer; {', '.join(f'{v:.2f}' for v in clip[-1]['maxvio'])}), without {max(nob[-1]['maxvio']):.2f} "
      f"({', '.join(f'{v:.2f}' for v in nob[-1]['maxvio'])})")
