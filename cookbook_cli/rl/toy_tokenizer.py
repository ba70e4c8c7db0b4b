"""A 34-token character-level tokenizer for toy RL runs with random models.

Over a large vocabulary a randomly initialised model almost never samples a
given token, so it cannot find the reward of a toy env. Over these 34 tokens
(lowercase letters, `A`, `S`, `U`, space, `:`, newline, `?`, and `<unk>` for
everything else: enough for the `role_colon` format and its stop sequence) it
samples the target about once in 34 tries and learns it in a few steps. A
46-token variant with digits, `+` and `W` writes the `arithmetic` env's
problems.
The file is generated (deterministically) into the cookbook cache on first
use: `random:tiny:<toy_tokenizer_path()>` is a model the local engine can
build offline.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

CHARS = string.ascii_lowercase + "ASU :\n?"
#: The arithmetic variant adds digits, `+` and `W` ("What is 3 + 4?"): 46 tokens.
DIGIT_CHARS = CHARS + string.digits + "+W"
UNK = "<unk>"


def cache_dir(digits: bool = False) -> Path:
    name = "toy_tokenizer_digits_v1" if digits else "toy_tokenizer_v2"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "cookbook" / name


def toy_tokenizer_path(digits: bool = False) -> str:
    """Path of the toy tokenizer.json (with `digits`: the arithmetic variant), written on first use."""
    path = cache_dir(digits) / "tokenizer.json"
    if not path.is_file():
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

        chars = DIGIT_CHARS if digits else CHARS
        vocab = {UNK: 0, **{c: i + 1 for i, c in enumerate(chars)}}
        tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tokenizer.json.tmp-{os.getpid()}")
        tok.save(str(tmp))
        os.replace(tmp, path)
    return str(path)


def toy_model(shape: str = "tiny", digits: bool = False) -> str:
    """The local engine's name for a random model of `shape` over the toy tokenizer."""
    return f"random:{shape}:{toy_tokenizer_path(digits)}"


if __name__ == "__main__":
    print(toy_tokenizer_path())
