"""cookbook: post-training for language models as a plugin platform.

Importing this package is cheap on purpose: it loads pluggy and nothing heavy,
so the CLI starts instantly. Plugins implement hooks marked with `hookimpl`.
"""

import os

# Exact resume and repeatable runs need the same floating-point sums every
# time. With dynamic threading (its default) MKL may run a product on fewer
# threads than torch asks when the machine is busy, which changes the order
# of its sums: two runs of one config then differ in the ninth digit. MKL
# reads this once, when torch loads it, so it is set before anything imports
# torch; an explicit MKL_DYNAMIC stands.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

from cookbook_cli.errors import CookbookError  # noqa: E402
from cookbook_cli.plugins.spec import hookimpl  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CookbookError", "hookimpl", "__version__"]
