"""``Personify.ingest``: invalid messages are named by where they came from."""

from __future__ import annotations

from tests.unit.helpers import memory_engine

GOOD = {"type": "track", "userId": "u1", "event": "E"}
BAD_TIME = {"type": "track", "userId": "u1", "event": "E", "timestamp": "yesterday"}


def test_problems_name_the_line_the_caller_gives_not_a_chunk_position() -> None:
    p, _ = memory_engine()
    messages = [{**GOOD, "messageId": f"m{i}"} for i in range(5)]
    messages[3] = {**BAD_TIME, "messageId": "bad"}
    lines = [1, 2, 4, 1303, 1304]  # e.g. blank and unparseable lines skipped in the file
    result = p.ingest(messages, "import:ndjson", batch_size=2, locate=lambda i: f"line {lines[i]}")
    assert result.accepted == 4
    [item] = result.quarantined
    assert item["index"] == 3  # the position in the whole input, not in its chunk
    assert [q["field"] for q in item["problems"]] == ["line 1303: timestamp"]
    assert item["reason"].startswith("line 1303: ") and "batch[" not in item["reason"]
    [kept] = p.quarantined("quarantined", 10)
    assert kept["reason"] == item["reason"] and kept["problems"] == item["problems"]


def test_a_message_that_is_not_an_object_is_named_by_its_line_too() -> None:
    p, _ = memory_engine()
    result = p.ingest(["text"], "import", locate=lambda i: f"line {i + 7}")
    [item] = result.quarantined
    assert [q["field"] for q in item["problems"]] == ["line 7"]
    assert item["reason"].startswith("line 7: ")


def test_without_locate_the_index_still_counts_across_chunks() -> None:
    p, _ = memory_engine()
    messages = [{**GOOD, "messageId": f"m{i}"} for i in range(4)] + [{"type": "track"}]
    result = p.ingest(messages, "import", batch_size=2)
    assert [q["index"] for q in result.quarantined] == [4]
