"""The transition engine (SPEC §5): actor, source state, reason, guards, effects, log, messages,
optimistic locking and bulk firing — through a tiny in-test workflow over the Batch model."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from models import AuditLog, Batch, BatchStatus, Message, TransitionLog
from models.org import OrgKind
from models.user import Permission, Role
from tests.factories import advance, make_batch, make_user, user
from workflows import StaleObjectError, WorkflowError
from workflows.batch import BATCH, mark_candidate
from workflows.engine import Guard, Transition, Workflow, actor, setting_state
from workflows.visibility import load_visible

S = BatchStatus
TINY_TYPE = "tiny"


def _owner(u, batch) -> bool:
    return batch.institution_id == u.organization_id


def tiny(*, guards=(), needs_reason=False, effects=(), notify=None) -> Workflow:
    """One transition ``poke`` draft → authority_review for the owning institution, plus
    ``back`` for the authority, so every knob of the engine can be turned in isolation."""
    return Workflow(
        Batch,
        "status",
        [
            Transition("poke", "戳一下", (S.draft,), S.authority_review,
                       who=actor(OrgKind.institution, relation=_owner), permission=Permission.batch_manage,
                       guards=guards, needs_reason=needs_reason, reason_label="戳的理由", effects=effects,
                       notify=notify),
            Transition("back", "退回", (S.authority_review,), S.draft, who=actor(OrgKind.authority)),
        ],
        object_type=TINY_TYPE,
        title=lambda b: f"测试「{b.name}」",
    )


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _logs(session, batch_id, object_type=TINY_TYPE) -> list[TransitionLog]:
    return list(session.scalars(
        select(TransitionLog).where(TransitionLog.object_type == object_type, TransitionLog.object_id == batch_id)
        .order_by(TransitionLog.id)
    ))


def _db_state(session, batch_id):
    return session.execute(select(Batch.__table__.c.status).where(Batch.__table__.c.id == batch_id)).scalar_one()


@pytest.fixture
def session(rolled_session):
    """This module's tests share one demo copy and are rolled back; tests that commit use conftest's app."""
    return rolled_session


@pytest.fixture
def batch(session):
    return make_batch(session, "inst_jinan", candidates=2)


def assert_untouched(session, batch, *, messages_before: int):
    """A refused transition leaves nothing: no log, no message, the state as it was."""
    assert _logs(session, batch.id) == []
    assert _count(session, Message) == messages_before
    assert _db_state(session, batch.id) == S.draft.value
    session.expire(batch)
    assert batch.status == S.draft


# -- the happy path ----------------------------------------------------------------------------


def test_fire_changes_state_and_writes_one_transition_log(session, batch):
    actor_user = user(session, "inst_jinan")
    tiny(needs_reason=True).fire(session, actor_user, batch, "poke", reason="  需要戳一下  ")

    assert batch.status == S.authority_review
    assert _db_state(session, batch.id) == S.authority_review.value
    [log] = _logs(session, batch.id)
    assert (log.transition, log.label, log.from_state, log.to_state) == ("poke", "戳一下", "draft", "authority_review")
    assert log.actor_id == actor_user.id
    assert log.organization_id == actor_user.organization_id
    assert log.reason == "需要戳一下"  # stripped, as typed minus the spaces
    assert log.created_at is not None


def test_effects_run_exactly_once_after_the_state_is_set(session, batch):
    seen = []
    workflow = tiny(effects=(lambda ctx: seen.append((ctx.from_state, ctx.obj.status, ctx.data)),))
    workflow.fire(session, user(session, "inst_jinan"), batch, "poke", extra="数据")
    assert seen == [(S.draft, S.authority_review, {"extra": "数据"})]


def test_optional_reason_left_empty_is_stored_as_null(session, batch):
    tiny().fire(session, user(session, "inst_jinan"), batch, "poke", reason="   ")
    assert _logs(session, batch.id)[0].reason is None


# -- who may fire ------------------------------------------------------------------------------


def _without_permission(session):
    u = user(session, "inst_jinan")
    u.set_permissions(u.permissions - {Permission.batch_manage})
    session.flush()
    return u


def _disabled(session):
    u = user(session, "inst_jinan")
    u.is_enabled = False
    return u


@pytest.mark.parametrize(
    "make_actor",
    [
        pytest.param(lambda s: user(s, "jinan"), id="wrong-org-kind"),
        pytest.param(lambda s: user(s, "inst_qingdao"), id="wrong-relation"),
        pytest.param(_without_permission, id="permission-withdrawn"),
        pytest.param(_disabled, id="disabled-user"),
        pytest.param(lambda s: user(s, "person"), id="individual"),
    ],
)
def test_actor_refused_leaves_nothing(session, batch, make_actor):
    effects = []
    workflow = tiny(effects=(lambda ctx: effects.append(1),), notify=lambda ctx: [ctx.obj.authority_id])
    messages = _count(session, Message)
    u = make_actor(session)

    with pytest.raises(WorkflowError) as exc:
        workflow.fire(session, u, batch, "poke")

    assert exc.value.message == "无权执行「戳一下」"
    assert effects == []
    assert "poke" not in [t.name for t in workflow.available(u, batch)]
    assert_untouched(session, batch, messages_before=messages)


def test_withdrawn_permission_is_refused_but_granting_it_back_allows(session, batch):
    workflow = tiny()
    u = _without_permission(session)
    with pytest.raises(WorkflowError, match="无权执行"):
        workflow.fire(session, u, batch, "poke")
    u.set_permissions(u.permissions | {Permission.batch_manage})
    session.flush()
    workflow.fire(session, u, batch, "poke")
    assert batch.status == S.authority_review


def test_wrong_source_state_names_the_current_state(session, batch):
    workflow = tiny()
    workflow.fire(session, user(session, "inst_jinan"), batch, "poke")
    with pytest.raises(WorkflowError) as exc:
        workflow.fire(session, user(session, "inst_jinan"), batch, "poke")
    assert exc.value.message == "当前状态为「审核中(主管部门)」，不能执行「戳一下」"
    assert len(_logs(session, batch.id)) == 1


def test_state_message_replaces_the_generic_wrong_state_refusal(session, batch):
    """A transition may say what its manual says for a row already past it (上报: 已上报)."""
    said = []

    def message(state):
        said.append(state)
        return "已戳过，请勿重复操作" if state == S.authority_review else None

    workflow = Workflow(Batch, "status", [
        Transition("poke", "戳一下", (S.draft,), S.authority_review, who=actor(OrgKind.institution, relation=_owner),
                   state_message=message)], object_type=TINY_TYPE)
    inst = user(session, "inst_jinan")
    workflow.fire(session, inst, batch, "poke")
    with pytest.raises(WorkflowError) as exc:
        workflow.fire(session, inst, batch, "poke")
    assert exc.value.message == "已戳过，请勿重复操作"
    with setting_state():
        batch.status = S.approved  # a state the message does not cover falls back to the generic wording
    with pytest.raises(WorkflowError, match="^当前状态为「.+」，不能执行「戳一下」$"):
        workflow.fire(session, inst, batch, "poke")
    assert said == [S.authority_review, S.approved]
    assert len(_logs(session, batch.id)) == 1


def test_unknown_transition_name_is_refused(session, batch):
    with pytest.raises(WorkflowError, match="不支持的操作"):
        tiny().fire(session, user(session, "inst_jinan"), batch, "explode")


def test_duplicate_transition_names_are_a_programming_error():
    t = Transition("x", "X", (S.draft,), S.approved, who=actor(OrgKind.province))
    with pytest.raises(ValueError):
        Workflow(Batch, "status", [t, t], object_type="x")


# -- reasons and guards --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   ", "\u3000\t\n"])
def test_mandatory_reason_refused_when_empty_or_whitespace(session, batch, reason):
    messages = _count(session, Message)
    with pytest.raises(WorkflowError) as exc:
        tiny(needs_reason=True).fire(session, user(session, "inst_jinan"), batch, "poke", reason=reason)
    assert exc.value.message == "请填写戳的理由"
    assert_untouched(session, batch, messages_before=messages)


@pytest.mark.parametrize(
    ("verdict", "message"),
    [
        (False, "默认的拒绝说明"),
        ("第2行 考生 的照片不清晰", "第2行 考生 的照片不清晰"),
    ],
)
def test_guard_refusal_message(session, batch, verdict, message):
    effects = []
    workflow = tiny(guards=(Guard(lambda ctx: verdict, "默认的拒绝说明"),), effects=(lambda ctx: effects.append(1),))
    messages = _count(session, Message)
    with pytest.raises(WorkflowError) as exc:
        workflow.fire(session, user(session, "inst_jinan"), batch, "poke")
    assert exc.value.message == message
    assert effects == []
    assert_untouched(session, batch, messages_before=messages)


@pytest.mark.parametrize("verdict", [True, None])
def test_guard_holding_lets_the_transition_through(session, batch, verdict):
    tiny(guards=(Guard(lambda ctx: verdict, "不应出现"),)).fire(session, user(session, "inst_jinan"), batch, "poke")
    assert batch.status == S.authority_review


def test_first_failing_guard_wins_and_later_guards_do_not_run(session, batch):
    ran = []

    def second(ctx):
        ran.append("second")
        return "第二条"

    workflow = tiny(guards=(Guard(lambda ctx: ran.append("first") or False, "第一条"), Guard(second)))
    with pytest.raises(WorkflowError, match="^第一条$"):
        workflow.fire(session, user(session, "inst_jinan"), batch, "poke")
    assert ran == ["first"]


def test_guards_run_after_the_actor_and_state_checks(session, batch):
    """A stranger learns nothing from a guard's message (it may name candidates)."""
    workflow = tiny(guards=(Guard(lambda ctx: "考生张三的身份证号有误"),))
    with pytest.raises(WorkflowError) as exc:
        workflow.fire(session, user(session, "inst_qingdao"), batch, "poke")
    assert "张三" not in exc.value.message


