"""The bundled sample comparisons are learnable: a tiny randomly initialised model
(random:tiny:llama3), trained with the DPO loss on the local engine for a few
steps, prefers the chosen completion on >= 90% of the held-out pairs (at step 0
the policy is its own reference, so h = 0 and none is preferred).

This drives the library pieces the way a DPO loop does: reference sums from a
frozen copy's `forward`, `forward_backward_custom` with `dpo_loss_fn`, `optim_step`."""

from __future__ import annotations

STEPS = 4
BATCH = 8
LR = 3e-3


def _margins(policy, reference, batches) -> list[float]:
    from cookbook_cli.preference.loss import pair_logprob_sums

    hs = []
    for batch in batches:
        now = policy.forward(batch.datums, "cross_entropy")
        ref = reference.forward(batch.datums, "cross_entropy")
        cur = pair_logprob_sums(batch.datums, [o["logprobs"] for o in now.result().loss_fn_outputs])
        base = pair_logprob_sums(batch.datums, [o["logprobs"] for o in ref.result().loss_fn_outputs])
        hs += [(c - rc) - (r - rr) for (c, r), (rc, rr) in zip(cur, base, strict=True)]
    return hs


def test_tiny_model_learns_the_sample_preferences() -> None:
    from tinker.types import AdamParams

    from cookbook_cli.engines.local.service import LocalServiceClient
    from cookbook_cli.preference.builders import ComparisonsBuilder
    from cookbook_cli.preference.loss import dpo_loss_fn, pair_logprob_sums
    from cookbook_cli.renderers import get_renderer

    train, test = ComparisonsBuilder().build(get_renderer("llama3", "llama3"), BATCH, 256, seed=0)
    assert test is not None and test.num_rows == 30
    held_out = test.all_batches()
    with LocalServiceClient(device="cpu") as svc:
        policy = svc.create_lora_training_client("random:tiny:llama3", rank=0, seed=0)
        reference = svc.create_lora_training_client("random:tiny:llama3", rank=0, seed=0)
        assert not any(h > 0 for h in _margins(policy, reference, held_out))
        metrics = []
        for step in range(STEPS):
            batch = train.build_batch(step)
            out = reference.forward(batch.datums, "cross_entropy").result()
            ref_sums = pair_logprob_sums(batch.datums, [o["logprobs"] for o in out.loss_fn_outputs])
            fb = policy.forward_backward_custom(batch.datums, dpo_loss_fn(ref_sums, beta=0.1))
            policy.optim_step(AdamParams(learning_rate=LR)).result()
            metrics.append(fb.result().metrics)
        hs = _margins(policy, reference, held_out)
    accuracy = sum(h > 0 for h in hs) / len(hs)
    assert accuracy >= 0.9, (accuracy, metrics)
    assert metrics[-1]["dpo_loss"] < metrics[0]["dpo_loss"] and metrics[-1]["margin"] > 0
