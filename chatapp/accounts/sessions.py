"""The session engine (`SESSION_ENGINE`): Django's database sessions, read with one prepared
statement. Every request of a signed-in person loads its session first; through the ORM that
SELECT cost ~0.5 ms of a send's ~10 ms (bench "turn cost", docs/ARCHITECTURE.md).

Sessions signed in before `accounts.backends.PersonBackend` replaced Django's ModelBackend
name the old backend; they are read as naming the new one (it is the same check), so nobody is
signed out by the change.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from .backends import PERSON_BACKEND

_EARLIER_BACKEND = "django.contrib.auth.backends.ModelBackend"
_LOAD_SQL = "SELECT {data} FROM {table} WHERE {key} = %s AND {expiry} > %s"


# Session data already verified, by the signed string and the keys it was checked against:
# its payload as the serializer wrote it. Every request of a signed-in person decodes its
# session (two HMACs, base64, zlib: 77 of the 471 calls of reading who they are), and the
# string changes only when the session does. A hit is parsed again, so each request gets
# objects of its own to change. Bounded: emptied when full.
_VERIFIED: dict[tuple[bytes | str, str, tuple[str | bytes, ...]], bytes] = {}
_VERIFIED_MAX = 4096


class SessionStore(db.SessionStore):
    def decode(self, session_data: bytes | str) -> dict[str, Any]:
        key = (session_data, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
        serializer = self.serializer()
        payload = _VERIFIED.get(key)
        if payload is not None:
            decoded: dict[str, Any] = serializer.loads(payload)
            return decoded
        decoded = super().decode(session_data)
        if decoded:  # verified: a bad or empty session is decoded (and logged) every time
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[key] = serializer.dumps(decoded)
        return decoded

    def _get_session_from_db(self) -> Session | None:
        if self.session_key is None:
            return None
        meta = Session._meta
        quote = connection.ops.quote_name
        sql = _LOAD_SQL.format(
            data=quote("session_data"),
            table=quote(meta.db_table),
            key=quote("session_key"),
            expiry=quote("expire_date"),
        )
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return Session(session_key=self.session_key, session_data=row[0])

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = super().load()
        if data.get(BACKEND_SESSION_KEY) == _EARLIER_BACKEND:
            data[BACKEND_SESSION_KEY] = PERSON_BACKEND
        return data
