"""Weights named by the user that core refuses before anything loads.

A `--reference`, `--init-from`, `--teacher` or `kl_reference_model=` value is a
run directory, a checkpoint, a model folder or file, or a name the Hub or an
engine knows. One that looks like a local path (`models.inputs.looks_like_path`)
and does not exist is refused at once: tried as a Hub id it would cost a minute
of retries before failing. A model that scores the policy's tokens must have
the policy's vocabulary, read from both models' files.
"""

from __future__ import annotations

from pathlib import Path

from cookbook_cli.errors import CookbookError


def refuse_missing_path(spec: str, what: str, instead: str) -> None:
    """One line when `spec` looks like a local path and nothing is there; `what`
    names the option, `instead` says what to give."""
    from cookbook_cli.models.inputs import looks_like_path

    if looks_like_path(spec) and not Path(spec).expanduser().exists():
        raise CookbookError(f"{what} {spec!r} does not exist; {instead}")


def _vocabulary(model: str) -> int | None:
    from cookbook_cli.models import model_facts

    try:
        return model_facts(model).vocabulary
    except CookbookError:  # what the model is gets its own error where it loads
        return None


def refuse_other_vocabulary(policy: str, other: str, what: str) -> None:
    """One line when the two models' files (config.json, a GGUF's metadata) give
    different vocabularies: `other` would score token ids that mean something
    else to it. Unknown on either side (a Hub id not in the cache): no check."""
    mine, theirs = _vocabulary(policy), _vocabulary(other)
    if mine is not None and theirs is not None and mine != theirs:
        raise CookbookError(
            f"{what} {other!r} has a vocabulary of {theirs} tokens and the model {policy!r} {mine} (from their model files): "
            "it would score token ids that mean other text to it; give a model with the same tokenizer"
        )


def check_scoring_model(policy: str, other: str, what: str, instead: str) -> None:
    """A model that scores the policy's tokens (a DPO or KL reference): not a
    missing local path, and of the policy's vocabulary."""
    refuse_missing_path(other, what, instead)
    refuse_other_vocabulary(policy, other, what)