def test_failing_effect_rolls_back_state_earlier_effects_and_log(session, batch):
    """Effects run inside the transition's savepoint: a late failure half-applies nothing."""
    before_name = batch.name
    audits = _count(session, AuditLog)
    messages = _count(session, Message)

    def first(ctx):
        ctx.obj.name = "被改掉的名字"
        ctx.session.add(AuditLog(kind="edit", summary="不应留下"))
        ctx.session.flush()

    def second(ctx):
        raise WorkflowError("号段已用完")

    workflow = tiny(effects=(first, second), notify=lambda ctx: [ctx.obj.authority_id])
    with pytest.raises(WorkflowError, match="号段已用完"):
        workflow.fire(session, user(session, "inst_jinan"), batch, "poke")

    assert _count(session, AuditLog) == audits
    assert_untouched(session, batch, messages_before=messages)
    assert batch.name == before_name


# -- messages ---------------------------------------------------------------------------------


def test_messages_go_to_enabled_users_of_notified_orgs_except_the_actor(session, batch):
    inst_user, jinan = user(session, "inst_jinan"), user(session, "jinan")
    colleague = make_user(session, inst_user.organization, role=Role.operator)
    disabled = make_user(session, jinan.organization, role=Role.reviewer, enabled=False)
    before = set(session.scalars(select(Message.id)))
    workflow = tiny(needs_reason=True, notify=lambda ctx: [ctx.obj.institution_id, ctx.obj.authority_id, None])

    workflow.fire(session, inst_user, batch, "poke", reason="请尽快审核")

    new = [m for m in session.scalars(select(Message)) if m.id not in before]
    recipients = {m.user_id for m in new}
    expected = {colleague.id, jinan.id, user(session, "jinan_reviewer").id}
    assert recipients == expected
    assert inst_user.id not in recipients and disabled.id not in recipients
    assert len(new) == len(expected)  # one each, the org listed once
    for m in new:
        assert m.title == f"测试「{batch.name}」：戳一下"
        assert m.body == "待提交 → 审核中(主管部门)；原因：请尽快审核"
        assert (m.object_type, m.object_id, m.is_read) == (TINY_TYPE, batch.id, False)


