"""The run lifecycle every recipe shares (`lifecycle.open_run`), the run
directory and its files, checkpoint bookkeeping, progress, and reading a run
back (`show`). Recipes hold only their config and loop."""
