"""Off-policy distillation targets: the teacher's top-K next-token distribution.

For a supervised example of tokens x_0..x_L and per-target weights w_j (the
renderer's: 1 on the trained assistant tokens), the teacher's top-K
prompt logprobs at position j+1 give its K most likely next tokens v_{j,k}
after x_0..x_j with logprobs l_{j,k}. Renormalised over those K,

    p_{j,k} = exp(l_{j,k}) / sum_k' exp(l_{j,k'})

and the datum trains `cross_entropy` with (N, K) `target_tokens` v and
`weights` w_j * p_{j,k}: the soft-target cross-entropy
-sum_j w_j sum_k p_{j,k} log q(v_{j,k}) of the student q (Tinker's top-K
distillation form of cross_entropy). Positions with w_j = 0 keep their own
target token with weight 0. The reported `teacher_kl` is the forward KL on the
top-K support, sum_k p log(p / q), averaged over trained positions.

Teacher outputs are cached in the run (`teacher_topk/`), one file per distinct
token sequence, keyed by the teacher and K: a resumed run, a later epoch or a
repeated example never asks the teacher twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.engines.protocol import SamplingClient


@dataclass
class TeacherTopK:
    """The teacher's top-K at every target position of one sequence: (N, K)
    token ids and logprobs (-inf where the teacher returned fewer than K)."""

    ids: np.ndarray
    logprobs: np.ndarray


def topk_from_response(rows: Sequence[Sequence[tuple[int, float]] | None] | None, length: int, k: int) -> TeacherTopK:
    """`SampleResponse.topk_prompt_logprobs` of a `length`-token prompt, as the
    (length - 1, K) arrays of the positions that predict tokens 1..length-1."""
    if rows is None:
        raise CookbookError("the teacher returned no topk_prompt_logprobs; its engine must support top-K prompt logprobs")
    if len(rows) != length:
        raise CookbookError(f"the teacher returned top-K logprobs for {len(rows)} positions of a {length}-token prompt")
    ids = np.zeros((length - 1, k), dtype=np.int64)
    lps = np.full((length - 1, k), -np.inf, dtype=np.float64)
    for j, row in enumerate(rows[1:]):
        if not row:
            continue
        for c, (tok, lp) in enumerate(list(row)[:k]):
            ids[j, c] = int(tok)
            lps[j, c] = float(lp)
    return TeacherTopK(ids, lps)


def renormalised(logprobs: np.ndarray) -> np.ndarray:
    """Row-wise probabilities over the finite entries of (N, K) logprobs (rows
    with none are all zero)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    finite = np.isfinite(lp)
    top = np.where(finite, lp, -np.inf).max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(finite, np.exp(lp - top), 0.0)
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@dataclass
class SoftTargets:
    """What a datum trains on: (N, K) target ids and weights, and the renormalised
    teacher probabilities with the positions' weights (for metrics)."""

    target_tokens: np.ndarray
    weights: np.ndarray
    probs: np.ndarray
    position_weights: np.ndarray


def soft_targets(topk: TeacherTopK, targets: Any, position_weights: Any) -> SoftTargets:
    """The (N, K) cross_entropy inputs of one datum (see the module docstring)."""
    tgt = np.asarray(targets, dtype=np.int64).reshape(-1)
    w = np.asarray(position_weights, dtype=np.float64).reshape(-1)
    n, k = topk.ids.shape
    if tgt.shape[0] != n or w.shape[0] != n:
        raise ValueError(f"{tgt.shape[0]} targets and {w.shape[0]} weights for {n} top-K rows")
    probs = renormalised(topk.logprobs)
    trained = w > 0
    empty = trained & (probs.sum(axis=1) == 0)
    if empty.any():
        raise CookbookError(f"the teacher returned no top-K logprobs at trained position {int(np.flatnonzero(empty)[0])}")
    ids = np.where(trained[:, None], topk.ids, tgt[:, None])
    # padding entries (fewer than K returned) point at a real token of the row, weight 0
    ids = np.where(probs > 0, ids, ids[:, :1])
    probs = np.where(trained[:, None], probs, 0.0)
    return SoftTargets(ids, (w[:, None] * probs).astype(np.float32), probs, w)