def test_no_notify_writes_no_messages(session, batch):
    before = _count(session, Message)
    tiny().fire(session, user(session, "inst_jinan"), batch, "poke")
    assert _count(session, Message) == before


# -- optimistic locking ---------------------------------------------------------------------------


def _concurrent_change(session, batch_id, **values):
    """Another reviewer's committed UPDATE, behind the ORM's back (the identity map keeps the old version)."""
    table = Batch.__table__
    session.execute(
        update(table).where(table.c.id == batch_id).values(version=table.c.version + 1, **values)
    )


def test_stale_row_is_refused_with_already_handled_and_nothing_written(session, batch):
    effects = []
    workflow = tiny(effects=(lambda ctx: effects.append(1),), notify=lambda ctx: [ctx.obj.authority_id])
    messages = _count(session, Message)
    _concurrent_change(session, batch.id)

    with pytest.raises(StaleObjectError) as exc:
        workflow.fire(session, user(session, "inst_jinan"), batch, "poke")

    assert exc.value.message == "该记录已被他人处理"
    assert isinstance(exc.value, WorkflowError)  # views and fire_many handle it like any refusal
    assert effects == []
    assert_untouched(session, batch, messages_before=messages)


def test_second_reviewer_loses_then_sees_the_winners_state(session):
    """Two reviewers: the first committed authority_approve; the second one's stale fire fails and,
    once reloaded, is refused by state — never a double effect."""
    b = advance(session, make_batch(session, "inst_jinan"), "submit")
    jinan = user(session, "jinan")
    _concurrent_change(session, b.id, status=S.province_review.value)
    logs_before = len(_logs(session, b.id, "batch"))

    with pytest.raises(StaleObjectError):
        BATCH.fire(session, jinan, b, "authority_approve")
    assert len(_logs(session, b.id, "batch")) == logs_before
    assert b.status == S.province_review  # expired and reloaded
    with pytest.raises(WorkflowError, match="当前状态为「审核中\\(省厅\\)」"):
        BATCH.fire(session, jinan, b, "authority_approve")


