"""The local AWS endpoint's speed-ups of moto: one function per patch, each refusing a moto it was not written for.

moto's server answers like AWS but pays per-call costs that dominate under load (measured on moto 5.2 with
cProfile); each patch below removes one and keeps the answers. They replace moto internals, so each states what it
relies on and, when applied, checks it first: the installed moto is the version the patch was written for
(:data:`PINNED_MOTO`, the one in requirements.txt) and the functions it replaces or calls still exist with the
parameters it expects (:func:`inspect.signature`) and the attributes it reads are still there. Any other moto makes
the patch raise :class:`MotoPatchError` naming it, and the local stack refuses to start rather than answer wrong.
To move to another moto: re-read each patch against its source, re-run ``tests/infra/test_endpoint.py`` (it
compares patched answers with moto's own) and then change :data:`PINNED_MOTO` with requirements.txt.

:func:`apply_all` checks every patch before it applies any, then applies them in order; applying again is harmless
(each is installed once; the checks run again and look through the patches at moto's own functions).

moto is imported only when a patch is checked or applied: importing this module costs nothing.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import importlib
import importlib.metadata
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

PINNED_MOTO = "5.2.5"  # the moto these patches were written for and measured on (requirements.txt pins the same)

_TABLE = "moto.dynamodb.models.table.Table"
_BACKEND = "moto.dynamodb.models.DynamoDBBackend"
# Table.query's leading parameters, which the partition patch passes through by position (index_name among them)
_QUERY_PARAMS = (
    "self",
    "hash_key",
    "range_comparison",
    "range_objs",
    "limit",
    "exclusive_start_key",
    "scan_index_forward",
    "projection_expressions",
    "index_name",
)


class MotoPatchError(RuntimeError):
    """A patch found a moto other than the one it was written for; the message names the patch."""


def installed_moto_version() -> str:
    """The installed moto's version (a function, so that tests can fake another)."""
    return importlib.metadata.version("moto")


# ---------------------------------------------------------------------------------------------- what a patch needs


