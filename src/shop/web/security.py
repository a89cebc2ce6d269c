"""Who is calling: the bearer token of a request, and guards for routes that need a role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop.domain.users import InvalidToken, Role, User
from shop.web.deps import AuthDep

_bearer = HTTPBearer(auto_error=False, description="an access token from /api/v1/auth/login")
# the same token under its own name where guests are welcome too: the OpenAPI document makes it optional there
GUESTS_WELCOME = "BearerIfSignedIn"
_bearer_if_signed_in = HTTPBearer(auto_error=False, scheme_name=GUESTS_WELCOME, description=_bearer.model.description)


class NotAllowed(Exception):
    """Signed in, but without the role the route needs (403)."""


async def current_user(auth: AuthDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                       request: Request) -> User:
    """The signed-in user; 401 without a valid access token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("sign in first: send an access token as 'Authorization: Bearer …'")
    user = await auth.user_for(credentials.credentials)
    request.state.user_id = user.id  # for the request log (shop.web.request_log), which reads scope["state"]
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def optional_user(auth: AuthDep,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_if_signed_in)],
                        request: Request) -> User | None:
    """The signed-in user, or None for a guest; a token that is sent must be valid (401 otherwise)."""
    if credentials is None:
        return None
    return await current_user(auth, credentials, request)


MaybeUser = Annotated[User | None, Depends(optional_user)]


def require(role: Role) -> Callable[[User, Request], Awaitable[User]]:
    """A dependency letting through users with `role` (admins count as staff): 401 if anonymous, else 403."""

    async def guard(user: CurrentUser, request: Request) -> User:
        if not user.has_role(role):
            raise NotAllowed(f"this needs the {role.value} role")
        if role is not Role.CUSTOMER and request.app.state.settings.require_staff_2fa and not user.has_two_factor:
            raise NotAllowed("staff must switch on two-factor sign-in first (/api/v1/auth/2fa/setup)")
        return user

    return guard


Staff = Annotated[User, Depends(require(Role.STAFF))]
Admin = Annotated[User, Depends(require(Role.ADMIN))]
