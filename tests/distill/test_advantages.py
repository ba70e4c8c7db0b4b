"""The per-token distillation advantage (kappa, gamma, masking) and the top-K
soft targets, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cookbook_cli.distill.advantages import discounted_future_sum, kl_advantages, reverse_kl_per_token
from cookbook_cli.distill.topk import TeacherTopK, renormalised, soft_target_metrics, soft_targets, topk_from_response
from cookbook_cli.errors import CookbookError

# a prompt of two tokens (mask 0) then three completion tokens
STUDENT = [0.0, 0.0, -1.0, -2.0, -0.5]
TEACHER = [-9.0, -9.0, -1.5, -1.0, -0.5]
MASK = [0, 0, 1, 1, 1]


def test_reverse_kl_is_student_minus_teacher_on_completion_tokens_only():
    assert reverse_kl_per_token(STUDENT, TEACHER, MASK).tolist() == [0.0, 0.0, 0.5, -1.0, 0.0]


def test_advantage_is_minus_kappa_times_the_log_ratio():
    assert kl_advantages(STUDENT, TEACHER, MASK).tolist() == [0.0, 0.0, -0.5, 1.0, 0.0]
    assert kl_advantages(STUDENT, TEACHER, MASK, kl_coef=2.0).tolist() == [0.0, 0.0, -1.0, 2.0, 0.0]
    assert kl_advantages(STUDENT, TEACHER, MASK, kl_coef=0.0).tolist() == [0.0] * 5


def test_discount_sums_future_rewards_over_completion_tokens():
    # a = [-0.5, 1.0, 0.0] on the completion; gamma = 0.5:
    # A_2 = 0.0, A_1 = 1.0 + 0.5 * 0 = 1.0, A_0 = -0.5 + 0.5 * 1.0 + 0.25 * 0 = 0.0
    assert kl_advantages(STUDENT, TEACHER, MASK, kl_discount=0.5).tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert discounted_future_sum([1.0, 2.0, 4.0], 0.5).tolist() == [1.0 + 1.0 + 1.0, 2.0 + 2.0, 4.0]


def test_discount_skips_observation_tokens_between_turns():
    # two turns: completion, observation, completion. The observation neither earns nor decays.
    s = [0.0, -1.0, 0.0, 0.0, -1.0]
    t = [0.0, -2.0, -7.0, -7.0, -3.0]
    m = [0, 1, 0, 0, 1]
    # a = [-1 * (−1 − −2), -1 * (−1 − −3)] = [-1, -2]; gamma 0.9: A = [-1 + 0.9 * -2, -2]
    got = kl_advantages(s, t, m, kl_discount=0.9)
    assert got[[0, 2, 3]].tolist() == [0.0, 0.0, 0.0]
    assert got[1] == pytest.approx(-2.8) and got[4] == pytest.approx(-2.0)


def test_shapes_must_agree():
    with pytest.raises(ValueError):
        kl_advantages([0.0, 1.0], [0.0], [1, 1])


# -- top-K soft targets -------------------------------------------------------------------


def test_topk_rows_are_shifted_onto_the_targets_and_padded():
    rows = [None, [(5, math.log(0.5)), (7, math.log(0.3))], [(2, math.log(0.9))]]
    top = topk_from_response(rows, length=3, k=2)
    assert top.ids.tolist() == [[5, 7], [2, 0]]
    assert top.logprobs[0].tolist() == pytest.approx([math.log(0.5), math.log(0.3)])
    assert top.logprobs[1, 1] == -np.inf


def test_renormalised_over_the_top_k():
    p = renormalised(np.array([[math.log(0.5), math.log(0.3)], [math.log(0.9), -np.inf]]))
    assert p[0].tolist() == pytest.approx([0.625, 0.375])
    assert p[1].tolist() == pytest.approx([1.0, 0.0])


def test_soft_targets_weight_each_candidate_by_its_renormalised_probability():
    top = TeacherTopK(np.array([[5, 7], [2, 3], [4, 6]]), np.log(np.array([[0.5, 0.3], [0.9, 0.1], [0.2, 0.2]])))
    st = soft_targets(top, targets=[5, 2, 9], position_weights=[1.0, 0.0, 0.5])
    # trained rows: 0 (weight 1) and 2 (weight 0.5); row 1 keeps its own target with weight 0
    assert st.target_tokens.tolist() == [[5, 7], [2, 2], [4, 6]]
    np.testing.assert_allclose(st.weights, [[0.625, 0.375], [0.0, 0.0], [0.25, 0.25]], rtol=1e-6)


def test_soft_targets_point_padding_at_a_real_token_with_weight_zero():
    top = TeacherTopK(np.array([[8, 0]]), np.array([[math.log(0.4), -np.inf]]))
    st = soft_targets(top, targets=[8], position_weights=[1.0])
    assert st.target_tokens.tolist() == [[8, 8]]
    np.testing.assert_allclose(st.weights, [[1.0, 0.0]])


def test_a_trained_position_without_teacher_logprobs_is_refused():
    top = TeacherTopK(np.zeros((1, 2), dtype=np.int64), np.full((1, 2), -np.inf))
    with pytest.raises(CookbookError, match="no top-K logprobs at trained position 0"):
        soft_targets(top, targets=[1], position_weights=[1.0])


def test_forward_kl_on_the_top_k_support():
    top = TeacherTopK(np.array([[5, 7]]), np.log(np.array([[0.5, 0.5]])))
    st = soft_targets(top, targets=[5], position_weights=[1.0])
    student = np.log(np.array([[0.25, 0.25]]))
    m = soft_target_metrics([st], [student])
    # CE = -(0.5 ln .25 + 0.5 ln .25) = ln 4; H = ln 2; KL = ln 2
    assert m["soft_ce"] == pytest.approx(math.log(4))
    assert m["teacher_entropy"] == pytest.approx(math.log(2))
    assert m["teacher_kl"] == pytest.approx(math.log(2))


# -- the teacher's top-K, cached with the run ---------------------------------------------------


class FakeTeacher:
    """Answers top-K prompt logprobs as tinker's SampleResponse does; counts calls."""

    def __init__(self):
        self.calls = 0

    async def sample_async(self, prompt, num_samples, params, include_prompt_logprobs=False, topk_prompt_logprobs=0):
        from tinker.types import SampleResponse

        self.calls += 1
        n = prompt.length
        rows = [None] + [[(t, math.log(0.6)), (t + 1, math.log(0.2))][:topk_prompt_logprobs] for t in prompt.to_ints()[1:]]
        return SampleResponse(sequences=[], _topk_prompt_logprobs_list=rows, _prompt_logprobs_list=[None] * n)


