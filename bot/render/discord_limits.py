"""Discord's limits on one message, facts of its API: characters of text and attached files."""

MESSAGE_CHARS = 2000  # characters of text in one message
ATTACHMENTS_PER_MESSAGE = 10  # files attached to one message
