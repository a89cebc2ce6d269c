"""Staff look after accounts: find customers, switch an account off or on again, and give or take staff roles.

Switching an account off or taking a role away ends every session the account has — API (its refresh tokens, and
with them its access tokens: shop.services.session_watch) and storefront — so that nothing it signed in with keeps
what it no longer may have."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shop.domain.catalog import Page
from shop.domain.errors import Conflict, InvalidValue, NotFound
from shop.domain.users import Role, User, UserStatus, normalize_email
from shop.services.clock import Clock, utc_now
from shop.services.ports import RefreshTokenStore, UserRepository

STAFF_ROLES = frozenset({Role.STAFF, Role.ADMIN})
MAX_SEARCH = 320


class NotPermitted(Conflict):
    """A staff member tried something their role does not allow (a staff account is an admin's business)."""


class Customers:
    def __init__(self, *, users: UserRepository, refresh_tokens: RefreshTokenStore,
                 end_web_sessions: Callable[[str], Awaitable[int]], clock: Clock = utc_now) -> None:
        self._users = users
        self._refresh = refresh_tokens
        self._end_web_sessions = end_web_sessions
        self._clock = clock

    async def find(self, email: str = "", *, page: int = 1, limit: int = 25) -> Page[User]:
        """Accounts whose e-mail address contains `email` (any case), newest first."""
        return await self._users.find(email=_search_text(email), page=max(1, page), limit=limit)

    async def staff(self, *, page: int = 1, limit: int = 100) -> Page[User]:
        """Accounts holding the staff or admin role."""
        return await self._users.find(roles=STAFF_ROLES, page=max(1, page), limit=limit)

    async def account(self, user_id: str) -> User:
        user = await self._users.by_id(user_id) if len(user_id) <= 64 else None
        if user is None:
            raise NotFound("customer", user_id)
        return user

    async def disable(self, user_id: str, *, by: User) -> User:
        """Switch an account off: it cannot sign in, and every session it has ends now."""
        user = await self.account(user_id)
        if user.id == by.id:
            raise NotPermitted("you cannot disable your own account")
        if user.is_staff and not by.has_role(Role.ADMIN):
            raise NotPermitted("only an admin may disable a staff account")
        await self._users.set_status(user.id, UserStatus.DISABLED)
        await self._end_sessions(user.id)
        user.status = UserStatus.DISABLED
        return user

    async def enable(self, user_id: str, *, by: User) -> User:
        """Let a disabled account sign in again (its old sessions stay ended)."""
        user = await self.account(user_id)
        if user.is_staff and not by.has_role(Role.ADMIN):
            raise NotPermitted("only an admin may enable a staff account")
        await self._users.set_status(user.id, UserStatus.ACTIVE)
        user.status = UserStatus.ACTIVE
        return user

    async def grant(self, email: str, role: Role, *, by: User) -> User:
        """Give the account with this e-mail address a staff role (admin includes staff)."""
        _check_admin(by)
        if role not in STAFF_ROLES:
            raise InvalidValue("role", "choose staff or admin")
        _, key = normalize_email(email)
        found = await self._users.by_email_key(key)
        if found is None:
            raise InvalidValue("email", "no account has this e-mail address; they must register first")
        user = found[0]
        wanted = user.roles | {Role.STAFF} | ({Role.ADMIN} if role is Role.ADMIN else set())
        await self._users.set_roles(user.id, wanted)
        user.roles = wanted
        return user

    async def revoke(self, user_id: str, role: Role, *, by: User) -> User:
        """Take a staff role away, and end every session of the account; taking staff takes admin too. An admin
        keeps their own admin role."""
        _check_admin(by)
        if role not in STAFF_ROLES:
            raise InvalidValue("role", "choose staff or admin")
        user = await self.account(user_id)
        taken = STAFF_ROLES if role is Role.STAFF else {Role.ADMIN}
        if user.id == by.id and Role.ADMIN in user.roles and Role.ADMIN in taken:
            raise NotPermitted("you cannot remove your own admin role; ask another admin to do it")
        wanted = (user.roles - taken) | {Role.CUSTOMER}
        await self._users.set_roles(user.id, wanted)
        if wanted != user.roles:
            await self._end_sessions(user.id)
        user.roles = wanted
        return user

    async def _end_sessions(self, user_id: str) -> None:
        await self._refresh.revoke_user(user_id, now=self._clock())
        await self._end_web_sessions(user_id)


def _check_admin(user: User) -> None:
    if not user.has_role(Role.ADMIN):
        raise NotPermitted("only an admin may change staff roles")


def _search_text(raw: str) -> str:
    return " ".join(raw.split())[:MAX_SEARCH]
