"""The built-in recipes, registered through `register_recipes` like any plugin's."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_recipes")
def register_builtin_recipes(register: Register) -> None:
    from cookbook_cli.recipes import distill, dpo, kto, pm, rl, sl

    # main_metrics: (metrics.jsonl key, label) that `runs list` shows for a run of the recipe.
    register("sl", sl.RECIPE, "Supervised fine-tuning on conversations.", main_metrics=[("loss", "loss"), ("test_nll", "test NLL")])
    register(
        "rl", rl.RECIPE, "Reinforcement learning on an environment, synchronous or asynchronous (off-policy).",
        main_metrics=[("env/reward/mean", "reward")],
    )
    register(
        "dpo", dpo.RECIPE, "Preference learning (DPO) on comparisons of two completions of a prompt.",
        main_metrics=[("accuracy", "accuracy"), ("margin", "margin")],
    )
    register(
        "kto", kto.RECIPE, "Preference learning from unpaired desirable/undesirable completions (KTO).",
        main_metrics=[("accuracy", "accuracy"), ("kl", "KL")],
    )
    register(
        "pm", pm.RECIPE, "A preference model: a judge of which of two replies is better, trained with SFT on comparisons (both orders).",
        main_metrics=[("test/accuracy", "accuracy")],
    )
    register(
        "distill", distill.RECIPE,
        "Distil a teacher into a student: on-policy (reverse KL on the student's samples) or off-policy (top-K soft targets).",
        main_metrics=[("teacher_kl", "teacher KL")],
    )
