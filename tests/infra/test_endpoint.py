"""The local AWS endpoint's speed-ups of moto (infra.local.moto_patches) keep its answers (a DynamoDB Query reads one
partition, same results), and each refuses a moto it was not written for, naming itself."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from infra.local import endpoint, moto_patches
from infra.local.moto_patches import PINNED_MOTO, MotoPatchError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dynamodb():
    ready: queue.Queue = queue.Queue()
    threading.Thread(target=endpoint.serve, kwargs={"ready": ready.put}, daemon=True).start()
    fake = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return boto3.client("dynamodb", endpoint_url=ready.get(timeout=30), region_name="us-east-1", **fake)


def test_a_query_answers_as_moto_does_from_its_partition_only(dynamodb):
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "u", "KeyType": "HASH"}, {"AttributeName": "k", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("u", "k")],
        BillingMode="PAY_PER_REQUEST",
    )
    for u in ("a", "b", "requests#a"):
        for k in ("e#3", "e#1", "r#9", "e#2"):
            dynamodb.put_item(TableName="t", Item={"u": {"S": u}, "k": {"S": k}, "v": {"S": f"{u}/{k}"}})

    def query(**extra) -> list[str]:
        found = dynamodb.query(
            TableName="t",
            KeyConditionExpression="u = :u AND begins_with(k, :p)",
            ExpressionAttributeValues={":u": {"S": "a"}, ":p": {"S": "e#"}},
            ConsistentRead=True,
            **extra,
        )
        return [i["v"]["S"] for i in found["Items"]]

    assert query() == ["a/e#1", "a/e#2", "a/e#3"]
    assert query(ScanIndexForward=False) == ["a/e#3", "a/e#2", "a/e#1"]
    first = dynamodb.query(
        TableName="t", KeyConditionExpression="u = :u", ExpressionAttributeValues={":u": {"S": "a"}}, Limit=2
    )
    assert [i["k"]["S"] for i in first["Items"]] == ["e#1", "e#2"]
    rest = dynamodb.query(
        TableName="t",
        KeyConditionExpression="u = :u",
        ExpressionAttributeValues={":u": {"S": "a"}},
        ExclusiveStartKey=first["LastEvaluatedKey"],
    )
    assert [i["k"]["S"] for i in rest["Items"]] == ["e#3", "r#9"]
    empty = dynamodb.query(
        TableName="t", KeyConditionExpression="u = :u", ExpressionAttributeValues={":u": {"S": "nobody"}}
    )
    assert empty["Items"] == []
    assert len(dynamodb.scan(TableName="t")["Items"]) == 12  # the scan still sees every partition


def test_a_local_index_query_answers_as_moto_does_from_its_partition_only(dynamodb, monkeypatch):
    """The events table's index by storage time: newest first, Limit, items without the index key left out."""
    from moto.dynamodb.models.table import Table

    dynamodb.create_table(
        TableName="ev",
        KeySchema=[{"AttributeName": "u", "KeyType": "HASH"}, {"AttributeName": "k", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "u", "AttributeType": "S"},
            {"AttributeName": "k", "AttributeType": "S"},
            {"AttributeName": "t", "AttributeType": "N"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_t",
                "KeySchema": [{"AttributeName": "u", "KeyType": "HASH"}, {"AttributeName": "t", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for u in ("a", "b"):
        for k, t in (("e#3", 10), ("e#1", 30), ("e#2", 20)):
            dynamodb.put_item(TableName="ev", Item={"u": {"S": u}, "k": {"S": k}, "t": {"N": str(t)}})
    dynamodb.put_item(TableName="ev", Item={"u": {"S": "a"}, "k": {"S": "r#9"}})  # no index key: not in it
    seen: list[int] = []
    every = Table.all_items
    monkeypatch.setattr(Table, "all_items", lambda self: seen.append(len(got := every(self))) or got)

    def newest(limit: int) -> list[str]:
        found = dynamodb.query(
            TableName="ev",
            IndexName="by_t",
            KeyConditionExpression="u = :u",
            ExpressionAttributeValues={":u": {"S": "a"}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [i["k"]["S"] for i in found["Items"]]

    assert newest(2) == ["e#1", "e#2"]
    assert newest(10) == ["e#1", "e#2", "e#3"]
    assert seen and max(seen) == 4  # the partition's items only, not the table's 7


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb):
    """The items a transaction names are backed up instead of its tables (moto deep-copies every table named, per
    item): a cancelled one still changes nothing, a new item is gone again and an overwritten one is back."""
    from botocore.exceptions import ClientError

    dynamodb.create_table(
        TableName="tx",
        KeySchema=[{"AttributeName": "u", "KeyType": "HASH"}, {"AttributeName": "k", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("u", "k")],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="one",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="tx", Item={"u": {"S": "a"}, "k": {"S": "1"}, "v": {"S": "old"}})
    dynamodb.put_item(TableName="one", Item={"id": {"S": "taken"}, "v": {"S": "first"}})

    def put(table: str, item: dict, new: bool = False) -> dict:
        op = {"TableName": table, "Item": item}
        if new:
            op |= {"ConditionExpression": "attribute_not_exists(v)"}
        return {"Put": op}

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                put("tx", {"u": {"S": "a"}, "k": {"S": "1"}, "v": {"S": "new"}}),  # overwrites
                put("tx", {"u": {"S": "a"}, "k": {"S": "2"}, "v": {"S": "new"}}),  # adds
                {
                    "Update": {
                        "TableName": "one",
                        "Key": {"id": {"S": "other"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "x"}},
                    }
                },  # adds through an update
                put("one", {"id": {"S": "taken"}, "v": {"S": "second"}}, new=True),  # fails its condition
            ]
        )
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert [(i["k"]["S"], i["v"]["S"]) for i in dynamodb.scan(TableName="tx")["Items"]] == [("1", "old")]
    assert [(i["id"]["S"], i["v"]["S"]) for i in dynamodb.scan(TableName="one")["Items"]] == [("taken", "first")]
    # and one that succeeds writes all of it
    dynamodb.transact_write_items(
        TransactItems=[
            put("tx", {"u": {"S": "a"}, "k": {"S": "2"}, "v": {"S": "new"}}),
            put("one", {"id": {"S": "free"}, "v": {"S": "x"}}, new=True),
        ]
    )
    assert len(dynamodb.scan(TableName="tx")["Items"]) == 2 and len(dynamodb.scan(TableName="one")["Items"]) == 2


# ---------------------------------------------------------------------------------------------- the version guard


def test_the_pinned_moto_is_the_one_requirements_install():
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert f"moto[server]=={PINNED_MOTO}" in pins
    moto_patches.check_all()  # and the installed one passes every check


@pytest.mark.parametrize("name", sorted(moto_patches.PATCHES))
def test_each_patch_refuses_another_moto_version(name, monkeypatch):
    monkeypatch.setattr(moto_patches, "installed_moto_version", lambda: "5.3.0")
    with pytest.raises(MotoPatchError) as refused:
        moto_patches.PATCHES[name]()
    message = str(refused.value)
    assert message.startswith(f"patch {name!r} was written for moto {PINNED_MOTO} and relies on moto.")
    assert "found moto 5.3.0: refusing to start the local stack rather than answer wrong" in message


def _changed(self, key):  # a moto function whose parameters are not the ones the patch passes on
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("name", "owner", "attr"),
    [
        ("backend_lookup_cached", "moto.moto_server.werkzeug_app.DomainDispatcherApplication", "get_backend_for_host"),
        (
            "sqs_retention_reads_one_attribute",
            "moto.sqs.models.SQSBackend",
            "is_message_valid_based_on_retention_period",
        ),
        ("query_reads_one_partition", "moto.dynamodb.models.table.Table", "query"),
        ("transaction_backs_up_named_items", "moto.dynamodb.models.DynamoDBBackend", "transact_write_items"),
    ],
)
def test_each_patch_refuses_a_changed_signature(name, owner, attr, monkeypatch):
    cls = moto_patches._resolve(owner)
    monkeypatch.setattr(cls, attr, _changed)
    with pytest.raises(MotoPatchError) as refused:
        moto_patches.PATCHES[name]()
    message = str(refused.value)
    assert message.startswith(f"patch {name!r} was written for moto {PINNED_MOTO} and relies on {owner}.{attr}(self, ")
    assert f"found moto {PINNED_MOTO} with {owner}.{attr}(self, key): refusing to start" in message


def test_the_local_index_patch_refuses_a_moto_without_local_indexes(monkeypatch):
    import moto.dynamodb.models.table as table_module

    monkeypatch.delattr(table_module, "LocalSecondaryIndex")
    with pytest.raises(MotoPatchError, match=r"^patch 'local_index_query_reads_one_partition' .* with no moto"):
        moto_patches.local_index_query_reads_one_partition()


def test_a_missing_attribute_is_refused_too(monkeypatch):
    from moto.dynamodb.models.table import Table

    monkeypatch.delattr(Table, "all_items")
    with pytest.raises(MotoPatchError, match=r"^patch 'query_reads_one_partition' .* with no moto.*Table.all_items"):
        moto_patches.query_reads_one_partition()


def test_apply_all_applies_nothing_if_one_patch_refuses(monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    monkeypatch.setattr(moto_patches, "_applied", set())  # as in a fresh process (the patches are installed once)
    query = Table.query
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", _changed)  # the last patch refuses
    with pytest.raises(MotoPatchError, match=r"^patch 'transaction_backs_up_named_items'"):
        moto_patches.apply_all()
    assert moto_patches.applied() == set() and Table.query is query


def test_applying_twice_is_harmless(dynamodb):
    """Each patch is installed once; checked again, it looks through itself at moto's own functions."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    moto_patches.apply_all()
    assert moto_patches.applied() == set(moto_patches.PATCHES)
    installed = (Table.query, Table.all_items, DynamoDBBackend.transact_write_items)
    moto_patches.apply_all()
    assert (Table.query, Table.all_items, DynamoDBBackend.transact_write_items) == installed
    assert moto_patches._index_reads_partition and len(moto_patches._index_reads_partition) == 1
    dynamodb.create_table(
        TableName="twice",
        KeySchema=[{"AttributeName": "u", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "u", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="twice", Item={"u": {"S": "a"}})
    found = dynamodb.query(
        TableName="twice", KeyConditionExpression="u = :u", ExpressionAttributeValues={":u": {"S": "a"}}
    )
    assert found["Items"] == [{"u": {"S": "a"}}]


def test_the_endpoint_refuses_to_start_on_another_moto(monkeypatch, capsys):
    monkeypatch.setattr(moto_patches, "installed_moto_version", lambda: "5.3.0")
    assert endpoint.main(["--port", "0"]) == 3
    said = capsys.readouterr().out
    assert said.startswith("FAILED MotoPatchError: patch 'backend_lookup_cached' was written for moto ")


def test_the_local_stack_cli_refuses_to_start_on_another_moto(fake_artifact, tmp_path):
    """``python -m infra.local`` says which patch refused and exits 2: one line, no traceback, nothing left running."""
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n"
        "_version = m.version\n"
        "m.version = lambda name: '5.3.0' if name == 'moto' else _version(name)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "RECOMMENDER_LOCAL_CONNECTION": str(tmp_path / "local-stack.json"),
    }
    cmd = [sys.executable, "-m", "infra.local", "--port", "0", "--artifact", str(fake_artifact), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode == 2, stderr
    assert stderr.startswith(
        f"error: MotoPatchError: patch 'backend_lookup_cached' was written for moto {PINNED_MOTO} and relies on "
    ), stderr
    assert "found moto 5.3.0: refusing to start the local stack rather than answer wrong" in stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    with pytest.raises(ProcessLookupError):  # its endpoint processes too are gone
        os.killpg(proc.pid, 0)
