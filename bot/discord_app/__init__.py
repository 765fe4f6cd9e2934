"""The Discord adapter: a thin layer that turns Discord events into calls on the core."""
