"""Conversation memory: session keys, whole turns, history, the session stores."""
