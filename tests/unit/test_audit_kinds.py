"""操作日志's kinds: one enumeration, a Chinese label each, and ``log`` accepts nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from admin_views.logs import OperationLogView, parse_filters
from models import AuditLog
from tests.factories import advance, make_batch, user
from workflows.audit import Kind, log
from workflows.batch import mark_candidate


def test_every_kind_has_a_chinese_label():
    for kind in Kind:
        assert kind.label and not kind.label.isascii(), kind
    assert len({kind.label for kind in Kind}) == len(Kind)
    assert Kind("batch_create") is Kind.BATCH_CREATE and Kind.CANDIDATE_MARK == "candidate_mark"


def test_the_filter_offers_every_kind_and_refuses_others():
    assert OperationLogView.kind_options(None) == [(kind.value, kind.label) for kind in Kind]
    assert parse_filters({"kind": "candidate_mark"}).kind is Kind.CANDIDATE_MARK
    found = parse_filters({"kind": "mystery"})
    assert found.kind is None and found.errors == ["操作类型「mystery」不存在，已忽略该条件"]


def test_log_accepts_only_a_kind(rolled_session):
    with pytest.raises(TypeError):
        log(rolled_session, None, "edit", "随便写的")
    row = log(rolled_session, None, Kind.EDIT, "编辑")
    assert row.kind == "edit"


def test_batch_rows_are_written_through_log(rolled_session):
    s = rolled_session
    batch = make_batch(s, "inst_jinan", candidates=1)
    reviewer = user(s, "jinan")
    advance(s, batch, "submit")
    mark_candidate(s, reviewer, batch.candidates[0], True, "照片不清晰")
    rows = s.scalars(select(AuditLog).where(AuditLog.object_type == "batch", AuditLog.object_id == batch.id,
                                            AuditLog.kind.in_((Kind.BATCH_CREATE, Kind.CANDIDATE_MARK)))
                     .order_by(AuditLog.id)).all()
    assert [(r.kind, r.username, r.organization_id) for r in rows] == [
        (Kind.BATCH_CREATE, "inst_jinan", user(s, "inst_jinan").organization_id),
        (Kind.CANDIDATE_MARK, "jinan", reviewer.organization_id)]
