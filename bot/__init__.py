"""mathbot: a Discord math assistant with memory."""
