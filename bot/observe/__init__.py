"""Observing the bot: the metrics the core and the adapter report, health, and their HTTP server."""
