"""Cross-check cookbook's preference losses against TRL's own loss code, in a
Python where TRL is importable (it is never a cookbook dependency):

    pip download --no-deps -d /tmp/trl trl && python -m zipfile -e /tmp/trl/trl-*.whl /tmp/trl/pkgs
    PYTHONPATH=/tmp/trl/pkgs python scripts/crosscheck_trl_losses.py

TRL's CPOTrainer.cpo_loss computes sigmoid (cDPO with label_smoothing), hinge
and ipo on whatever log-ratios it is given (DPO's when given S - S_ref) and
simpo on mean logprobs; ORPOTrainer.odds_ratio_loss the ORPO odds-ratio term
(in float32). Prints the largest relative difference per loss on 64 random
pairs. (TRL's DPOTrainer normalises IPO by length and keeps robust and KTO
inside its training step, so those are not called here.)
"""
import types, torch, numpy as np
from trl.experimental.cpo.cpo_trainer import CPOTrainer
from trl.experimental.orpo.orpo_trainer import ORPOTrainer
from cookbook_cli.preference.losses import BUILTIN_PREFERENCE_LOSSES, RowSums

rng = np.random.default_rng(0)
P = 64
t = lambda a: torch.tensor(a, dtype=torch.float64)
c, r = t(-rng.uniform(1, 30, P)), t(-rng.uniform(1, 30, P))
cref, rref = t(-rng.uniform(1, 30, P)), t(-rng.uniform(1, 30, P))
cl, rl = t(rng.integers(3, 20, P).astype(float)), t(rng.integers(3, 20, P).astype(float))
rows = RowSums(c, r, cl, rl, cref, rref)
acc = types.SimpleNamespace(device="cpu")
def cpo(loss_type, beta, ls=0.0, gamma=0.5):
    return types.SimpleNamespace(alpha=0.0, beta=beta, label_smoothing=ls, simpo_gamma=gamma, loss_type=loss_type, accelerator=acc)
worst = {}
for name, trl_type, params, inputs in [
    ("sigmoid", "sigmoid", {"beta": 0.1, "label_smoothing": 0.0}, (c - cref, r - rref)),
    ("sigmoid", "sigmoid", {"beta": 0.1, "label_smoothing": 0.2}, (c - cref, r - rref)),
    ("hinge", "hinge", {"beta": 0.1}, (c - cref, r - rref)),
    ("ipo", "ipo", {"beta": 0.1}, (c - cref, r - rref)),
    ("simpo", "simpo", {"beta": 2.0, "simpo_gamma": 0.5}, (c / cl, r / rl)),
]:
    ours, _ = BUILTIN_PREFERENCE_LOSSES[name].fn(rows, params)
    theirs, *_ = CPOTrainer.cpo_loss(cpo(trl_type, params["beta"], params.get("label_smoothing", 0.0), params.get("simpo_gamma", 0.5)), *inputs)
    worst[f"{name} {params}"] = float(((ours - theirs).abs() / theirs.abs().clamp(min=1e-300)).max())
ours, m = BUILTIN_PREFERENCE_LOSSES["orpo"].fn(rows, {"orpo_lambda": 0.1})
ratio_losses, *_ = ORPOTrainer.odds_ratio_loss(types.SimpleNamespace(beta=0.1, accelerator=acc), c / cl, r / rl)
theirs = -(c / cl) - ratio_losses.double()  # ORPO: loss = NLL - beta * log sigmoid(log odds); TRL computes ratio in float32
worst["orpo (TRL's OR term in float32)"] = float(((ours - theirs).abs() / theirs.abs()).max())
for k, v in worst.items():
    print(f"{k:55s} max relative difference {v:.2e}")