def soft_target_metrics(targets: Sequence[SoftTargets], student_logprobs: Sequence[Any]) -> dict[str, float]:
    """Per trained position (weighted): the soft cross-entropy, the teacher's
    top-K entropy and their difference, the forward KL on the top-K support."""
    ce = ent = total = 0.0
    for t, lp in zip(targets, student_logprobs, strict=True):
        q = np.asarray(lp, dtype=np.float64).reshape(t.probs.shape)
        p = t.probs
        w = t.position_weights
        logp = np.log(np.where(p > 0, p, 1.0))
        ce += float((w * -(p * q).sum(axis=1)).sum())
        ent += float((w * -(p * logp).sum(axis=1)).sum())
        total += float(w.sum())
    if total == 0:
        return {}
    return {"soft_ce": ce / total, "teacher_entropy": ent / total, "teacher_kl": (ce - ent) / total}


# -- the teacher, with the run's cache -------------------------------------------------------------


class TopKCache:
    """Teacher top-K per token sequence, computed once and kept under `folder`."""

    def __init__(self, folder: Path | None, teacher: SamplingClient, teacher_key: str, k: int) -> None:
        self.folder = folder
        self.teacher = teacher
        self.k = k
        self.key = f"{teacher_key}|k={k}"
        self.hits = 0  # sequences read from the cache (logged as teacher/cache_hits)

    def _path(self, tokens: Sequence[int]) -> Path | None:
        if self.folder is None:
            return None
        h = hashlib.sha256(self.key.encode("utf-8"))
        h.update(np.asarray(tokens, dtype=np.int64).tobytes())
        digest = h.hexdigest()
        return self.folder / digest[:2] / f"{digest}.npz"

    async def get(self, tokens: Sequence[int]) -> TeacherTopK:
        path = self._path(tokens)
        if path is not None and path.is_file():
            try:
                with np.load(path) as z:
                    self.hits += 1
                    return TeacherTopK(z["ids"].astype(np.int64), z["logprobs"].astype(np.float64))
            except (OSError, ValueError, KeyError):
                pass  # a damaged file is asked again
        topk = await self._ask(tokens)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                np.savez(f, ids=topk.ids.astype(np.int32), logprobs=topk.logprobs.astype(np.float32))
            os.replace(tmp, path)
        return topk

    async def _ask(self, tokens: Sequence[int]) -> TeacherTopK:
        from tinker.types import ModelInput, SamplingParams

        prompt = ModelInput.from_ints(list(tokens))
        response = await self.teacher.sample_async(
            prompt, 1, SamplingParams(max_tokens=1, temperature=1.0), include_prompt_logprobs=True, topk_prompt_logprobs=self.k
        )
        return topk_from_response(response.topk_prompt_logprobs, len(tokens), self.k)

    async def datums(self, data: Sequence[tinker.types.Datum]) -> tuple[list[tinker.types.Datum], list[SoftTargets]]:
        """Supervised datums (target_tokens, weights) as top-K soft-target datums."""
        from tinker.types import Datum, TensorData

        tops = await asyncio.gather(*(self.get(full_tokens(d)) for d in data))
        out, targets = [], []
        for d, top in zip(data, tops, strict=True):
            st = soft_targets(top, d.loss_fn_inputs["target_tokens"].to_numpy(), d.loss_fn_inputs["weights"].to_numpy())
            n, k = st.target_tokens.shape
            out.append(
                Datum(
                    model_input=d.model_input,
                    loss_fn_inputs={
                        "target_tokens": TensorData(data=st.target_tokens.reshape(-1).tolist(), dtype="int64", shape=[n, k]),
                        "weights": TensorData(data=st.weights.reshape(-1).tolist(), dtype="float32", shape=[n, k]),
                    },
                )
            )
            targets.append(st)
        return out, targets


def full_tokens(datum: tinker.types.Datum) -> list[int]:
    """The whole sequence of a shifted datum: its inputs and the last target."""
    targets = datum.loss_fn_inputs["target_tokens"].to_numpy().reshape(-1)
    return [*datum.model_input.to_ints(), int(targets[-1])]
