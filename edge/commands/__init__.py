"""Handlers of the runtime subcommands (run, enhance, degrade)."""
