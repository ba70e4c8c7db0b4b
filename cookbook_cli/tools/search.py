"""The built-in `search` tool: BM25 over a document collection (the `bm25s` library).

`bm25_search_tool(documents)` makes a `search` tool over any list of
documents (`{"id", "title", "text"}`); the registered `search` tool searches
the small collection shipped with cookbook (`data/search_corpus.jsonl`: 40
articles about the towns of an invented island, so a model cannot know the
answers without searching). Indexes are built once per process and
collection.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.tools.tool import Tool

DEFAULT_TOP_K = 3
SHIPPED_CORPUS = "search_corpus.jsonl"


def shipped_corpus() -> tuple[dict[str, str], ...]:
    """The collection shipped in the package."""
    return load_corpus(str(resources.files("cookbook_cli.tools").joinpath("data", SHIPPED_CORPUS)))


@functools.lru_cache(maxsize=8)
def load_corpus(path: str) -> tuple[dict[str, str], ...]:
    """Documents from a JSONL file, one `{"text", "title"?, "id"?}` object a line."""
    docs = []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        raise CookbookError(f"cannot read the search corpus {path}: {e.strerror or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CookbookError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise CookbookError(f"{path}:{n}: a document needs a string 'text'")
        docs.append({"id": str(row.get("id", n)), "title": str(row.get("title", "")), "text": row["text"]})
    if not docs:
        raise CookbookError(f"the search corpus {path} has no documents")
    return tuple(docs)


class BM25Index:
    """A BM25 index over `documents` (English stopwords removed)."""

    def __init__(self, documents: Sequence[dict[str, str]]) -> None:
        import bm25s

        self.documents = list(documents)
        self._bm25 = bm25s.BM25()
        tokens = bm25s.tokenize([f"{d.get('title', '')} {d['text']}" for d in self.documents], stopwords="en", show_progress=False)
        self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, k: int = DEFAULT_TOP_K) -> list[tuple[dict[str, str], float]]:
        """The best `k` documents for `query` with their scores (documents scoring 0 left out)."""
        import bm25s

        k = max(1, min(k, len(self.documents)))
        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not words or not words[0]:
            return []
        ids, scores = self._bm25.retrieve(words, k=k, show_progress=False)
        return [(self.documents[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


@functools.lru_cache(maxsize=8)
def _index(documents: tuple[tuple[tuple[str, str], ...], ...]) -> BM25Index:
    return BM25Index([dict(d) for d in documents])


def index_of(documents: Sequence[dict[str, str]]) -> BM25Index:
    """The (cached) index of a collection."""
    return _index(tuple(tuple(sorted(d.items())) for d in documents))


class _Search:
    """The tool's function over one collection (a class, so the tool pickles with its documents)."""

    def __init__(self, documents: Sequence[dict[str, str]], top_k: int) -> None:
        self.documents = tuple(documents)
        self.top_k = top_k

    def __call__(self, query: str) -> str:
        hits = index_of(self.documents).search(query, self.top_k)
        if not hits:
            return "No documents match the query."
        return "\n\n".join(f"[{d['title'] or d['id']}] {d['text']}" for d, _ in hits)


def bm25_search_tool(documents: Sequence[dict[str, Any]], top_k: int = DEFAULT_TOP_K, name: str = "search") -> Tool:
    """A tool that returns the `top_k` documents BM25 ranks best for a query."""
    return Tool(
        name=name,
        description=f"Search the document collection; returns the {top_k} best-matching documents.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string", "description": "keywords to search for"}},
            "required": ["query"],
            "additionalProperties": False,
        },
        fn=_Search(documents, top_k),
        timeout_s=10.0,
    )


def shipped_search_tool() -> Tool:
    return bm25_search_tool(shipped_corpus())
