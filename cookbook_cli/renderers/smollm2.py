"""SmolLM2 Instruct chat format: ChatML with SmolLM2's default system prompt.

    <|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    What is 2+2?<|im_end|>
    <|im_start|>assistant
    4<|im_end|>

The system turn above is written when the conversation does not open with a
system message (as SmolLM2's chat template does); a conversation's own system
message replaces it. Each message ends with `<|im_end|>` and a newline; the
newline is written after the end marker and not trained on (except with
`all_tokens`). There is no BOS token. Sampling stops at `<|im_end|>`; a sampled
`<|endoftext|>` also ends a response (termination `eos`). Tool calls and
thinking content have no format in SmolLM2 and are refused.

`cookbook renderers check smollm2` against the model's own template: every
built-in conversation matches token for token except an answer that starts
with a newline, where the text is the same but the tokenizer would merge the
header's newline with the answer's (`\n\n`); the renderer encodes header and
answer apart so that the generation prompt stays a token prefix of the
training example (a boundary difference every renderer shares).
"""

from __future__ import annotations

from cookbook_cli.renderers.base import RenderedMessage, StopTokenRenderer
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.types import Message, ToolSpec, text_of

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
HEADER = IM_START + "{}\n"  # .format(role)


class SmolLM2Renderer(StopTokenRenderer):
    stop_token = IM_END
    end_of_text = END_OF_TEXT

    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        if messages and messages[0]["role"] != "system":
            return f"{HEADER.format('system')}{DEFAULT_SYSTEM_PROMPT}{IM_END}\n"
        return ""

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        return [RenderedMessage(HEADER.format(m["role"]), text_of(m) + IM_END, "\n") for m in messages]

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        return HEADER.format(role)

    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return {"role": "assistant", "content": text}, term
