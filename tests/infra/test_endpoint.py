"""The local AWS endpoint's speed-ups of moto keep its answers: a DynamoDB Query reads one partition, same results."""

from __future__ import annotations

import queue
import threading

import boto3
import pytest

from infra.local import endpoint


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
