"""操作日志's own rules: Beijing dates as UTC ranges, dropped filters, the before/after shape."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from admin_views.logs import detail_rows, kind_label, local_day_start_utc, parse_filters, show_value
from workflows.audit import field_label


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


def test_before_after_shapes_in_chinese():
    assert detail_rows({"name": {"before": "甲", "after": "乙"}}, "person") == ([("姓名", "甲", "乙")], [])
    assert detail_rows({"name": {"before": "甲", "after": "乙"}, "phone": {"before": "1", "after": "2"}},
                       "organization") == ([("名称", "甲", "乙"), ("联系电话", "1", "2")], [])
    assert detail_rows({"before": {"phone": 1, "postcode": 2}, "after": {"postcode": 3, "contact": 4}}) == ([
        ("手机号", "1", "（空）"), ("邮政编码", "2", "3"), ("联系人", "（空）", "4")], [])
    assert detail_rows({"before": None, "after": {"id_number": "x"}}) == ([("身份证号", "（空）", "x")], [])
    for nothing in (None, {}, []):
        assert detail_rows(nothing) is None


def test_other_detail_is_facts_in_chinese_never_json():
    # 数据维护: the reason beside the changed fields
    changes, facts = detail_rows({"reason": "录入错误", "issue_date": {"before": "2024-01-01", "after": "2024-01-02"}},
                                 "certificate")
    assert changes == [("发证日期", "2024-01-01", "2024-01-02")] and facts == [("原因", "录入错误")]
    # a job's bookkeeping, a scope change, a print format: nested values joined, keys in Chinese
    assert detail_rows({"worker": "host:1", "attempt": 2, "bytes": 100}) == (
        [], [("处理进程", "host:1"), ("第几次执行", "2"), ("文件大小(字节)", "100")])
    _, facts = detail_rows({"added": ["砌筑工 初级", "电工 中级"], "removed": [], "descendants": {"某机构": ["电工 中级"]}})
    assert facts == [("新增", "砌筑工 初级、电工 中级"), ("删除", "（空）"), ("下级机构同时删除", "某机构：电工 中级")]
    changes, _ = detail_rows({"before": None, "after": {"paper": [297, 210], "fields": {"name": [45, 52]}}},
                             "print_format")
    assert changes == [("纸张尺寸(毫米)", "（空）", "297 × 210"), ("打印位置(毫米)", "（空）", "姓名：45 × 52")]
    # a key nobody labelled reads 其他, never an English name
    assert detail_rows({"count": 3, "mystery_key": 1}) == ([], [("数量", "3"), ("其他", "1")])


@pytest.mark.parametrize("key", [
    # every key the workflows write into an operation-log row's detail (grep "detail=" workflows)
    "name", "phone", "role", "permissions", "qualification_no", "code", "region_code", "contact", "address",
    "postcode", "added", "removed", "descendants", "reason", "id_number", "employer_name", "issue_date",
    "valid_until", "endorsement_count", "paper", "font", "qr", "fields", "worker", "attempt", "bytes",
    "heartbeat_at", "rejected_request", "gender", "birth_date", "employer", "occupation", "level", "number",
    "issuer", "qr_code",
])
def test_every_written_key_has_a_chinese_label(key):
    assert not field_label(key).isascii() and field_label(key) != "其他"


def test_labels_and_values():
    assert kind_label("login_fail") == "登录失败" and kind_label("mystery") == "mystery"
    assert show_value(None) == "（空）" and show_value(True) == "是" and show_value([1, "甲"]) == "1、甲"
