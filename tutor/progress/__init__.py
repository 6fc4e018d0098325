"""Student progress: accounts, every answer, spaced-repetition cards (FSRS) and mastery, in SQLite or PostgreSQL.

    >>> from tutor.progress import open_store
    >>> store = open_store()          # TA_DATABASE_URL's PostgreSQL, else data_dir()/progress.db
    >>> store.users()                 # [User(name='ada', teacher=False, ...)]

Nothing heavy is imported here: fsrs loads when a card is scheduled, psycopg when a PostgreSQL URL is opened.
"""

from tutor.progress.store import (
    AccessError,
    Attempt,
    CardRecord,
    NotSavedError,
    ProgressError,
    QuizRecord,
    Store,
    User,
    default_path,
    open_store,
)

__all__ = [
    "AccessError",
    "Attempt",
    "CardRecord",
    "NotSavedError",
    "ProgressError",
    "QuizRecord",
    "Store",
    "User",
    "default_path",
    "open_store",
]
