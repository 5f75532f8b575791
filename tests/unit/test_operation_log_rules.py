"""操作日志's own rules: Beijing dates as UTC ranges, dropped filters, the before/after shape."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from admin_views.logs import before_after_rows, kind_label, local_day_start_utc, parse_filters, show_value


def test_a_beijing_day_starts_at_16_utc_the_day_before():
    assert local_day_start_utc(date(2024, 3, 2)) == datetime(2024, 3, 1, 16, 0, 0)
    found = parse_filters({"start": "2024-03-02", "end": "2024-03-02"})
    assert (found.start_utc, found.end_utc) == (datetime(2024, 3, 1, 16), datetime(2024, 3, 2, 16))
    assert not found.errors


def test_filters_that_can_be_used():
    found = parse_filters({"kind": "login_fail", "user": " jinan ", "start": "", "end": "2024-01-31"})
    assert (found.kind, found.user, found.start, found.end) == ("login_fail", "jinan", None, date(2024, 1, 31))
    assert not found.errors


@pytest.mark.parametrize("args, kept, message", [
    ({"start": "2024-02-30"}, {}, "开始日期「2024-02-30」格式不正确"),
    ({"end": "31/01/2024", "kind": "edit"}, {"kind": "edit"}, "结束日期「31/01/2024」格式不正确"),
    ({"start": "2024-03-05", "end": "2024-03-01"}, {}, "早于开始日期"),
    ({"kind": "drop table", "start": "2024-03-01"}, {"start": date(2024, 3, 1)}, "操作类型「drop table」不存在"),
    ({"user": "x" * 51}, {}, "用户名过长"),
])
def test_what_cannot_be_used_is_dropped_and_said(args, kept, message):
    found = parse_filters(args)
    assert len(found.errors) == 1 and message in found.errors[0]
    for name in ("kind", "start", "end", "user"):
        assert getattr(found, name) == kept.get(name)


def test_before_after_shapes():
    assert before_after_rows({"name": {"before": "甲", "after": "乙"}}) == [("name", "甲", "乙")]
    assert before_after_rows({"before": {"a": 1, "b": 2}, "after": {"b": 3, "c": 4}}) == [
        ("a", 1, None), ("b", 2, 3), ("c", None, 4)]
    assert before_after_rows({"before": None, "after": {"a": 1}}) == [("a", None, 1)]
    for other in (None, {}, [], {"count": 3}, {"before": "x", "after": "y"}, {"a": {"before": 1}, "b": 2}):
        assert before_after_rows(other) is None, other


def test_labels_and_values():
    assert kind_label("login_fail") == "登录失败" and kind_label("mystery") == "mystery"
    assert show_value(None) == "（空）" and show_value(True) == "是" and show_value([1, "甲"]) == '[1, "甲"]'
