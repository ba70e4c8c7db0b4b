"""Core's built-in dataset builders (supervised, preference and distillation
prompts), registered through `register_dataset_builders`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_dataset_builders")
def register_builtin_dataset_builders(register: Register) -> None:
    from cookbook_cli.data.builders import ConversationsBuilder, HfBuilder, NoRobotsBuilder

    register(
        "conversations",
        ConversationsBuilder,
        "JSONL file of {\"messages\": [...]} lines (default: the bundled sample); --dataset FILE.jsonl selects it",
        kind="supervised",
    )
    register(
        "no_robots",
        NoRobotsBuilder,
        "HuggingFaceH4/no_robots: 9,500 human-written chat conversations (needs the Hub or a local copy)",
        kind="supervised",
    )
    register(
        "hf",
        HfBuilder,
        "Any Hugging Face dataset or parquet/JSON file with a messages column (dataset.path=...)",
        kind="supervised",
    )


@hookimpl(specname="register_dataset_builders")
def register_builtin_preference_builders(register: Register) -> None:
    from cookbook_cli.preference.builders import (
        ComparisonsBuilder,
        HelpSteer3Builder,
        HhRlhfBuilder,
        UltraFeedbackBuilder,
    )

    register(
        "comparisons",
        ComparisonsBuilder,
        "JSONL comparison file, tinker-cookbook's {comparison, label} or {prompt, chosen, rejected} lines "
        "(default: the bundled sample)",
        kind="preference",
    )
    register(
        "hh_rlhf",
        HhRlhfBuilder,
        "Anthropic/hh-rlhf: helpful/harmless chosen vs rejected transcripts (the Hub or a local copy)",
        kind="preference",
    )
    register(
        "ultrafeedback",
        UltraFeedbackBuilder,
        "argilla/ultrafeedback-binarized-preferences: best vs a worse rated response (the Hub or a local copy)",
        kind="preference",
    )
    register(
        "helpsteer3",
        HelpSteer3Builder,
        "nvidia/HelpSteer3 preference: two responses rated -3..3, ties skipped (the Hub or a local copy)",
        kind="preference",
    )


@hookimpl(specname="register_dataset_builders")
def register_builtin_unpaired_builders(register: Register) -> None:
    from cookbook_cli.preference.unpaired_builders import UnpairedBuilder, UnpairedFromPairsBuilder

    register(
        "unpaired", UnpairedBuilder,
        "JSONL file of unpaired rows {prompt, completion, label: true|false} for `train kto` (default: the bundled sample)",
        kind="preference-unpaired",
    )
    register(
        "unpaired_pairs", UnpairedFromPairsBuilder,
        "a comparison file as unpaired rows: chosen desirable, rejected undesirable (default: the bundled paired sample)",
        kind="preference-unpaired",
    )


@hookimpl(specname="register_dataset_builders")
def register_builtin_prompt_builders(register: Register) -> None:
    from cookbook_cli.distill.prompts import PromptFileBuilder

    register(
        "prompt_file",
        PromptFileBuilder,
        "JSONL of conversations ending in a user turn: prompts for train distill (--prompts FILE selects it)",
        kind="prompt",
    )
