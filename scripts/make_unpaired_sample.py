"""Make cookbook_cli/data/sample_unpaired.jsonl (the `unpaired` builder's sample,
for `train kto`) from the paired sample: each comparison's chosen completion
becomes a desirable row and its rejected one an undesirable row, except that
every fourth comparison keeps only its chosen row, so the rows are truly
unpaired and desirable rows outnumber undesirable ones 4:3 (within the KTO
paper's recommended ratio of weighted desirable to undesirable examples, 1 to
4/3, with both weights 1). Rows are written in a seeded shuffled order.

    python scripts/make_unpaired_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from cookbook_cli.preference.builders import sample_preferences_path
from cookbook_cli.preference.data import load_comparisons
from cookbook_cli.preference.unpaired import rows_from_comparisons
from cookbook_cli.preference.unpaired_builders import sample_unpaired_path


def main() -> None:
    comparisons = [lc for lc in load_comparisons(sample_preferences_path()) if lc.skip_reason() is None]
    rows = []
    for i, lc in enumerate(comparisons):
        desirable, undesirable = rows_from_comparisons([lc])
        rows += [desirable] if i % 4 == 3 else [desirable, undesirable]
    random.Random(0).shuffle(rows)
    out = Path(sample_unpaired_path())
    out.write_text("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in rows))
    good = sum(r.desirable for r in rows)
    print(f"wrote {out}: {len(rows)} rows ({good} desirable, {len(rows) - good} undesirable) from {len(comparisons)} comparisons")


if __name__ == "__main__":
    main()
