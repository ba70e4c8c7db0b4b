"""Row orders, made by `datasets` itself so they equal tinker-cookbook's.

tinker-cookbook shuffles a conversation file with `Dataset.shuffle(seed)`,
holds out the first `test_size` rows, and reshuffles the training rows each
epoch e with `shuffle(seed=e)`. Asking `datasets` for the permutation (rather
than reimplementing it) keeps the orders equal if `datasets` ever changes how
it shuffles.
"""

from __future__ import annotations

from cookbook_cli.errors import CookbookError


def shuffled_order(num_rows: int, seed: int) -> list[int]:
    """Row indices in the order `datasets.Dataset.shuffle(seed=seed)` puts `num_rows` rows."""
    if seed < 0:
        raise CookbookError(f"seed must be >= 0 (datasets shuffles with a non-negative seed), got {seed}")
    if num_rows <= 1:
        return list(range(num_rows))
    import datasets
    import numpy as np

    rows = datasets.Dataset.from_dict({"row": np.arange(num_rows)})
    # Read through Arrow: a Python-list read of a shuffled dataset is ~10x slower.
    shuffled = rows.shuffle(seed=seed, keep_in_memory=True).with_format("arrow")["row"]
    return np.asarray(shuffled).tolist()
