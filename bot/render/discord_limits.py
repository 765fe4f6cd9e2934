"""Discord's limits on one message, facts of its API: characters of text and attached files."""

MESSAGE_CHARS = 2000  # characters of text in one message
ATTACHMENTS_PER_MESSAGE = 10  # files attached to one message
ATTACHMENT_DESCRIPTION_CHARS = 1024  # characters of an attachment's description (its alt text)
INTERACTION_TOKEN_SECONDS = 15 * 60  # an interaction's token answers (edits, followups) this long
