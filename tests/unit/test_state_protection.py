"""A workflow's state attribute is protected (django-fsm's ``protected=True``): only the engine
changes it on a row already in the database; a new row's initial state and the escape for seed
data and fixtures are the exceptions. And in every test, no state change without its
TransitionLog row (tests/conftest.py), which is checked here on purpose-made cases."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, update

from models import Batch, BatchStatus, Certificate, Organization, TransitionLog
from models.certificate import PrintStatus
from models.org import OrgKind, OrgStatus
from tests.factories import advance, make_batch, user
from workflows import WorkflowError
from workflows.engine import (
    ESCAPED,
    PROTECTED,
    ProtectedStateError,
    Transition,
    Workflow,
    actor,
    setting_state,
)

S = BatchStatus


@pytest.fixture
def session(rolled_session):
    return rolled_session


@pytest.fixture
def batch(session):
    return make_batch(session, "inst_jinan", candidates=1)


def test_every_workflow_protects_its_state_attribute(session):  # the app has imported every workflow
    assert PROTECTED[Batch] == {"status"} and PROTECTED[Certificate] == {"status", "print_status"}
    assert PROTECTED[Organization] == {"status"}


def test_assigning_a_persistent_rows_state_is_refused(session, batch):
    with pytest.raises(ProtectedStateError, match=r"Batch\.status is a workflow state"):
        batch.status = S.approved
    assert batch.status == S.draft
    cert = session.scalars(select(Certificate)).first()
    with pytest.raises(ProtectedStateError, match=r"Certificate\.print_status"):
        cert.print_status = PrintStatus.printed
    with pytest.raises(ProtectedStateError):
        cert.status = cert.status  # even to the same value: only a transition writes it


def test_the_engine_writes_the_state(session, batch):
    advance(session, batch, "submit")
    assert batch.status == S.authority_review
    logged = session.scalars(select(TransitionLog).where(TransitionLog.object_type == "batch",
                                                         TransitionLog.object_id == batch.id)).all()
    assert [row.transition for row in logged] == ["submit"]


def test_a_new_rows_initial_state_is_free(session, batch):
    fresh = Batch(code="TEST-PROTECT-1", name="新批次", institution_id=batch.institution_id, status=S.rejected)
    fresh.status = S.draft  # transient
    session.add(fresh)
    fresh.status = S.authority_review  # pending, not yet flushed
    session.flush()
    with pytest.raises(ProtectedStateError):
        fresh.status = S.draft


def test_the_escape_allows_seed_data_and_fixtures(session, batch):
    with setting_state():
        batch.status = S.approved
    session.flush()
    assert session.scalar(select(Batch.status).where(Batch.id == batch.id)) == S.approved
    with pytest.raises(ProtectedStateError):  # only inside the block
        batch.status = S.draft


def test_loading_rows_fires_no_set_event(session):
    """The guard listens to ``set`` events, which loading from the database does not fire: reading
    a million rows costs nothing more."""
    calls = []

    def count(target, value, oldvalue, initiator):
        calls.append(target)

    event.listen(Batch.status, "set", count)
    try:
        session.expire_all()
        loaded = session.scalars(select(Batch)).all()
        assert loaded and all(b.status is not None for b in loaded)
        session.refresh(loaded[0])
    finally:
        event.remove(Batch.status, "set", count)
    assert calls == []


def test_an_orm_update_of_a_state_column_is_refused(session, batch):
    with pytest.raises(ProtectedStateError, match=r"Batch\.status is a workflow state: an ORM UPDATE"):
        session.execute(update(Batch).where(Batch.id == batch.id).values(status=S.approved))
    with pytest.raises(ProtectedStateError):
        session.execute(update(Organization).values(status=OrgStatus.offline).where(Organization.id == -1))
    with pytest.raises(ProtectedStateError):
        session.execute(update(Batch), [{"id": batch.id, "status": S.approved}])
    # other columns, and the escape
    session.execute(update(Batch).where(Batch.id == batch.id).values(name="改名"))
    with setting_state():
        session.execute(update(Batch).where(Batch.id == batch.id).values(status=S.rejected)
                        .execution_options(synchronize_session=False))
    assert session.scalar(select(Batch.status).where(Batch.id == batch.id)) == S.rejected


# -- the conftest's check: no state change without a TransitionLog row ----------------------------
def test_a_state_change_without_its_log_row_is_reported(session, batch, state_changes_are_logged):
    seen = state_changes_are_logged
    with setting_state():
        batch.status = S.approved
    session.flush()
    assert seen.unlogged() == []  # placed by a fixture: marked, so not counted
    with setting_state():
        batch.status = S.rejected
    del batch._sa_instance_state.info[ESCAPED]  # as if it had been written behind the engine's back
    session.flush()
    assert seen.unlogged() == [f"Batch#{batch.id}.status: approved → rejected"]
    seen.changes.clear()  # this test's own violation must not fail it


def test_a_transition_refused_by_its_effect_leaves_neither_change_nor_log(session, batch,
                                                                         state_changes_are_logged):
    """The state is flushed (the row claimed) before the effects run; an effect that refuses rolls
    the savepoint back, and with it the change and the log row the check had seen."""
    seen = state_changes_are_logged

    def refuse(ctx):
        raise WorkflowError("不行")

    workflow = Workflow(Batch, "status", [
        Transition("poke", "戳一下", (S.draft,), S.authority_review, who=actor(OrgKind.institution), effects=(refuse,)),
        Transition("nudge", "推一下", (S.draft,), S.authority_review, who=actor(OrgKind.institution)),
    ], object_type="tiny")
    inst = user(session, "inst_jinan")
    with pytest.raises(WorkflowError, match="不行"):
        workflow.fire(session, inst, batch, "poke")
    assert len(seen.changes) == 1 and seen.logs == [] and seen.unlogged() == []
    workflow.fire(session, inst, batch, "nudge")
    assert len(seen.changes) == 2 and len(seen.logs) == 1 and seen.unlogged() == []
