"""DeepSeek-V3.1's tool prompt as its model card publishes it (section
"ToolCall" of https://huggingface.co/deepseek-ai/DeepSeek-V3.1): the
`{tool_description}` that goes after the system prompt.

The V3.1 chat template writes no tool declarations, so this transcription of
the card is what the parity check puts into the template's system prompt. It
is kept apart from the renderer's own code on purpose: the check compares the
renderer with the published format, not with itself.
"""

from __future__ import annotations

import json
from typing import Any

# As printed on the card; `{tools}` stands for the tool blocks, `{{additional_tool_calls}}` is literal.
TOOL_DESCRIPTION = """## Tools
You have access to the following tools:

{tools}

IMPORTANT: ALWAYS adhere to this exact format for tool use:
<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>

Where:
- `tool_call_name` must be an exact match to one of the available tools
- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema
- For multiple tool calls, chain them directly without separators or spaces"""

# One block per tool ("### {tool_name1}" on the card), blocks separated by a blank line.
TOOL_BLOCK = """### {name}
Description: {description}

Parameters: {parameters}"""


def card_tool_description(tools: list[Any]) -> str:
    """The card's tool description for `tools` (ToolSpec objects); parameters
    as the card writes them, `json.dumps(parameters)`."""
    blocks = [TOOL_BLOCK.format(name=t.name, description=t.description, parameters=json.dumps(t.parameters)) for t in tools]
    head, tail = TOOL_DESCRIPTION.split("{tools}")
    return head + "\n\n".join(blocks) + tail
