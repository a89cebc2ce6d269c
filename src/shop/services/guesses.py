"""Wrong guesses at a secret — an authenticator or recovery code, a texted code, an e-mailed link's token — counted
per account and per client address (a Throttle's keys), so that none can be guessed at speed. While either has used
up its attempts every try is refused, a right one too, until the window lets one go; a new client address does not
help against the account's count.

Links are counted per client only: their token is signed, so whose it is cannot be known before it proves right.
"""

from __future__ import annotations

ACCOUNT_PREFIX = "code-account"
CLIENT_PREFIX = "code-client"


def guess_keys(*, client: str, account: str | None = None) -> list[str]:
    """The throttle keys one guess counts against: the account's (when known) and the client's."""
    keys = [f"{CLIENT_PREFIX}:{client}"]
    return [f"{ACCOUNT_PREFIX}:{account}", *keys] if account is not None else keys
