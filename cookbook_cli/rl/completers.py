"""The token completer moved to `cookbook_cli.completers` (beside the message
completer); these names stay importable from here for existing code."""

from cookbook_cli.completers import SamplingClientCompleter, TokenCompleter, TokensWithLogprobs

__all__ = ["SamplingClientCompleter", "TokenCompleter", "TokensWithLogprobs"]
