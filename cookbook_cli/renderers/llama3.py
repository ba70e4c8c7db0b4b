"""Llama 3 chat format (Llama 3.1, 3.2, 3.3 Instruct).

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>

    You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>

    What is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

    4<|eot_id|>

`<|begin_of_text|>` is written exactly once, by the renderer; the tokenizer's
post-processor never adds a second. Sampling stops at `<|eot_id|>`; a sampled
`<|end_of_text|>` also ends a response (termination `eos`).

Where this differs from Meta's Llama 3.2 chat template (each is tested):
- The template always opens with a system turn holding a "Cutting Knowledge
  Date: December 2023 / Today Date: ..." preamble, even when the conversation
  has no system message. This renderer writes only the messages it is given;
  put the preamble in your system message to reproduce the template exactly.
- The template strips whitespace around every message's content; this renderer
  keeps content byte for byte, so leading/trailing whitespace is trained on
  (declared as `ContentKeptVerbatim`: the check puts the content back where
  the template wrote it and then requires equal tokens).
- Tool declarations and tool calls (the template's JSON function-calling
  prompt) are not supported and are refused, as is thinking content: Llama 3
  has no thinking format.
"""

from __future__ import annotations

import re

from cookbook_cli.renderers.base import RenderedMessage, StopTokenRenderer
from cookbook_cli.renderers.differences import ContentKeptVerbatim
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.types import Message, ToolSpec, text_of

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
END_OF_TEXT = "<|end_of_text|>"
TEMPLATE_DATE = "26 Jul 2024"
# The system block Meta's template writes on its own; the renderer leaves it to the user.
_DATE_PREAMBLE = re.compile(r"Cutting Knowledge Date: [^\n]*\nToday Date: [^\n]*\n\n")
_EMPTY_SYSTEM = "<|start_header_id|>system<|end_header_id|>\n\n<|eot_id|>"


def _header(role: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


class Llama3Renderer(StopTokenRenderer):
    stop_token = EOT
    end_of_text = END_OF_TEXT
    template_kwargs = {"date_string": TEMPLATE_DATE}
    template_differences = (ContentKeptVerbatim(),)

    def bos_text(self) -> str:
        return BOS

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        return [RenderedMessage(_header(m["role"]), text_of(m) + EOT) for m in messages]

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        return _header(role)

    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return {"role": "assistant", "content": text}, term

    # -- parity with Meta's template (see the module docstring) -------------------------
    def template_text(self, template, messages, tools, *, add_generation_prompt, special_tokens=None):  # type: ignore[no-untyped-def]
        """The template's text without the date preamble it adds on its own
        (and without the system turn it opens only to hold that preamble)."""
        text = super().template_text(
            template, messages, tools, add_generation_prompt=add_generation_prompt, special_tokens=special_tokens
        )
        text = _DATE_PREAMBLE.sub("", text, count=1)
        if not (messages and messages[0]["role"] == "system"):
            text = text.replace(_EMPTY_SYSTEM, "", 1)
        return text