def _resolve(path: str) -> Any:
    """The object at a dotted path (``package.module.Class.attr``); AttributeError or ImportError if it is gone."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            if i == 1:
                raise
            continue
        for name in parts[i:]:
            found = getattr(found, name)
        return found
    raise ImportError(path)  # pragma: no cover (the loop returns or raises)


@dataclass(frozen=True)
class Need:
    """One thing a patch relies on: ``what`` for the message, ``problem()`` None when moto still has it."""

    what: str
    problem: Callable[[], str | None]


def signature(path: str, *params: str, more: bool = True) -> Need:
    """A function or method whose parameters start with ``params`` (exactly these, when ``more`` is False)."""
    shown = ", ".join(params) + (", ..." if more else "")

    def problem() -> str | None:
        try:
            target = _resolve(path)
            names = tuple(inspect.signature(target).parameters)  # follows __wrapped__: moto's own, once patched
        except (AttributeError, ImportError):
            return f"no {path}"
        except (TypeError, ValueError):
            return f"{path} without a readable signature"
        if names[: len(params)] != params or (not more and len(names) != len(params)):
            return f"{path}({', '.join(names)})"
        return None

    return Need(f"{path}({shown})", problem)


def attribute(path: str) -> Need:
    """A module, class, function or class attribute that must exist."""

    def problem() -> str | None:
        try:
            _resolve(path)
        except (AttributeError, ImportError):
            return f"no {path}"
        return None

    return Need(path, problem)


def assigned_in_init(path: str, *names: str) -> Need:
    """Instance attributes a class's ``__init__`` sets (not on the class: read from its code's names)."""

    def problem() -> str | None:
        try:
            code = inspect.unwrap(_resolve(path).__init__).__code__
        except (AttributeError, ImportError):
            return f"no {path}.__init__"
        missing = [n for n in names if n not in code.co_names]
        return f"{path}.__init__ not setting {', '.join(missing)}" if missing else None

    return Need(f"{path}.__init__ setting {', '.join(names)}", problem)


def refers_to(path: str, *names: str) -> Need:
    """A function whose code still uses these names (globals or attributes it calls)."""

    def problem() -> str | None:
        try:
            code = inspect.unwrap(_resolve(path)).__code__
        except (AttributeError, ImportError):
            return f"no {path}"
        missing = [n for n in names if n not in code.co_names]
        return f"{path} not using {', '.join(missing)}" if missing else None

    return Need(f"{path} using {', '.join(names)}", problem)


def contains(path: str, value: Any) -> Need:
    """A collection (a class attribute) that holds ``value``."""

    def problem() -> str | None:
        try:
            found = _resolve(path)
        except (AttributeError, ImportError):
            return f"no {path}"
        try:
            held = value in found
        except TypeError:
            held = False
        return None if held else f"{path} without {value!r}"

    return Need(f"{path} holding {value!r}", problem)


# ---------------------------------------------------------------------------------------------- the patch registry

_lock = threading.RLock()
_applied: set[str] = set()


class Patch:
    """One speed-up: ``patch()`` checks moto and installs it once; ``patch.check()`` only checks."""

    def __init__(self, install: Callable[[], None], needs: Iterable[Need], after: tuple[str, ...] = ()) -> None:
        functools.update_wrapper(self, install)
        self.name = install.__name__
        self.install = install
        self.needs = tuple(needs)
        self.after = after  # patches it builds on, applied first

    def check(self) -> None:
        """Raise MotoPatchError unless the installed moto is the one written for, with everything relied on."""
        more = len(self.needs) - 1
        relies = self.needs[0].what + (f" (and {more} more moto internals)" if more > 0 else "")
        found = installed_moto_version()
        if found != PINNED_MOTO:
            raise MotoPatchError(
                f"patch {self.name!r} was written for moto {PINNED_MOTO} and relies on {relies}; found moto {found}: "
                "refusing to start the local stack rather than answer wrong"
            )
        for need in self.needs:
            problem = need.problem()
            if problem is not None:
                raise MotoPatchError(
                    f"patch {self.name!r} was written for moto {PINNED_MOTO} and relies on {need.what}; found moto "
                    f"{found} with {problem}: refusing to start the local stack rather than answer wrong"
                )

    def __call__(self) -> None:
        with _lock:
            self.check()
            for name in self.after:
                PATCHES[name]()
            if self.name not in _applied:
                self.install()
                _applied.add(self.name)

    def __repr__(self) -> str:
        return f"<moto patch {self.name}>"


PATCHES: dict[str, Patch] = {}


def moto_patch(*needs: Need, after: tuple[str, ...] = ()) -> Callable[[Callable[[], None]], Patch]:
    """Register the decorated function as a patch relying on ``needs`` (the version check is implied)."""

    def register(install: Callable[[], None]) -> Patch:
        patch = Patch(install, needs, after)
        PATCHES[patch.name] = patch
        return patch

    return register


def check_all() -> None:
    """Check every patch against the installed moto (MotoPatchError naming the first that refuses)."""
    for patch in PATCHES.values():
        patch.check()


def apply_all() -> None:
    """Check every patch, then apply them all (none is applied if one refuses); harmless to repeat."""
    with _lock:
        check_all()
        for patch in PATCHES.values():
            patch()


def applied() -> set[str]:
    """The names of the patches installed in this process."""
    return set(_applied)


# ---------------------------------------------------------------------------------------------- the patches


@moto_patch(signature("moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host", "self", "host"))
def backend_lookup_cached() -> None:
    """moto's server finds the backend for every request by host, listing moto's package directory each time (about
    145 ``stat`` calls, 1.4 ms a call). The answer for a host never changes while the server runs: the patch caches
    it per dispatcher and host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lookup = DomainDispatcherApplication.get_backend_for_host

    @functools.wraps(lookup)
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache = self.__dict__.setdefault("_moto_patches_backends", {})
        if host not in cache:
            cache[host] = lookup(self, host)
        return cache[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


@moto_patch(
    signature("moto.sqs.models.SQSBackend.is_message_valid_based_on_retention_period", "self", "queue_name", "message"),
    signature("moto.sqs.models.SQSBackend.get_queue", "self", "queue_name"),
    contains("moto.sqs.models.Queue.BASE_ATTRIBUTES", "MessageRetentionPeriod"),
    assigned_in_init("moto.sqs.models.Message", "sent_timestamp"),
)
def sqs_retention_reads_one_attribute() -> None:
    """moto checks each message it receives against its queue's retention period by computing every attribute of the
    queue (counting its messages) and keeping one. The patch reads the queue's ``message_retention_period`` (set
    from ``MessageRetentionPeriod`` with the others) directly; a message past it is left out, as before."""
    from moto.sqs.models import SQSBackend

    @functools.wraps(SQSBackend.is_message_valid_based_on_retention_period)
    def retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return period + message.sent_timestamp / 1000 > time.time()

    SQSBackend.is_message_valid_based_on_retention_period = retained


# (table, hash key) whose partition Table.all_items answers with, while a Query on it runs (per request thread)
_partition: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar("partition", default=None)
_index_reads_partition: list[Callable[[Any, str], bool]] = []  # set by the local index patch


@moto_patch(
    signature(f"{_TABLE}.query", *_QUERY_PARAMS),
    signature(f"{_TABLE}.all_items", "self", more=False),
    refers_to(f"{_TABLE}.query", "all_items"),
    assigned_in_init(_TABLE, "items", "range_key_attr"),
)
def query_reads_one_partition() -> None:
    """moto answers a DynamoDB Query from ``Table.all_items()``: every item of the table, sorted (3 ms at 500 items,
    11 ms at 2,000 in other partitions), then filtered to the partition. DynamoDB itself reads only the partition.
    While a Query on the table's key runs, the patch has ``all_items`` answer with the partition's items only,
    sorted by range key as before (nothing for a partition that does not exist, without creating it). A Query on an
    index reads every item as before (see :func:`local_index_query_reads_one_partition`); a Scan is untouched."""
    from moto.dynamodb.models.table import Table

    every_item, query = Table.all_items, Table.query
    index_at = _QUERY_PARAMS.index("index_name") - 2  # in *args, after self and hash_key

    @functools.wraps(every_item)
    def all_items(self: Table) -> list:
        only = _partition.get()
        if only is None or only[0] is not self:
            return every_item(self)
        if only[1] not in self.items:  # not self.items[...]: a defaultdict would grow an empty partition
            return []
        found = self.items[only[1]]
        return sorted(found.values(), key=lambda x: x.range_key) if self.range_key_attr else [found]

    @functools.wraps(query)
    def keyed_query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[index_at] if len(args) > index_at else kwargs.get("index_name")
        by_partition = index_name is None or any(reads(self, index_name) for reads in _index_reads_partition)
        token = _partition.set((self, hash_key) if by_partition and hash_key is not None else None)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _partition.reset(token)

    Table.all_items, Table.query = all_items, keyed_query


@moto_patch(
    assigned_in_init(_TABLE, "indexes"),
    assigned_in_init("moto.dynamodb.models.table.SecondaryIndex", "name"),
    attribute("moto.dynamodb.models.table.LocalSecondaryIndex"),
    after=("query_reads_one_partition",),
)
def local_index_query_reads_one_partition() -> None:
    """A Query on a local secondary index also reads every item of the table in moto. A local index shares the
    table's partition key, so its items are the partition's: with this patch, such a Query (its index among the
    table's ``indexes``, moto's local ones) reads the partition only, through
    :func:`query_reads_one_partition` (applied first). A global index has its own key: it still reads every item."""
    _index_reads_partition.append(lambda table, index_name: any(i.name == index_name for i in table.indexes))


# true while a transaction whose items are backed up runs: moto's table copies are skipped then
_items_backed_up: contextvars.ContextVar[bool] = contextvars.ContextVar("items_backed_up", default=False)


@moto_patch(
    signature(f"{_BACKEND}.transact_write_items", "self", "transact_items", more=False),
    refers_to(f"{_BACKEND}.transact_write_items", "copy", "deepcopy"),
    attribute("moto.dynamodb.models.copy.deepcopy"),
    assigned_in_init(_BACKEND, "tables"),
    signature(f"{_TABLE}.get_item", "self", "hash_key", "range_key"),
    signature(f"{_TABLE}.delete_item", "self", "hash_key", "range_key"),
    assigned_in_init(_TABLE, "items", "hash_key_attr", "range_key_attr"),
    attribute("moto.dynamodb.models.dynamo_type.DynamoType"),
    assigned_in_init("moto.dynamodb.exceptions.TransactionCanceledException", "description"),
)
def transaction_backs_up_named_items() -> None:
    """moto's TransactWriteItems deep-copies every table it names, once per item, to put the tables back if it fails:
    the cost grows with the tables (the load test fell from 15 to 4 requests/s as they filled). The patch backs up
    the items the transaction names instead (``copy.deepcopy`` as moto's DynamoDB models see it skips tables while
    it runs) and, if the transaction is cancelled, puts back those moto wrote (cancellation reason ``None``, not a
    ConditionCheck); after any other error part-way, all of them. A backup stays true only while no other
    transaction writes the same items, so transactions run one at a time (moto's own backup had the same race).
    A malformed call that the backup cannot read goes to moto's own path, which validates it and answers."""
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TableCopy:
        """``copy`` as moto's DynamoDB models see it: a table is not copied inside a transaction whose items are
        backed up (moto's rollback then puts back the same table object, and ``transact`` restores the items)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        def deepcopy(self, x: Any, memo: dict | None = None) -> Any:
            return x if isinstance(x, Table) and _items_backed_up.get() else copy.deepcopy(x, memo)

    transact_write_items = DynamoDBBackend.transact_write_items

    def backup(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple]:
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            attrs = op.get("Key") or op["Item"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        return saved

    def restore(saved: list[tuple]) -> None:
        for table, hash_key, range_key, item in reversed(saved):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is None:
                table.items[hash_key] = item
            else:
                table.items[hash_key][range_key] = item

    one_at_a_time = threading.Lock()

    @functools.wraps(transact_write_items)
    def transact(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with one_at_a_time:
            try:
                saved = backup(self, transact_items)
            except Exception:  # a malformed call: moto's own path validates it and answers
                return transact_write_items(self, transact_items)
            token = _items_backed_up.set(True)
            try:
                return transact_write_items(self, transact_items)
            except TransactionCanceledException as exc:
                # put back only what moto applied (reason "None"); a failed condition or a ConditionCheck wrote nothing
                reasons = json.loads(exc.description)["CancellationReasons"]
                restore(
                    [
                        item
                        for item, reason, entry in zip(saved, reasons, transact_items, strict=True)
                        if reason.get("Code") == "None" and "ConditionCheck" not in entry
                    ]
                )
                raise
            except Exception:  # a validation error part-way: moto applied what came before it
                restore(saved)
                raise
            finally:
                _items_backed_up.reset(token)

    dynamodb_models.copy = TableCopy()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact
