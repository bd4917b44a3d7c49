"""Exception classes that print like Django's and psycopg2's in a traceback.

Python prints ``<module>.<qualname>: message`` for an uncaught exception, so
setting ``__module__`` is enough to make a stand-in traceback end exactly like
a real Zulip one (``django.db.utils.IntegrityError: duplicate key value ...``).
"""

from __future__ import annotations


class DatabaseError(Exception):
    pass


class IntegrityError(DatabaseError):
    pass


DatabaseError.__module__ = "django.db.utils"
IntegrityError.__module__ = "django.db.utils"


class UniqueViolation(Exception):
    pass


UniqueViolation.__module__ = "psycopg2.errors"


class CommandError(Exception):
    """manage.py prints these on stderr (no traceback) and exits 1."""


CommandError.__module__ = "django.core.management.base"


class ObjectDoesNotExist(Exception):
    pass


ObjectDoesNotExist.__module__ = "django.core.exceptions"


class MultipleObjectsReturned(Exception):
    pass


MultipleObjectsReturned.__module__ = "django.core.exceptions"
