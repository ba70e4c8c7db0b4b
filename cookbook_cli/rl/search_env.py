"""Built-in env `search`: answer questions from a document collection through a `search` tool.

The shipped collection is 40 short articles about the towns of an invented
island (`cookbook_cli/tools/data/search_corpus.jsonl`), with 120 questions
about them (`rl/data/search_questions.jsonl`): a model cannot know the
answers, it has to search. The `search` tool ranks documents with BM25 (the
`bm25s` library). The reward is 1 when the final answer contains the
reference (ignoring case and punctuation). `env.corpus=FILE.jsonl
env.questions=FILE.jsonl` use your own collection; `env.questions` also
takes a dataset id (e.g. `rag-datasets/rag-mini-wikipedia` with
`env.config_name=question-answer env.split=test`, whose passages are its
`text-corpus` configuration, exported to JSONL for `env.corpus`).
"""

from __future__ import annotations

from typing import Any

import chz

from cookbook_cli.rl.tool_env import ToolEnvBuilder, solved_example
from cookbook_cli.rl.tool_rows import dataset_rows, shipped_rows

SYSTEM_PROMPT = (
    "Answer the question using the search tool to look it up in the document collection. "
    "When you know the answer, reply with just the answer."
)


@chz.chz
class SearchBuilder(ToolEnvBuilder):
    """Questions about a document collection; reward 1 when the final answer contains the reference."""

    corpus: str = chz.field(default="", doc="empty: the shipped collection; else a JSONL file of {text, title?, id?}")
    questions: str = chz.field(default="", doc="empty: the shipped questions; else a JSONL/CSV/parquet file or a Hub id")
    top_k: int = chz.field(default=2, doc="documents the search tool returns")

    default_max_tokens = 96
    default_system_prompt = SYSTEM_PROMPT

    def tools(self) -> list[Any]:
        from cookbook_cli.tools.search import bm25_search_tool, load_corpus, shipped_corpus

        return [bm25_search_tool(load_corpus(self.corpus) if self.corpus else shipped_corpus(), self.top_k)]

    def examples(self) -> list:
        # about a town that is not in the shipped collection
        result = "[Hollin] Hollin is a town on the western coast of Pellam Island. It was founded in 1544 by Ruth Amsel."
        return solved_example("Who founded the town of Hollin?", "search", {"query": "Hollin founded"}, result, "Ruth Amsel")

    def load_rows(self) -> list[dict[str, str]]:
        if not self.questions:
            return shipped_rows("search_questions.jsonl")
        return dataset_rows(self.questions, self.dataset_config(), self.split, "question", "answer")

    def local_defaults(self) -> dict[str, Any]:
        # SmolLM2's format (with its tool syntax): the local engine's default model for it is a
        # tiny random model over SmolLM2's tokenizer, a quick offline smoke run;
        # `--model smollm2-135m-instruct` trains the real model.
        return {"renderer": "smollm2"}
