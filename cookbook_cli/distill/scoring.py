"""The teacher's logprobs of the student's sampled tokens, one array per datum.

In `tokens` mode the teacher scores the datum's own token ids
(`compute_logprobs` of the whole sequence). In `rerender` mode the
completion is re-rendered for the teacher and its logprobs aligned back
(`align`); a completion that cannot be aligned is returned as an
`AlignmentError`, which the recipe counts and leaves out of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cookbook_cli.distill.align import Aligner, AlignmentError

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.distill.teachers import ScoringPlan
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.rl.types import EnvGroupBuilder, Trajectory


def full_sequence(datum: tinker.types.Datum) -> tinker.types.ModelInput:
    """A shifted datum's whole sequence: its inputs and its last target."""
    last = int(datum.loss_fn_inputs["target_tokens"].to_numpy().reshape(-1)[-1])
    return datum.model_input.append_int(last)


@dataclass
class TeacherScorer:
    label: str
    client: SamplingClient
    plan: ScoringPlan
    student: Renderer

    def __post_init__(self) -> None:
        self.aligner = Aligner(self.student, self.plan.renderer) if self.plan.mode == "rerender" else None

    async def score(self, datum: tinker.types.Datum, builder: EnvGroupBuilder, trajectory: Trajectory) -> np.ndarray | AlignmentError:
        """The teacher's logprob of each of the datum's targets (0 where it has none)."""
        n = datum.loss_fn_inputs["target_tokens"].shape[0]
        if self.aligner is None:
            lps = await self.client.compute_logprobs_async(full_sequence(datum))
            return np.asarray([0.0 if x is None else float(x) for x in lps[1:]], dtype=np.float64)
        prompt = getattr(getattr(builder, "inner", builder), "conversation", None)
        if prompt is None or len(trajectory.transitions) != 1:
            return AlignmentError("only single-turn prompt completions can be re-rendered for the teacher")
        completion = list(trajectory.transitions[0].ac.tokens)
        try:
            rerendered, content = self.aligner.rerender(prompt, completion)
        except AlignmentError as e:
            return e
        from tinker.types import ModelInput

        lps = await self.client.compute_logprobs_async(ModelInput.from_ints(rerendered.tokens))
        teacher = [0.0 if x is None else float(x) for x in lps[rerendered.start :]]
        try:
            aligned = self.aligner.align(completion, rerendered, teacher, content)
        except AlignmentError as e:
            return e
        out = np.zeros(n, dtype=np.float64)
        out[n - len(completion) :] = aligned
        return out


