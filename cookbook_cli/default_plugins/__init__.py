"""Core's built-in plugins, one module per kind of thing they register (as
simonw/llm's `default_plugins/`).

Each module holds only `@hookimpl` functions, which import the feature code
they register when called; `plugins.manager.DEFAULT_PLUGINS` lists them, and
they go through the same hooks as any third-party package, so there is one
registration path and it is tested. Nothing here is imported by `plugins/`.
"""
