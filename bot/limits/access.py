"""Who may use the bot where: allow and block lists, the DM switch and the admins."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..config.controls import Controls

log = logging.getLogger(__name__)

NOTICE_WHO = "Sorry, you don't have access to this bot."
NOTICE_WHERE = "Sorry, I'm not available here."
NOTICE_DMS = "I don't answer direct messages — please ask me in a server channel."


@dataclass(frozen=True)
class Requester:
    """Who is asking, and where. `guild_id` is None in DMs.

    `parent_ids` are the channel's ancestors: for a thread its parent channel and that
    channel's category, for a channel its category. A listed parent covers its children.
    """

    user_id: int
    role_ids: frozenset[int] = field(default_factory=frozenset)
    guild_id: int | None = None
    channel_id: int | None = None
    parent_ids: tuple[int, ...] = ()

    @property
    def in_dm(self) -> bool:
        return self.guild_id is None

    @property
    def places(self) -> frozenset[int]:
        """The channel and its ancestors, any of which a channel list may name."""
        if self.channel_id is None:
            return frozenset(self.parent_ids)
        return frozenset((self.channel_id, *self.parent_ids))


@dataclass(frozen=True)
class Verdict:
    """Whether to answer. `reason` is for the log; `notice` is the polite private line to
    send instead of an answer, or None to stay silent."""

    allowed: bool
    reason: str
    notice: str | None = None


class AccessPolicy:
    """Applies `Controls`' lists. Admins are always allowed; blocks win over allows; an empty
    allow list admits everyone.

    Users and roles together say *who* may ask: when either allow list is set, the user must
    be listed or hold a listed role. Servers and channels say *where*, each on its own. Role,
    channel and server lists are about servers: a DM is governed by ALLOW_DMS and the user
    lists only.
    """

    def __init__(self, controls: Controls) -> None:
        self._c = controls
        if controls.allow_dms and controls.allowed_role_ids and not controls.allowed_user_ids:
            log.warning(
                "access: ALLOWED_ROLE_IDS is set but DMs are allowed and roles don't apply in "
                "DMs, so anyone can ask by DM; set ALLOW_DMS=false to restrict DMs too"
            )

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._c.admin_user_ids

    def check(self, who: Requester) -> Verdict:
        """Allow or refuse `who`. Cheap and pure: call it for every message."""
        c = self._c
        if self.is_admin(who.user_id):
            return Verdict(True, "admin")
        if who.user_id in c.blocked_user_ids:
            return self._refuse(f"user {who.user_id} is in BLOCKED_USER_IDS", NOTICE_WHO)
        if who.in_dm:
            if not c.allow_dms:
                return self._refuse("DMs are off (ALLOW_DMS=false)", NOTICE_DMS)
            if c.allowed_user_ids and who.user_id not in c.allowed_user_ids:
                return self._refuse(f"user {who.user_id} not in ALLOWED_USER_IDS", NOTICE_WHO)
            return Verdict(True, "allowed in DM")

        if who.guild_id in c.blocked_guild_ids:
            return self._refuse(f"server {who.guild_id} is in BLOCKED_GUILD_IDS", NOTICE_WHERE)
        if blocked := who.places & c.blocked_channel_ids:
            return self._refuse(f"channel {min(blocked)} is in BLOCKED_CHANNEL_IDS", NOTICE_WHERE)
        if blocked := who.role_ids & c.blocked_role_ids:
            return self._refuse(f"role {min(blocked)} is in BLOCKED_ROLE_IDS", NOTICE_WHO)

        if c.allowed_user_ids or c.allowed_role_ids:
            listed = who.user_id in c.allowed_user_ids or bool(who.role_ids & c.allowed_role_ids)
            if not listed:
                return self._refuse(
                    f"user {who.user_id} not in ALLOWED_USER_IDS nor ALLOWED_ROLE_IDS", NOTICE_WHO
                )
        if c.allowed_guild_ids and who.guild_id not in c.allowed_guild_ids:
            return self._refuse(f"server {who.guild_id} not in ALLOWED_GUILD_IDS", NOTICE_WHERE)
        if c.allowed_channel_ids and not who.places & c.allowed_channel_ids:
            return self._refuse(
                f"channel {who.channel_id} not in ALLOWED_CHANNEL_IDS", NOTICE_WHERE
            )
        return Verdict(True, "allowed")

    def _refuse(self, reason: str, notice: str) -> Verdict:
        return Verdict(False, reason, notice if self._c.blocked_reply == "notice" else None)
