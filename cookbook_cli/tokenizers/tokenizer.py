"""The Tokenizer every layer uses: a thin, fast wrapper over `tokenizers.Tokenizer`.

Renderers add BOS and other special tokens themselves, so `encode` never runs
the tokenizer's post-processor (no second BOS, ever).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tokenizers

from cookbook_cli.errors import CookbookError


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _read_companion(path: Path, parse: Any) -> Any:
    """A file beside tokenizer.json, read as UTF-8 and parsed; errors name it."""
    from cookbook_cli.errors import CookbookError

    try:
        return parse(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise CookbookError(f"{path}: not UTF-8 text (byte at offset {e.start}); save it as UTF-8") from None
    except json.JSONDecodeError as e:
        raise CookbookError(f"{path}: malformed JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


class Tokenizer:
    def __init__(
        self,
        hf: tokenizers.Tokenizer,
        source: str,
        config: dict[str, Any] | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.hf = hf
        self.source = source
        self.config = config or {}
        self.chat_template = chat_template or self.config.get("chat_template") or None
        self.bos_token = _token_content(self.config.get("bos_token"))
        self.eos_token = _token_content(self.config.get("eos_token"))
        self._encode_batch = hf.encode_batch_fast if hasattr(hf, "encode_batch_fast") else hf.encode_batch

    @classmethod
    def from_file(cls, tokenizer_json: Path, source: str | None = None) -> Tokenizer:
        """Load `tokenizer.json` with the `tokenizer_config.json` and
        `chat_template.jinja` that sit beside it, if any."""
        from cookbook_cli.errors import CookbookError, first_line

        try:
            hf = tokenizers.Tokenizer.from_file(str(tokenizer_json))
        except Exception as e:  # noqa: BLE001 - the Rust loader raises a bare Exception for any bad file
            raise CookbookError(
                f"cannot load tokenizer {str(tokenizer_json)!r}: {first_line(e)}; "
                "it must be a Hugging Face tokenizer.json (re-download or re-save it)"
            ) from None
        folder = tokenizer_json.parent
        config: dict[str, Any] = {}
        cfg_path = folder / "tokenizer_config.json"
        if cfg_path.is_file():
            config = _read_companion(cfg_path, json.loads)
            if not isinstance(config, dict):
                raise CookbookError(f"{cfg_path}: expected a JSON object, got {type(config).__name__}")
        template = None
        tpl_path = folder / "chat_template.jinja"
        if tpl_path.is_file():
            template = _read_companion(tpl_path, lambda text: text)
        return cls(hf, source or str(tokenizer_json), config, template)

    # -- encoding ---------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special-token strings in it become their ids."""
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def require_id(self, token: str) -> int:
        """The id of a token that must be a single token in this vocabulary."""
        tid = self.hf.token_to_id(token)
        if tid is None:
            from cookbook_cli.errors import CookbookError

            raise CookbookError(
                f"tokenizer {self.source!r} has no token {token!r}; is this the right tokenizer for the renderer?"
            )
        return tid

    def id_to_token(self, tid: int) -> str | None:
        return self.hf.id_to_token(tid)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    @property
    def bos_token_id(self) -> int | None:
        return self.hf.token_to_id(self.bos_token) if self.bos_token else None

    @property
    def eos_token_id(self) -> int | None:
        return self.hf.token_to_id(self.eos_token) if self.eos_token else None

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickle by source so worker processes load (and memoise) their own copy.
        from cookbook_cli.tokenizers.loading import get_tokenizer

        return (get_tokenizer, (self.source,))

    def __repr__(self) -> str:
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size})"
