"""A small Django-ORM look-alike over the stand-in's sqlite database.

Enough of ``Model.objects`` for the one-liners operators run through
``manage.py shell -c``: all/filter/exclude/get/create, iteration, count,
exists, delete (returning Django's ``(n, {"zerver.Model": n})``),
values_list/values, first/last, order_by, and ``field__lookup`` filters.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from . import db, fakes

_local = threading.local()
_state: dict[str, str | None] = {"db_path": None}


class FieldError(Exception):
    pass


FieldError.__module__ = "django.core.exceptions"


def configure(db_path: str) -> None:
    _state["db_path"] = db_path


def connection() -> sqlite3.Connection:
    path = _state["db_path"]
    if path is None:
        from .config import load_config  # the deployed stand-in's own database

        path = load_config().db_path
        _state["db_path"] = path
    cached = getattr(_local, "conns", {})
    if path not in cached:
        cached[path] = db.connect(path)
        _local.conns = cached
    return cached[path]


@dataclass(frozen=True)
class Meta:
    table: str
    object_name: str
    columns: tuple[str, ...]
    lookups: dict[str, str]  # Django lookup path -> SQL expression
    unique_name: str | None = None  # PostgreSQL's name for the unique constraint
    unique_columns: tuple[str, ...] = ()
    has_realm: bool = False

    @property
    def label(self) -> str:
        return f"zerver.{self.object_name}"


def _realm_lookups() -> dict[str, str]:
    return {"realm": "t.realm_id", "realm_id": "t.realm_id", "realm__id": "t.realm_id",
            "realm__string_id": "r.string_id", "realm__name": "r.name"}


_SUFFIXES: dict[str, str] = {
    "exact": "{col} = ?", "iexact": "{col} = ? COLLATE NOCASE", "contains": "{col} LIKE ? ESCAPE '\\'",
    "icontains": "{col} LIKE ? ESCAPE '\\'", "startswith": "{col} LIKE ? ESCAPE '\\'",
    "gt": "{col} > ?", "gte": "{col} >= ?", "lt": "{col} < ?", "lte": "{col} <= ?",
}


def _like(value: str, suffix: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if suffix == "startswith" else f"%{escaped}%"


def _plain(value: Any) -> Any:
    if isinstance(value, Model):
        return value.id
    if isinstance(value, bool):
        return int(value)
    return value


class QuerySet:
    def __init__(self, model: type[Model], where: tuple[str, ...] = (), params: tuple[Any, ...] = (),
                 order: tuple[str, ...] = ("t.id",)) -> None:
        self.model = model
        self._where = where
        self._params = params
        self._order = order

    # -- building
    def _column(self, path: str) -> str:
        lookups = self.model._meta.lookups
        if path not in lookups:
            choices = ", ".join(sorted(k for k in lookups if "__" not in k))
            raise FieldError(f"Cannot resolve keyword '{path}' into field. Choices are: {choices}")
        return lookups[path]

    def _condition(self, key: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        path, _, suffix = key.rpartition("__")
        if not path or suffix not in (*_SUFFIXES, "in", "isnull"):
            path, suffix = key, "exact"
        col = self._column(path)
        if suffix == "in":
            values = [_plain(v) for v in value]
            if not values:
                return "0", ()
            return f"{col} IN ({', '.join('?' * len(values))})", tuple(values)
        if suffix == "isnull":
            return (f"{col} IS NULL" if value else f"{col} IS NOT NULL"), ()
        if value is None and suffix == "exact":
            return f"{col} IS NULL", ()
        if suffix in ("contains", "icontains", "startswith"):
            return _SUFFIXES[suffix].format(col=col), (_like(str(value), suffix),)
        return _SUFFIXES[suffix].format(col=col), (_plain(value),)

    def _with(self, negate: bool, kwargs: dict[str, Any]) -> QuerySet:
        where, params = list(self._where), list(self._params)
        parts, part_params = [], []
        for key, value in kwargs.items():
            sql, values = self._condition(key, value)
            parts.append(sql)
            part_params.extend(values)
        if parts:
            joined = " AND ".join(f"({p})" for p in parts)
            where.append(f"NOT ({joined})" if negate else joined)
            params.extend(part_params)
        return QuerySet(self.model, tuple(where), tuple(params), self._order)

    def all(self) -> QuerySet:
        return QuerySet(self.model, self._where, self._params, self._order)

    def filter(self, **kwargs: Any) -> QuerySet:
        return self._with(False, kwargs)

    def exclude(self, **kwargs: Any) -> QuerySet:
        return self._with(True, kwargs)

    def none(self) -> QuerySet:
        return QuerySet(self.model, (*self._where, "0"), self._params, self._order)

    def order_by(self, *fields: str) -> QuerySet:
        order = tuple(f"{self._column(f.lstrip('-'))} {'DESC' if f.startswith('-') else 'ASC'}" for f in fields)
        return QuerySet(self.model, self._where, self._params, order or ("t.id",))

    # -- running
    def _from(self) -> str:
        join = " LEFT JOIN zerver_realm r ON r.id = t.realm_id" if self.model._meta.has_realm else ""
        return f"FROM {self.model._meta.table} t{join}"

    def _sql(self, select: str, ordered: bool = True) -> str:
        where = f" WHERE {' AND '.join(self._where)}" if self._where else ""
        order = f" ORDER BY {', '.join(self._order)}" if ordered else ""
        return f"SELECT {select} {self._from()}{where}{order}"

    def _rows(self, select: str) -> list[sqlite3.Row]:
        return connection().execute(self._sql(select), self._params).fetchall()

    def __iter__(self) -> Iterator[Model]:
        cols = ", ".join(f"t.{c}" for c in self.model._meta.columns)
        return iter([self.model._from_row(row) for row in self._rows(cols)])

    def __len__(self) -> int:
        return self.count()

    def __bool__(self) -> bool:
        return self.exists()

    def __getitem__(self, index: int | slice) -> Any:
        return list(self)[index]

    def __repr__(self) -> str:
        items = list(self)
        shown = ", ".join(repr(i) for i in items[:20])
        if len(items) > 20:
            shown += ", '...(remaining elements truncated)...'"
        return f"<QuerySet [{shown}]>"

    def count(self) -> int:
        return int(connection().execute(self._sql("COUNT(*)", ordered=False), self._params).fetchone()[0])

    def exists(self) -> bool:
        return self.count() > 0

    def first(self) -> Model | None:
        items = list(self)
        return items[0] if items else None

    def last(self) -> Model | None:
        items = list(self)
        return items[-1] if items else None

    def get(self, **kwargs: Any) -> Model:
        items = list(self.filter(**kwargs))
        name = self.model._meta.object_name
        if not items:
            raise self.model.DoesNotExist(f"{name} matching query does not exist.")
        if len(items) > 1:
            raise self.model.MultipleObjectsReturned(
                f"get() returned more than one {name} -- it returned {len(items)}!")
        return items[0]

    def create(self, **kwargs: Any) -> Model:
        return self.model._insert(kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        ids = [row[0] for row in self._rows("t.id")]
        if not ids:
            return 0, {}  # Django leaves zero counts out
        table = self.model._meta.table
        connection().execute(f"DELETE FROM {table} WHERE id IN ({', '.join('?' * len(ids))})", ids)
        return len(ids), {self.model._meta.label: len(ids)}

    def values_list(self, *fields: str, flat: bool = False) -> ValuesList:
        if flat and len(fields) > 1:
            raise TypeError("'flat' is not valid when values_list is called with more than one field.")
        names = fields or self.model._meta.columns
        rows = self._rows(", ".join(self._column(f) for f in names))
        if flat:
            return ValuesList(row[0] for row in rows)
        return ValuesList(tuple(row) for row in rows)

    def values(self, *fields: str) -> ValuesList:
        names = fields or self.model._meta.columns
        rows = self._rows(", ".join(self._column(f) for f in names))
        return ValuesList(dict(zip(names, tuple(row), strict=True)) for row in rows)


class ValuesList(list):  # type: ignore[type-arg]
    """What values_list()/values() hand back: a list that prints like a QuerySet."""

    def __repr__(self) -> str:
        return f"<QuerySet {list.__repr__(self)}>"

    def exists(self) -> bool:
        return bool(self)

    def count(self, *args: Any) -> int:  # type: ignore[override]
        return len(self) if not args else list.count(self, *args)

    def first(self) -> Any:
        return self[0] if self else None


class Manager:
    def __init__(self, model: type[Model]) -> None:
        self.model = model

    def get_queryset(self) -> QuerySet:
        return QuerySet(self.model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get_queryset(), name)


class Model:
    _meta: ClassVar[Meta]
    objects: ClassVar[Manager]
    DoesNotExist: ClassVar[type[Exception]]
    MultipleObjectsReturned: ClassVar[type[Exception]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__module__ = "zerver.models"
        cls.DoesNotExist = _exception_class(cls.__name__, "DoesNotExist", fakes.ObjectDoesNotExist)
        cls.MultipleObjectsReturned = _exception_class(
            cls.__name__, "MultipleObjectsReturned", fakes.MultipleObjectsReturned)
        cls.objects = Manager(cls)

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Model:
        return cls(**{name: row[i] for i, name in enumerate(cls._meta.columns)})

    @classmethod
    def _insert(cls, values: dict[str, Any]) -> Model:
        if "realm" in values:
            values["realm_id"] = _plain(values.pop("realm"))
        cols = [c for c in cls._meta.columns if c in values]
        sql = f"INSERT INTO {cls._meta.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            try:
                cur = connection().execute(sql, [_plain(values[c]) for c in cols])
            except sqlite3.IntegrityError as exc:
                raise fakes.UniqueViolation(cls._integrity_message(values, exc)) from None
        except fakes.UniqueViolation as cause:
            # Django wraps psycopg2's error: "The above exception was the direct cause ..."
            raise fakes.IntegrityError(str(cause)) from cause
        return cls.objects.get(id=cur.lastrowid)

    @classmethod
    def _integrity_message(cls, values: dict[str, Any], exc: sqlite3.IntegrityError) -> str:
        meta = cls._meta
        if "UNIQUE" not in str(exc) or meta.unique_name is None:
            return str(exc)
        key = ", ".join(meta.unique_columns)
        vals = ", ".join(str(_plain(values.get(c))) for c in meta.unique_columns)
        return (f'duplicate key value violates unique constraint "{meta.unique_name}"\n'
                f"DETAIL:  Key ({key})=({vals}) already exists.\n")

    def delete(self) -> tuple[int, dict[str, int]]:
        return type(self).objects.filter(id=self.id).delete()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and getattr(other, "id", None) == getattr(self, "id", None)

    def __hash__(self) -> int:
        return hash((type(self).__name__, getattr(self, "id", None)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"


def _exception_class(model_name: str, name: str, base: type[Exception]) -> type[Exception]:
    klass = type(name, (base,), {})
    klass.__qualname__ = f"{model_name}.{name}"
    klass.__module__ = "zerver.models"
    return klass


class Realm(Model):
    _meta = Meta(
        table="zerver_realm", object_name="Realm", columns=("id", "string_id", "name", "deactivated"),
        lookups={"id": "t.id", "pk": "t.id", "string_id": "t.string_id", "name": "t.name",
                 "deactivated": "t.deactivated"},
    )
    SUBDOMAIN_FOR_ROOT_DOMAIN = ""
    id: int
    string_id: str
    name: str
    deactivated: int

    def __str__(self) -> str:
        return f"{self.string_id} {self.id}"


class _RealmMember(Model):
    realm_id: int

    @property
    def realm(self) -> Realm:
        return Realm.objects.get(id=self.realm_id)  # type: ignore[return-value]


class SCIMClient(_RealmMember):
    _meta = Meta(
        table="zerver_scimclient", object_name="SCIMClient", columns=("id", "realm_id", "name"),
        lookups={"id": "t.id", "pk": "t.id", "name": "t.name", **_realm_lookups()},
        unique_name="zerver_scimclient_realm_id_name_f2a1b3c4_uniq", unique_columns=("realm_id", "name"),
        has_realm=True,
    )
    id: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} {self.realm_id}"


class CustomProfileField(_RealmMember):
    _meta = Meta(
        table="zerver_customprofilefield", object_name="CustomProfileField",
        columns=("id", "realm_id", "name", "field_type"),
        lookups={"id": "t.id", "pk": "t.id", "name": "t.name", "field_type": "t.field_type", **_realm_lookups()},
        unique_name="zerver_customprofilefield_realm_id_name_3a9f2c1d_uniq", unique_columns=("realm_id", "name"),
        has_realm=True,
    )
    id: int
    name: str
    field_type: int

    def __str__(self) -> str:
        return f"{self.name}"


class UserProfile(_RealmMember):
    _meta = Meta(
        table="zerver_userprofile", object_name="UserProfile",
        columns=("id", "realm_id", "delivery_email", "full_name", "is_active", "role", "date_joined"),
        lookups={"id": "t.id", "pk": "t.id", "delivery_email": "t.delivery_email", "email": "t.delivery_email",
                 "full_name": "t.full_name", "is_active": "t.is_active", "role": "t.role", **_realm_lookups()},
        unique_name="zerver_userprofile_realm_id_delivery_email_7d2e6b1a_uniq",
        unique_columns=("realm_id", "delivery_email"), has_realm=True,
    )
    ROLE_REALM_OWNER, ROLE_REALM_ADMINISTRATOR = db.ROLE_OWNER, db.ROLE_ADMIN
    ROLE_MODERATOR, ROLE_MEMBER, ROLE_GUEST = db.ROLE_MODERATOR, db.ROLE_MEMBER, db.ROLE_GUEST
    id: int
    delivery_email: str
    full_name: str

    @property
    def email(self) -> str:
        return self.delivery_email

    def __str__(self) -> str:
        return f"{self.delivery_email} {self.realm_id}"


def get_realm(string_id: str) -> Realm:
    return Realm.objects.get(string_id=string_id)  # type: ignore[return-value]


def get_user_by_delivery_email(email: str, realm: Realm) -> UserProfile:
    return UserProfile.objects.get(delivery_email__iexact=email, realm=realm)  # type: ignore[return-value]