# -- bulk --------------------------------------------------------------------------------------


def test_fire_many_reports_per_row_and_never_half_applies(session):
    jinan = user(session, "jinan")
    good1 = advance(session, make_batch(session, "inst_jinan", name="好批次一"), "submit")
    marked = advance(session, make_batch(session, "inst_jinan", name="有不合格考生"), "submit")
    mark_candidate(session, jinan, marked.candidates[0], True, "证件照模糊")
    stale = advance(session, make_batch(session, "inst_jinan", name="被他人处理"), "submit")
    draft = make_batch(session, "inst_jinan", name="草稿批次")
    foreign = advance(session, make_batch(session, "inst_qingdao", name="青岛批次"), "submit")
    good2 = advance(session, make_batch(session, "inst_jinan", name="好批次二"), "submit")
    ids = [str(good1.id), str(foreign.id), "abc", str(marked.id), str(stale.id), str(draft.id), str(good2.id)]
    objs = load_visible(session, jinan, Batch, ids)
    assert set(objs) == {str(good1.id), str(marked.id), str(stale.id), str(draft.id), str(good2.id)}
    _concurrent_change(session, stale.id)

    result = BATCH.fire_many(session, jinan, objs, ids, "authority_approve")

    assert [(r.id, r.ok) for r in result.rows] == [
        (str(good1.id), True), (str(foreign.id), False), ("abc", False), (str(marked.id), False),
        (str(stale.id), False), (str(draft.id), False), (str(good2.id), True),
    ]
    messages = {r.id: r.message for r in result.failed}
    assert messages[str(foreign.id)] == "记录不存在或无权访问"
    assert messages["abc"] == "记录不存在或无权访问"
    assert messages[str(marked.id)].startswith("有考生被标记为审核不通过")
    assert messages[str(stale.id)] == "该记录已被他人处理"
    assert messages[str(draft.id)] == "当前状态为「待提交」，不能执行「审核通过」"
    assert result.summary() == (
        "成功 2 条，失败 5 条："
        f"#{foreign.id}：记录不存在或无权访问；#abc：记录不存在或无权访问；"
        f"批次「有不合格考生」：{messages[str(marked.id)]}；批次「被他人处理」：该记录已被他人处理；"
        "批次「草稿批次」：当前状态为「待提交」，不能执行「审核通过」"
    )

    session.expire_all()
    assert good1.status == good2.status == S.province_review
    assert marked.status == stale.status == foreign.status == S.authority_review
    assert draft.status == S.draft
    for bad in (marked, stale, draft, foreign):
        assert [log.transition for log in _logs(session, bad.id, "batch")] in ([], ["submit"])


def test_fire_many_all_good_summary_has_no_failure_list(session):
    province = user(session, "province")
    batches = [advance(session, make_batch(session, "direct_inst"), "submit") for _ in range(2)]
    objs = {str(b.id): b for b in batches}
    result = BATCH.fire_many(session, province, objs, list(objs), "province_reject", reason="材料不符")
    assert result.summary() == "成功 2 条，失败 0 条"
    assert all(b.status == S.rejected and b.reject_reason == "材料不符" for b in batches)


def test_available_and_offered_read_the_table(session, batch):
    workflow = tiny()
    assert [t.name for t in workflow.available(user(session, "inst_jinan"), batch)] == ["poke"]
    assert workflow.available(user(session, "jinan"), batch) == []
    assert [t.name for t in workflow.offered(user(session, "jinan"))] == ["back"]
    assert workflow.states() == {S.draft, S.authority_review}