def test_topk_datums_are_cached_per_sequence(tmp_path):
    import asyncio

    from tinker.types import Datum, ModelInput, TensorData

    from cookbook_cli.distill.topk import TopKCache

    datum = Datum(
        model_input=ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": TensorData(data=[2, 3, 4], dtype="int64", shape=[3]),
            "weights": TensorData(data=[0.0, 1.0, 1.0], dtype="float32", shape=[3]),
        },
    )
    teacher = FakeTeacher()
    cache = TopKCache(tmp_path / "teacher_topk", teacher, "teacher-a", k=2)
    (d,), (st,) = asyncio.run(cache.datums([datum]))
    assert d.loss_fn_inputs["target_tokens"].shape == [3, 2]
    # position 0 is not trained; positions 1, 2 predict tokens 3, 4 with p = 0.75 / 0.25 after renormalising
    assert d.loss_fn_inputs["target_tokens"].to_numpy().tolist() == [[2, 2], [3, 4], [4, 5]]
    np.testing.assert_allclose(d.loss_fn_inputs["weights"].to_numpy(), [[0, 0], [0.75, 0.25], [0.75, 0.25]], rtol=1e-6)
    assert len(list((tmp_path / "teacher_topk").rglob("*.npz"))) == 1
    again = TopKCache(tmp_path / "teacher_topk", teacher, "teacher-a", k=2)  # a resumed run
    asyncio.run(again.datums([datum]))
    assert teacher.calls == 1 and again.hits == 1
    asyncio.run(TopKCache(tmp_path / "teacher_topk", teacher, "teacher-b", k=2).datums([datum]))
    assert teacher.calls == 2  # another teacher is asked again
