"""The core: the assistant, its agent and model client. Knows nothing of Discord."""
