"""The agent's sandboxed tools and the killable worker pool they run in."""
