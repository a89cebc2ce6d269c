"""The users store on MongoDB: people with their credentials and two-factor state, refresh tokens, phone codes.

A user is one document (profile, password hash, TOTP state), so each change to it is atomic. Every race the SQL
adapters settle with a conditional UPDATE is settled here by one conditional single-document write: of two
requests racing, exactly one matches the condition.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shop.domain.catalog import Page
from shop.domain.phones import MAX_TRIES, PhoneCode
from shop.domain.sessions import Consumed, Outcome, RefreshToken, TwoFactorState
from shop.domain.users import EmailTaken, Role, User, UserStatus
from shop.infrastructure.mongo.client import Document, MongoStore

USERS, REFRESH_TOKENS, PHONE_CODES = "users", "refresh_tokens", "phone_codes"

# What `shop migrate` (and the first use in each process) makes. A refresh token's hash and a phone code's id are
# their documents' _id, unique by MongoDB's own index, as they are primary keys on SQL.
INDEXES = {
    USERS: [IndexModel([("email_key", ASCENDING)], name="users_email_key_unique", unique=True)],
    REFRESH_TOKENS: [IndexModel([("family_id", ASCENDING)], name="refresh_tokens_family"),
                     IndexModel([("user_id", ASCENDING)], name="refresh_tokens_user"),
                     # sessions that ended lately, polled by every web worker
                     IndexModel([("revoked_at", ASCENDING)], name="refresh_tokens_revoked")],
    # (read backwards for the newest code first)
    PHONE_CODES: [IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="phone_codes_user")],
}
_PROFILE = {"password_hash": 0, "password_updated_at": 0, "totp_secret": 0, "totp_recovery": 0, "totp_last_step": 0}
_TWO_FACTOR = {"totp_secret": 1, "totp_enabled_at": 1, "totp_recovery": 1, "totp_last_step": 1}


def _user(doc: Document) -> User:
    return User(id=doc["_id"], email=doc["email"], email_key=doc["email_key"], name=doc["name"],
                roles=frozenset(Role(r) for r in doc["roles"]), status=UserStatus(doc["status"]),
                created_at=doc["created_at"], email_verified_at=doc.get("email_verified_at"), phone=doc.get("phone"),
                phone_verified_at=doc.get("phone_verified_at"), totp_enabled_at=doc.get("totp_enabled_at"))


def _now() -> datetime:
    return datetime.now(UTC)


class MongoUsers:
    """UserRepository over the users store on MongoDB."""

    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def add(self, user: User, *, password_hash: str) -> None:
        now = _now()
        doc = {"_id": user.id, "email": user.email, "email_key": user.email_key, "name": user.name,
               "roles": sorted(r.value for r in user.roles), "status": user.status.value, "phone": user.phone,
               "email_verified_at": user.email_verified_at, "phone_verified_at": user.phone_verified_at,
               "created_at": user.created_at or now, "password_hash": password_hash, "password_updated_at": now,
               "totp_secret": None, "totp_enabled_at": None, "totp_recovery": None, "totp_last_step": None}
        try:
            async with self._store.collection(USERS) as users:
                await users.insert_one(doc)
        except DuplicateKeyError:  # the unique e-mail key: two registrations raced for the same address
            raise EmailTaken() from None

    async def by_email_key(self, email_key: str) -> tuple[User, str] | None:
        async with self._store.collection(USERS) as users:
            doc = await users.find_one({"email_key": email_key})
        return (_user(doc), doc["password_hash"]) if doc else None

    async def by_id(self, user_id: str) -> User | None:
        async with self._store.collection(USERS) as users:
            doc = await users.find_one({"_id": user_id}, projection=_PROFILE)
        return _user(doc) if doc else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._set(user_id, {"password_hash": password_hash, "password_updated_at": _now()})

    async def mark_email_verified(self, user_id: str, *, at: datetime) -> None:
        await self._set(user_id, {"email_verified_at": at})

    async def set_roles(self, user_id: str, roles: frozenset[Role]) -> None:
        await self._set(user_id, {"roles": sorted(r.value for r in roles)})

    async def set_phone(self, user_id: str, phone: str | None, *, verified_at: datetime | None) -> None:
        await self._set(user_id, {"phone": phone, "phone_verified_at": verified_at})

    async def set_status(self, user_id: str, status: UserStatus) -> None:
        await self._set(user_id, {"status": status.value})

    async def find(self, *, email: str = "", roles: frozenset[Role] = frozenset(), page: int = 1,
                   limit: int = 25) -> Page[User]:
        query: Document = {}
        if email:
            query["email_key"] = {"$regex": re.escape(email.casefold())}
        if roles:
            query["roles"] = {"$in": sorted(r.value for r in roles)}
        async with self._store.collection(USERS) as users:
            total = await users.count_documents(query)
            cursor = users.find(query, projection=_PROFILE, sort=[("created_at", DESCENDING), ("_id", ASCENDING)],
                                skip=(page - 1) * limit, limit=limit)
            found = [_user(doc) async for doc in cursor]
        return Page(items=found, total=int(total), page=page, limit=limit)

    async def _set(self, user_id: str, values: dict[str, Any]) -> None:
        async with self._store.collection(USERS) as users:
            await users.update_one({"_id": user_id}, {"$set": values})


class MongoTwoFactorState:
    """TwoFactorStore and TwoFactorSecrets over the users store on MongoDB (fields of the user's document); secrets
    arrive sealed (services.two_factor)."""

    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def state(self, user_id: str) -> TwoFactorState | None:
        async with self._store.collection(USERS) as users:
            doc = await users.find_one({"_id": user_id}, projection=_TWO_FACTOR)
        if doc is None or doc.get("totp_secret") is None:
            return None
        return TwoFactorState(secret=doc["totp_secret"], enabled_at=doc.get("totp_enabled_at"),
                              recovery_hashes=tuple(doc.get("totp_recovery") or ()),
                              last_step=doc.get("totp_last_step"))

    async def save(self, user_id: str, state: TwoFactorState | None) -> None:
        values = {"totp_secret": None, "totp_enabled_at": None, "totp_recovery": None, "totp_last_step": None} \
            if state is None else {"totp_secret": state.secret, "totp_enabled_at": state.enabled_at,
                                   "totp_recovery": list(state.recovery_hashes), "totp_last_step": state.last_step}
        async with self._store.collection(USERS) as users:
            await users.update_one({"_id": user_id}, {"$set": values})

    async def use_step(self, user_id: str, step: int) -> bool:
        async with self._store.collection(USERS) as users:
            # conditional, so two logins racing with the same code cannot both pass
            used = await users.update_one(
                {"_id": user_id, "$or": [{"totp_last_step": None}, {"totp_last_step": {"$lt": step}}]},
                {"$set": {"totp_last_step": step}})
        return used.matched_count == 1

    async def use_recovery(self, user_id: str, code_hash: str) -> bool:
        async with self._store.collection(USERS) as users:
            # matched only while the code is still listed: of two racing uses, one strikes it out, one finds nothing
            # ($pull takes every copy of the hash; codes are random, so their hashes never repeat)
            used = await users.update_one({"_id": user_id, "totp_recovery": code_hash},
                                          {"$pull": {"totp_recovery": code_hash}})
        return used.modified_count == 1

    async def secrets_after(self, user_id: str, *, limit: int) -> Sequence[tuple[str, str]]:
        async with self._store.collection(USERS) as users:
            cursor = users.find({"_id": {"$gt": user_id}, "totp_secret": {"$type": "string"}},
                                projection={"totp_secret": 1}, sort=[("_id", ASCENDING)], limit=limit)
            return [(doc["_id"], doc["totp_secret"]) async for doc in cursor]

    async def replace_secret(self, user_id: str, *, was: str, now: str) -> bool:
        async with self._store.collection(USERS) as users:
            replaced = await users.update_one({"_id": user_id, "totp_secret": was}, {"$set": {"totp_secret": now}})
        return replaced.matched_count == 1


def _token(doc: Document) -> RefreshToken:
    return RefreshToken(token_hash=doc["_id"], user_id=doc["user_id"], family_id=doc["family_id"],
                        created_at=doc["created_at"], expires_at=doc["expires_at"])


class MongoRefreshTokens:
    """RefreshTokenStore and EndedSessions over the users store on MongoDB; a token's _id is its hash, a session is
    a family of tokens, ended once they are revoked."""

    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def add(self, token: RefreshToken) -> None:
        async with self._store.collection(REFRESH_TOKENS) as tokens:
            await tokens.insert_one({"_id": token.token_hash, "user_id": token.user_id, "family_id": token.family_id,
                                     "created_at": token.created_at, "expires_at": token.expires_at,
                                     "used_at": None, "revoked_at": None})

    async def consume(self, token_hash: str, *, now: datetime) -> Consumed:
        async with self._store.collection(REFRESH_TOKENS) as tokens:
            # the conditional write is the lock: of two concurrent uses, exactly one matches and marks it used
            taken = await tokens.find_one_and_update(
                {"_id": token_hash, "used_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
                {"$set": {"used_at": now}})
            if taken is not None:
                return Consumed(Outcome.OK, _token(taken))
            doc = await tokens.find_one({"_id": token_hash})
        if doc is None:
            return Consumed(Outcome.UNKNOWN)
        if doc.get("used_at") is not None or doc.get("revoked_at") is not None:
            return Consumed(Outcome.REUSED, _token(doc))
        return Consumed(Outcome.EXPIRED, _token(doc))

    async def revoke_family(self, family_id: str, *, now: datetime) -> None:
        await self._revoke({"family_id": family_id}, now)

    async def revoke_user(self, user_id: str, *, now: datetime) -> None:
        await self._revoke({"user_id": user_id}, now)

    async def ended_since(self, since: datetime) -> Sequence[tuple[str, datetime]]:
        ended: dict[str, datetime] = {}
        async with self._store.collection(REFRESH_TOKENS) as tokens:
            async for doc in tokens.find({"revoked_at": {"$gte": since}}, projection={"family_id": 1, "revoked_at": 1}):
                at = doc["revoked_at"]
                ended[doc["family_id"]] = max(at, ended.get(doc["family_id"], at))
        return list(ended.items())

    async def has_ended(self, session_id: str) -> bool:
        async with self._store.collection(REFRESH_TOKENS) as tokens:
            doc = await tokens.find_one({"family_id": session_id, "revoked_at": {"$ne": None}}, projection={"_id": 1})
        return doc is not None

    async def _revoke(self, which: Document, now: datetime) -> None:
        async with self._store.collection(REFRESH_TOKENS) as tokens:
            await tokens.update_many({**which, "revoked_at": None}, {"$set": {"revoked_at": now}})


def _code(doc: Document) -> PhoneCode:
    return PhoneCode(id=doc["_id"], user_id=doc["user_id"], phone=doc["phone"], code_hash=doc["code_hash"],
                     created_at=doc["created_at"], expires_at=doc["expires_at"], tries=doc["tries"],
                     used_at=doc.get("used_at"))


class MongoPhoneCodes:
    """PhoneCodeStore over the users store on MongoDB; a code's _id is its id."""

    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def purge(self, *, expired_before: datetime) -> int:
        async with self._store.collection(PHONE_CODES) as codes:
            result = await codes.delete_many({"expires_at": {"$lt": expired_before}})
        return int(result.deleted_count)

    async def add(self, code: PhoneCode) -> None:
        async with self._store.collection(PHONE_CODES) as codes:
            # only the newest code works: older unused ones go (used ones stay, as the record of a verification)
            await codes.delete_many({"user_id": code.user_id, "used_at": None})
            await codes.insert_one({"_id": code.id, "user_id": code.user_id, "phone": code.phone,
                                    "code_hash": code.code_hash, "expires_at": code.expires_at, "tries": code.tries,
                                    "created_at": code.created_at, "used_at": code.used_at})

    async def latest(self, user_id: str) -> PhoneCode | None:
        async with self._store.collection(PHONE_CODES) as codes:
            # the unused code first: a used one may share its created_at
            newest = [("created_at", DESCENDING)]
            doc = await codes.find_one({"user_id": user_id, "used_at": None}, sort=newest) or \
                await codes.find_one({"user_id": user_id}, sort=newest)
        return _code(doc) if doc else None

    async def take_try(self, code_id: str, *, now: datetime) -> int | None:
        async with self._store.collection(PHONE_CODES) as codes:
            # the conditional write is the lock: however many tries race, at most MAX_TRIES match
            taken = await codes.find_one_and_update(
                {"_id": code_id, "used_at": None, "expires_at": {"$gt": now}, "tries": {"$lt": MAX_TRIES}},
                {"$inc": {"tries": 1}}, projection={"tries": 1}, return_document=ReturnDocument.AFTER)
        return int(taken["tries"]) if taken is not None else None

    async def use(self, code_id: str, *, now: datetime) -> bool:
        async with self._store.collection(PHONE_CODES) as codes:
            used = await codes.update_one({"_id": code_id, "used_at": None}, {"$set": {"used_at": now}})
        return used.modified_count == 1


__all__ = ["INDEXES", "MongoPhoneCodes", "MongoRefreshTokens", "MongoTwoFactorState", "MongoUsers"]
