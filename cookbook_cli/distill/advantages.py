"""Per-token advantages of on-policy distillation.

For each completion token t the student sampled, with `s_t` the student's
(sampler's) logprob of it and `q_t` the teacher's logprob of the same token in
the same context, the per-token reward is the negative reverse-KL estimate

    a_t = -kappa * (s_t - q_t)                      (kappa = kl_coef)

and, with a discount gamma > 0 (kl_discount), the advantage is its discounted
future sum over the completion tokens of the sequence

    A_t = sum_{k >= t} gamma^(k - t) * a_k

where k and t count completion tokens only (observation tokens between the
turns of a multi-turn episode neither earn reward nor decay it). With gamma = 0,
A_t = a_t. Observation tokens (mask 0) get advantage 0. Their sum over a
sequence, sum_t (s_t - q_t), is the usual single-sample estimate of the reverse
KL(student || teacher) of the whole completion.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reverse_kl_per_token(student_logprobs: Any, teacher_logprobs: Any, mask: Any) -> np.ndarray:
    """s_t - q_t on completion tokens (mask > 0), 0 elsewhere."""
    s = np.asarray(student_logprobs, dtype=np.float64).reshape(-1)
    q = np.asarray(teacher_logprobs, dtype=np.float64).reshape(-1)
    m = np.asarray(mask, dtype=np.float64).reshape(-1) > 0
    if not (s.shape == q.shape == m.shape):
        raise ValueError(f"shapes differ: student {s.shape}, teacher {q.shape}, mask {m.shape}")
    return np.where(m, s - q, 0.0)


def discounted_future_sum(values: Any, gamma: float) -> np.ndarray:
    """out_t = sum_{k >= t} gamma^(k - t) * values_k."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.empty_like(x)
    acc = 0.0
    for i in range(len(x) - 1, -1, -1):
        acc = x[i] + gamma * acc
        out[i] = acc
    return out


def kl_advantages(
    student_logprobs: Any, teacher_logprobs: Any, mask: Any, kl_coef: float = 1.0, kl_discount: float = 0.0
) -> np.ndarray:
    """The advantage of every position of a sequence (see the module docstring)."""
    m = np.asarray(mask, dtype=np.float64).reshape(-1) > 0
    a = -kl_coef * reverse_kl_per_token(student_logprobs, teacher_logprobs, mask)
    if kl_discount <= 0:
        return a
    out = np.zeros_like(a)
    out[m] = discounted_future_sum(a[m], kl_discount)
    return out
