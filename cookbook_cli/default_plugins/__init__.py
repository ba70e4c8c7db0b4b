"""Core's built-in plugin modules, registered through the same hooks as any
third-party plugin (listed in `plugins.manager.DEFAULT_PLUGINS`)."""
