"""Models: what `--model` names and which family, renderer, tokenizer and
learning rate go with it.

- `inputs`: a model input (registered name, folder, .gguf, Hub id, random:) resolved to files;
- `gguf_folder`, `gguf_tokenizer`: a .gguf converted once to a Hugging Face folder;
- `families`: the model families plugins register, and name lookups;
- `facts`: architecture, size, vocabulary, context, chat template, read from files;
- `defaults`: the renderer, tokenizer, learning rate and label a command fills in;
- `hf_cache`: the Hugging Face cache, read without the network.

The built-in families (llama3, smollm2) register in `cookbook_cli.default_plugins.models`.
"""

from cookbook_cli.models.defaults import (
    DEFAULT_RENDERER,
    FROM_SCRATCH_LR,
    ModelSpec,
    RendererChoice,
    choose_renderer,
    default_learning_rate,
    known_hidden_size,
    learning_rate_default,
    model_label,
    model_spec,
    renderer_for_model,
    resolve_model_and_renderer,
    tokenizer_for_model,
    tokenizer_source,
)
from cookbook_cli.models.facts import ModelFacts, model_facts
from cookbook_cli.models.families import (
    ModelFamily,
    ModelInfo,
    OfflineModel,
    closest_model,
    family_of,
    model_info,
    recommended_model_for_renderer,
    tokenizer_for_renderer,
)
from cookbook_cli.models.hf_cache import hf_cache_dir, hf_cache_model_dir, is_local_model
from cookbook_cli.models.inputs import ModelInput, resolve_model_input

__all__ = [
    "DEFAULT_RENDERER",
    "FROM_SCRATCH_LR",
    "ModelFacts",
    "ModelFamily",
    "ModelInfo",
    "ModelInput",
    "ModelSpec",
    "OfflineModel",
    "RendererChoice",
    "choose_renderer",
    "closest_model",
    "default_learning_rate",
    "family_of",
    "hf_cache_dir",
    "hf_cache_model_dir",
    "is_local_model",
    "known_hidden_size",
    "learning_rate_default",
    "model_facts",
    "model_info",
    "model_label",
    "model_spec",
    "recommended_model_for_renderer",
    "renderer_for_model",
    "resolve_model_and_renderer",
    "resolve_model_input",
    "tokenizer_for_model",
    "tokenizer_for_renderer",
    "tokenizer_source",
]
