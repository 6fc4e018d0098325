"""Accounts: passwords kept only as salted scrypt hashes, and a login check that slows repeated failures.

scrypt (the standard library's ``hashlib.scrypt``, n=2**14, r=8, p=1: 16 MiB and about 50 ms per check) is
memory-hard, so a stolen store cannot be guessed through fast on a GPU; each hash has its own 16-byte salt. The
login check answers the same for an unknown name and a wrong password, and spends the same hashing time on
both; after :data:`FREE_FAILURES` failures on one name, each further try waits twice as long as the last (up to
:data:`MAX_DELAY` seconds) before it is even checked, until a success or :data:`FORGET_AFTER` quiet seconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable

from tutor.errors import InputError
from tutor.progress.store import Store

N, R, P = 2**14, 8, 1  # scrypt cost: 16 MiB of memory per hash
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
MIN_PASSWORD = 8
FREE_FAILURES = 3  # tries on one name before each try waits
BASE_DELAY = 1.0  # seconds, doubled at each further failure
MAX_DELAY = 30.0
FORGET_AFTER = 15 * 60.0  # seconds without a failure on a name, after which its count restarts


def check_name(name: str) -> str:
    """``name`` if it can name an account (lower-case letters, digits, ``_.-``; up to 40); else an InputError."""
    if not NAME.fullmatch(name or ""):
        raise InputError(f"a user name is 1-40 lower-case letters, digits, '_', '.' or '-', got {name!r}")
    return name


def check_password(password: str) -> str:
    """``password`` if it is long enough; else an InputError."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """``scrypt$N$R$P$salt$hash`` (base64): what the store keeps instead of the password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(got, expected)


_DUMMY = hash_password(secrets.token_hex(16))  # an unknown name costs the same hashing as a wrong password


class Login:
    """Gradio's ``auth`` callback over a store: ``demo.launch(auth=Login(store).check)``.

    ``check`` is a coroutine (Gradio awaits it on its event loop): the hashing runs in a worker thread and the
    slow-down is an ``asyncio.sleep``, so a client being slowed never stalls the page for anyone else.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Check logins against ``store``; ``clock`` and ``sleep`` are injected for tests."""
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (failures in a row, time of the last)
        self._lock = threading.Lock()

    def delay(self, name: str) -> float:
        """How long a try on ``name`` waits now, in seconds."""
        with self._lock:
            count, last = self._failures.get(name, (0, 0.0))
        if count < FREE_FAILURES or self.clock() - last > FORGET_AFTER:
            return 0.0
        return min(MAX_DELAY, BASE_DELAY * 2 ** (count - FREE_FAILURES))

    async def check(self, name: str, password: str) -> bool:
        """Whether ``name`` and ``password`` match an account (a generic False, whichever part is wrong)."""
        wait = self.delay(name)
        if wait:
            await self.sleep(wait)
        ok = await asyncio.to_thread(self.verify, name, password)
        self._count(name, ok)
        return ok

    def verify(self, name: str, password: str) -> bool:
        """The check itself, without the slow-down."""
        user = self.store.user(name) if NAME.fullmatch(name or "") else None
        ok = verify_password(password, user.password if user else _DUMMY)
        return ok and user is not None

    def _count(self, name: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures.pop(name, None)
                return
            now = self.clock()
            count, last = self._failures.get(name, (0, now))
            self._failures[name] = (1 if now - last > FORGET_AFTER else count + 1, now)
            if len(self._failures) > 10_000:  # names tried at random must not grow memory without bound
                oldest = sorted(self._failures.items(), key=lambda kv: kv[1][1])[:5_000]
                for key, _ in oldest:
                    del self._failures[key]
