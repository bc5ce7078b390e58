"""The SSE decoder and event typing, line by line."""

from __future__ import annotations

from parallel_tools import ErrorEvent, ProgressStatsEvent, RunStateEvent, UnknownEvent
from parallel_tools._sse import SSEDecoder, parse_group_event, parse_run_event


def decode(text: str) -> list:
    decoder = SSEDecoder()
    events = [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]
    tail = decoder.flush()
    return [*events, tail] if tail else events


def test_basic_event_and_multiline_data() -> None:
    events = decode("event: x\ndata: a\ndata: b\n\n")
    assert len(events) == 1
    assert events[0].event == "x" and events[0].data == "a\nb"


def test_comments_and_keepalives_after_an_id_produce_no_empty_events() -> None:
    events = decode('id: 5\ndata: {"type": "error"}\n\n: ping\n\n: ping\n\n')
    assert len(events) == 1 and events[0].id == "5"


def test_field_without_space_retry_and_default_event_name() -> None:
    decoder = SSEDecoder()
    for line in ["retry: 3000", "data:x", ""]:
        event = decoder.feed(line)
    assert (
        event is not None and event.data == "x" and event.retry == 3000 and event.event == "message"
    )


def test_an_event_without_a_trailing_blank_line_is_flushed() -> None:
    assert decode('data: {"type": "error"}')[0].data == '{"type": "error"}'


def test_the_last_event_id_persists_for_resuming() -> None:
    decoder = SSEDecoder()
    for line in ["id: a", "data: 1", "", "data: 2", ""]:
        decoder.feed(line)
    assert decoder.last_event_id == "a"


def test_events_are_typed_by_their_json_type() -> None:
    state = decode(
        'event: task_run.state\ndata: {"type": "task_run.state", "run": {"run_id": "r", "status": "running", "is_active": true}}\n\n'
    )[0]
    assert isinstance(parse_run_event(state), RunStateEvent)
    stats = decode('data: {"type": "task_run.progress_stats", "progress_meter": 12.5}\n\n')[0]
    event = parse_run_event(stats)
    assert isinstance(event, ProgressStatsEvent) and event.progress_meter == 12.5
    err = decode('data: {"type": "error", "error": {"ref_id": "x", "message": "m"}}\n\n')[0]
    assert isinstance(parse_run_event(err), ErrorEvent)


def test_malformed_known_types_are_kept_as_unknown_not_misparsed() -> None:
    bad_state = decode('data: {"type": "task_run.state", "run": "oops"}\n\n')[0]
    event = parse_run_event(bad_state)
    assert isinstance(event, UnknownEvent) and event.type == "task_run.state"
    listing = decode("data: [1, 2]\n\n")[0]
    assert isinstance(parse_run_event(listing), UnknownEvent)


def test_group_events_carry_the_sse_id_when_the_json_has_none() -> None:
    sse = decode(
        'id: 42\ndata: {"type": "task_group_status", "status": {"num_task_runs": 1, "is_active": false}}\n\n'
    )[0]
    event = parse_group_event(sse)
    assert event.event_id == "42"
    assert parse_group_event(decode('data: {"type": "mystery"}\n\n')[0]).type == "mystery"


def test_an_empty_data_line_dispatches_nothing_and_a_leading_bom_is_ignored() -> None:
    assert decode("data:\n\n") == []
    events = decode('\ufeffdata: {"type": "error"}\n\n')
    assert len(events) == 1 and events[0].data == '{"type": "error"}'
