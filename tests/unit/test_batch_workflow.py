"""The batch workflow of SPEC §5.1 with the demo accounts of §12: every legal transition, every
illegal (transition, state, user) combination, the guards, and the issuing effect of §4."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from models import (
    Batch,
    BatchStatus,
    Candidate,
    Certificate,
    NumberSegment,
    Organization,
    Person,
    ScopeItem,
)
from models.audit import Message, TransitionLog
from models.base import local_today
from models.org import Level, Occupation
from tests.factories import (
    DIRECT_PATH_TO,
    PATH_TO,
    advance,
    batch_in_state,
    certificates_of,
    make_batch,
    next_identity,
    org,
    rolled_back,
    shared_demo,
    user,
)
from workflows import WorkflowError
from workflows.batch import BATCH, awaiting_review, mark_candidate

S = BatchStatus
REASON = "培训记录不全"

# SPEC §5.1 written out again, independently of workflows.batch: name → (label, sources, target).
TABLE = {
    "submit": ("提交审核", {"draft"}, None),  # target depends on the institution (below)
    "authority_approve": ("审核通过", {"authority_review"}, "province_review"),
    "authority_reject": ("审核不通过", {"authority_review"}, "rejected"),
    "province_approve": ("审核通过", {"province_review"}, "approved"),
    "province_reject": ("审核不通过", {"province_review"}, "rejected"),
    "reopen": ("重新提交", {"rejected"}, "draft"),
    "delete": ("删除批次", {"draft"}, "deleted"),
}
NEEDS_REASON = {"authority_reject", "province_reject"}
SUBMIT_TARGET = {"inst_jinan": "authority_review", "direct_inst": "province_review"}

DEMO_USERS = [
    "province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
    "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry",
]
# Who may fire each transition on a batch of ``owner`` (SPEC §5.1 "who" + §12 accounts).
OWN = ("submit", "reopen", "delete")
ALLOWED = {
    "inst_jinan": {**{t: {"inst_jinan"} for t in OWN},
                   "authority_approve": {"jinan", "jinan_reviewer"}, "authority_reject": {"jinan", "jinan_reviewer"},
                   "province_approve": {"province", "province_reviewer"},
                   "province_reject": {"province", "province_reviewer"}},
    "direct_inst": {**{t: {"direct_inst"} for t in OWN},
                    "authority_approve": set(), "authority_reject": set(),
                    "province_approve": {"province", "province_reviewer"},
                    "province_reject": {"province", "province_reviewer"}},
}
REACHABLE = {"inst_jinan": PATH_TO, "direct_inst": DIRECT_PATH_TO}


def target_of(owner: str, name: str) -> str:
    return SUBMIT_TARGET[owner] if name == "submit" else TABLE[name][2]


def _reason(name):
    return REASON if name in NEEDS_REASON else None


def _logs(session, batch_id) -> list[TransitionLog]:
    return list(session.scalars(
        select(TransitionLog).where(TransitionLog.object_type == "batch", TransitionLog.object_id == batch_id)
        .order_by(TransitionLog.id)
    ))


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture(scope="module")
def world(demo_template, tmp_path_factory):
    """One demo copy for this module, holding a batch of each owner in every state.

    Each test runs in the ``session`` fixture's transaction, rolled back afterwards, so the
    module costs one database copy instead of ~250 without sharing any change between tests.
    """
    with shared_demo(demo_template, tmp_path_factory.mktemp("batch_world")) as app:
        with rolled_back(app) as session:
            ids = {(owner, state): batch_in_state(session, owner, state).id
                   for owner, paths in REACHABLE.items() for state in paths}
            session.commit()
        yield app, ids


@pytest.fixture
def session(world):
    """This module's tests never commit: they share the world and are rolled back afterwards."""
    app, _ = world
    with rolled_back(app) as s:
        yield s


@pytest.fixture
def ws(world, session):
    """(session, loader of the world's batch of ``owner`` in ``state``)."""
    _, ids = world
    return session, lambda owner, state: session.get(Batch, ids[(owner, state)])


def test_table_in_code_matches_the_spec():
    assert set(BATCH.transitions) == set(TABLE)
    for name, (label, sources, target) in TABLE.items():
        t = BATCH.transitions[name]
        assert t.label == label
        assert {s.value for s in t.sources} == sources
        if target is not None:
            assert t.target.value == target
        assert t.needs_reason == (name in NEEDS_REASON)


# -- every legal transition ---------------------------------------------------------------------

LEGAL = [
    (owner, state, name, username)
    for owner, paths in REACHABLE.items()
    for state in paths
    for name, (_, sources, _) in TABLE.items()
    if state in sources
    for username in sorted(ALLOWED[owner][name])
]


@pytest.mark.parametrize(("owner", "state", "name", "username"), LEGAL)
def test_every_legal_transition_succeeds_for_every_allowed_user(ws, owner, state, name, username):
    session, load = ws
    batch = load(owner, state)
    batch_id = batch.id
    actor_user = user(session, username)
    assert name in [t.name for t in BATCH.available(actor_user, batch)]

    BATCH.fire(session, actor_user, batch, name, reason=_reason(name))

    target = target_of(owner, name)
    log = _logs(session, batch_id)[-1]
    assert (log.transition, log.from_state, log.to_state) == (name, state, target)
    assert (log.actor_id, log.organization_id) == (actor_user.id, actor_user.organization_id)
    assert log.reason == _reason(name)
    if target == "deleted":
        assert session.get(Batch, batch_id) is None
    else:
        session.expire_all()
        assert session.get(Batch, batch_id).status.value == target


def test_inst_jinan_batch_goes_through_jinan_then_province(session):
    batch = make_batch(session, "inst_jinan", candidates=2)
    jinan_users = {user(session, "jinan").id, user(session, "jinan_reviewer").id}
    province_users = {user(session, "province").id, user(session, "province_reviewer").id}

    def recipients_of_last_step(before):
        return {m.user_id for m in session.scalars(select(Message).where(Message.id > before))}

    last = session.scalar(select(func.max(Message.id))) or 0
    advance(session, batch, "submit")
    assert batch.status == S.authority_review and batch.submitted_at is not None
    assert recipients_of_last_step(last) == jinan_users

    last = session.scalar(select(func.max(Message.id)))
    advance(session, batch, "authority_approve")
    assert batch.status == S.province_review and batch.reviewed_at is not None
    assert recipients_of_last_step(last) == province_users | {user(session, "inst_jinan").id}

    advance(session, batch, "province_approve")
    assert batch.status == S.approved
    assert [(log.from_state, log.to_state) for log in _logs(session, batch.id)] == [
        ("draft", "authority_review"), ("authority_review", "province_review"), ("province_review", "approved"),
    ]
    assert [log.actor.username for log in _logs(session, batch.id)] == ["inst_jinan", "jinan", "province"]


def test_direct_institution_submits_straight_to_the_province(session):
    batch = make_batch(session, "direct_inst")
    last = session.scalar(select(func.max(Message.id)))
    advance(session, batch, "submit")
    assert batch.status == S.province_review
    assert batch.authority_id is None
    recipients = {m.user_id for m in session.scalars(select(Message).where(Message.id > last))}
    assert recipients == {user(session, "province").id, user(session, "province_reviewer").id}
    advance(session, batch, "province_approve")
    assert batch.status == S.approved


@pytest.mark.parametrize(("owner", "path"), [
    ("inst_jinan", ("submit",)),
    ("inst_jinan", ("submit", "authority_approve")),
    ("direct_inst", ("submit",)),
])
def test_reject_needs_a_reason_then_reopen_and_resubmit(session, owner, path):
    batch = advance(session, make_batch(session, owner), *path)
    level = "province_reject" if batch.status == S.province_review else "authority_reject"
    reviewer = user(session, "province" if level == "province_reject" else "jinan")

    for empty in (None, "", "  \u3000 "):
        with pytest.raises(WorkflowError, match="^请填写审核不通过原因$"):
            BATCH.fire(session, reviewer, batch, level, reason=empty)
    assert batch.status != S.rejected

    BATCH.fire(session, reviewer, batch, level, reason=f"  {REASON}  ")
    assert batch.status == S.rejected
    assert batch.reject_reason == REASON
    assert _logs(session, batch.id)[-1].reason == REASON

    advance(session, batch, "reopen")
    assert batch.status == S.draft
    advance(session, batch, "submit")
    assert batch.status.value == SUBMIT_TARGET[owner]
    assert batch.reject_reason is None  # a resubmitted batch is reviewed afresh


def test_delete_removes_the_row_but_keeps_the_transition_log(session):
    batch = advance(session, make_batch(session, "inst_jinan", name="将被删除"), "submit", "authority_reject", "reopen")
    batch_id = batch.id
    advance(session, batch, "delete")
    session.expire_all()
    assert session.get(Batch, batch_id) is None
    assert _count(session, Candidate, Candidate.batch_id == batch_id) == 0
    assert [(log.transition, log.to_state) for log in _logs(session, batch_id)] == [
        ("submit", "authority_review"), ("authority_reject", "rejected"), ("reopen", "draft"), ("delete", "deleted"),
    ]


# -- every illegal combination --------------------------------------------------------------------

WRONG_STATE = [
    (owner, state, name)
    for owner, paths in REACHABLE.items()
    for state in paths
    for name, (_, sources, _) in TABLE.items()
    if state not in sources and ALLOWED[owner][name]
]


@pytest.mark.parametrize(("owner", "state", "name"), WRONG_STATE)
def test_transition_from_a_wrong_state_is_refused(ws, owner, state, name):
    """Fired by the user who could fire it from the right state: only the state is wrong."""
    session, load = ws
    batch = load(owner, state)
    logs = len(_logs(session, batch.id))
    actor_user = user(session, sorted(ALLOWED[owner][name])[0])
    assert name not in [t.name for t in BATCH.available(actor_user, batch)]

    with pytest.raises(WorkflowError) as exc:
        BATCH.fire(session, actor_user, batch, name, reason=REASON)

    assert exc.value.message == f"当前状态为「{S(state).label}」，不能执行「{TABLE[name][0]}」"
    session.expire_all()
    assert batch.status.value == state
    assert len(_logs(session, batch.id)) == logs


def test_wrong_state_table_covers_every_state_but_deleted():
    states = {state for _, state, _ in WRONG_STATE} | {state for _, state, _, _ in LEGAL}
    assert states == {s.value for s in S} - {"deleted"}


WRONG_USER = [
    (owner, state, name, username)
    for owner, paths in REACHABLE.items()
    for state in paths
    for name, (_, sources, _) in TABLE.items()
    if state in sources
    for username in DEMO_USERS
    if username not in ALLOWED[owner][name]
]


@pytest.mark.parametrize(("owner", "state", "name", "username"), WRONG_USER)
def test_wrong_user_is_refused(ws, owner, state, name, username):
    session, load = ws
    batch = load(owner, state)
    logs = len(_logs(session, batch.id))
    actor_user = user(session, username)
    assert name not in [t.name for t in BATCH.available(actor_user, batch)]

    with pytest.raises(WorkflowError) as exc:
        BATCH.fire(session, actor_user, batch, name, reason=REASON)

    assert exc.value.message == f"无权执行「{TABLE[name][0]}」"
    session.expire_all()
    assert session.get(Batch, batch.id).status.value == state
    assert len(_logs(session, batch.id)) == logs


def test_demo_batch_under_review_is_reviewed_only_by_its_own_city(session):
    """The demo's own batches obey the same table (inst_jinan's batch in 审核中(主管部门))."""
    demo = session.scalar(select(Batch).where(Batch.name == "2026年第三期钢筋工培训"))
    assert demo.status == S.authority_review
    with pytest.raises(WorkflowError, match="无权执行"):
        BATCH.fire(session, user(session, "qingdao"), demo, "authority_approve")
    BATCH.fire(session, user(session, "jinan_reviewer"), demo, "authority_approve")
    assert demo.status == S.province_review


@pytest.mark.parametrize(("username", "permission", "state", "name"), [
    ("jinan_reviewer", "batch_review", "authority_review", "authority_approve"),
    ("province_reviewer", "batch_review", "province_review", "province_reject"),
    ("inst_jinan", "batch_manage", "draft", "submit"),
    ("inst_jinan", "batch_manage", "rejected", "reopen"),
])
def test_withdrawn_permission_refuses_an_otherwise_allowed_user(ws, username, permission, state, name):
    """003 §六.4 用户权限管理: an admin withdraws one permission; the table follows at once."""
    session, load = ws
    batch = load("inst_jinan", state)
    u = user(session, username)
    u.set_permissions({p for p in u.permissions if p.value != permission})
    session.flush()
    with pytest.raises(WorkflowError, match=f"^无权执行「{TABLE[name][0]}」$"):
        BATCH.fire(session, u, batch, name, reason=REASON)
    assert batch.status.value == state


# -- guards ---------------------------------------------------------------------------------------


def test_submit_with_no_candidates_is_refused(session):
    batch = make_batch(session, "inst_jinan", candidates=0)
    with pytest.raises(WorkflowError, match="^批次中没有合格人员，不能提交审核$"):
        advance(session, batch, "submit")
    assert batch.status == S.draft


def test_submit_refused_when_a_pair_left_the_scope(session):
    batch = make_batch(session, "inst_jinan", candidates=4, pairs=[("砌筑工", "初级工(五级)"), ("施工员", None)])
    inst = org(session, "JG370101")
    bricklayer = session.scalar(select(Occupation.id).where(Occupation.name == "砌筑工"))
    junior = session.scalar(select(Level.id).where(Level.name == "初级工(五级)"))
    session.execute(delete(ScopeItem).where(ScopeItem.organization_id == inst.id,
                                            ScopeItem.occupation_id == bricklayer, ScopeItem.level_id == junior))
    names = [c.name for c in batch.candidates]

    with pytest.raises(WorkflowError) as exc:
        advance(session, batch, "submit")

    assert exc.value.message == (
        f"批次存在错误，不能提交：第2行 {names[0]} 的职业(工种)等级不在本机构职业(工种)范围内；"
        f"第4行 {names[2]} 的职业(工种)等级不在本机构职业(工种)范围内"
    )
    assert batch.status == S.draft


def test_submit_refused_for_duplicates_and_existing_holders(session):
    holder = session.scalar(select(Person).where(Person.name == "张建国"))  # holds 砌筑工 初级工
    twin, _, _ = next_identity()
    batch = make_batch(session, "inst_jinan", candidates=3, id_numbers=[holder.id_number, twin, twin])
    with pytest.raises(WorkflowError) as exc:
        advance(session, batch, "submit")
    assert "与第3行重复" in exc.value.message
    assert f"({holder.id_number}) 已持有同职业(工种)等级的有效证书" in exc.value.message


def test_more_than_three_problems_are_summarised(session):
    batch = make_batch(session, "inst_jinan", candidates=5, pairs=[("木工", "初级工(五级)")])  # not in its scope
    with pytest.raises(WorkflowError) as exc:
        advance(session, batch, "submit")
    assert exc.value.message.count("不在本机构职业(工种)范围内") == 3
    assert exc.value.message.endswith("等 5 处问题")


@pytest.mark.parametrize(("path", "reviewer", "approve"), [
    (("submit",), "jinan", "authority_approve"),
    (("submit", "authority_approve"), "province", "province_approve"),
])
def test_approval_refused_while_a_candidate_is_marked_failed(session, path, reviewer, approve):
    batch = advance(session, make_batch(session, "inst_jinan", candidates=3), *path)
    reviewer_user = user(session, reviewer)
    cand = batch.candidates[1]

    with pytest.raises(WorkflowError, match="^请填写考生审核不通过说明$"):
        mark_candidate(session, reviewer_user, cand, True, "   ")
    mark_candidate(session, reviewer_user, cand, True, "照片与本人不符")
    assert cand.failed and cand.fail_note == "照片与本人不符"

    with pytest.raises(WorkflowError) as exc:
        BATCH.fire(session, reviewer_user, batch, approve)
    assert exc.value.message == f"有考生被标记为审核不通过（{cand.name}），批次不能审核通过"
    assert _count(session, Certificate, Certificate.batch_id == batch.id) == 0

    mark_candidate(session, reviewer_user, cand, False, None)
    assert not cand.failed and cand.fail_note is None
    BATCH.fire(session, reviewer_user, batch, approve)
    assert batch.status == S.province_review if approve == "authority_approve" else S.approved


@pytest.mark.parametrize("username", ["qingdao", "inst_jinan", "province", "enterprise"])
def test_only_the_current_reviewer_may_mark_a_candidate(session, username):
    batch = advance(session, make_batch(session, "inst_jinan"), "submit")
    with pytest.raises(WorkflowError, match="^只有当前审核人可以标记考生$"):
        mark_candidate(session, user(session, username), batch.candidates[0], True, "不合格")
    assert not batch.candidates[0].failed


def test_resubmission_clears_the_reviewers_marks(session):
    batch = advance(session, make_batch(session, "inst_jinan"), "submit")
    mark_candidate(session, user(session, "jinan"), batch.candidates[0], True, "缺少培训记录")
    advance(session, batch, "authority_reject", "reopen", "submit")
    session.expire_all()
    assert [c.failed for c in batch.candidates] == [False, False, False]


def test_approval_refused_when_a_holder_got_the_same_certificate_meanwhile(session):
    shared, _, _ = next_identity()
    first = advance(session, make_batch(session, "inst_jinan", candidates=1, id_numbers=[shared]),
                    "submit", "authority_approve")
    second = advance(session, make_batch(session, "inst_qingdao", candidates=2, id_numbers=[shared]),
                     "submit", "authority_approve")
    advance(session, first, "province_approve")
    name = second.candidates[0].name

    with pytest.raises(WorkflowError) as exc:
        advance(session, second, "province_approve")

    assert exc.value.message == f"以下人员已持有同职业(工种)等级的有效证书，不能发证：{name}({shared})"
    assert second.status == S.province_review
    assert certificates_of(session, second.id) == []


# -- effects: issuing (SPEC §4) -------------------------------------------------------------------


def _issued_before(session, prefix: str) -> int:
    return _count(session, Certificate, Certificate.number.startswith(prefix))


def _codes(session, candidate):
    occupation = session.get(Occupation, candidate.occupation_id)
    level = session.get(Level, candidate.level_id) if candidate.level_id else None
    return occupation.code, level.code if level else "0"


@pytest.mark.parametrize(("owner", "region", "authority_code"), [
    ("inst_jinan", "3701", "SD370100"),
    ("direct_inst", "3700", None),
])
def test_province_approval_issues_one_numbered_certificate_per_candidate(session, owner, region, authority_code):
    holder = session.scalar(select(Person).where(Person.name == "张建国"))
    new1, new2, new3 = (next_identity()[0] for _ in range(3))
    enterprise = org(session, "QY370101")
    pairs = [("砌筑工", "初级工(五级)"), ("施工员", None), ("焊工", "中级工(四级)")]
    # 张建国 (an existing person) gets 施工员; new2 appears twice with two different pairs.
    batch = make_batch(session, owner, candidates=5, pairs=pairs, employer_name=enterprise.name,
                       id_numbers=[new1, holder.id_number, new2, new2, new3])
    advance(session, batch, *REACHABLE[owner]["province_review"])
    yy = f"{local_today().year % 100:02d}"
    prefixes = {_codes(session, c): f"{yy}{region}{''.join(_codes(session, c))}1" for c in batch.candidates}
    before = {p: _issued_before(session, p) for p in prefixes.values()}
    persons_before = _count(session, Person)

    advance(session, batch, "province_approve")

    session.expire_all()
    certificates = certificates_of(session, batch.id)
    assert len(certificates) == 5
    assert _count(session, Person) == persons_before + 3  # new1, new2 (once), new3; the holder is reused
    issuer = org(session, "SZ370001" if owner == "direct_inst" else "JG370101")
    authority_id = org(session, authority_code).id if authority_code else None
    seen_serials = {}
    for cand in batch.candidates:
        cert = session.get(Certificate, cand.certificate_id)
        assert cert is not None and cert.batch_id == batch.id
        assert cert.person.id_number == cand.id_number
        assert (cert.occupation_id, cert.level_id) == (cand.occupation_id, cand.level_id)
        assert (cert.issuer_id, cert.authority_id) == (issuer.id, authority_id)
        assert cert.issue_date == local_today() and cert.status.value == "valid"
        prefix = prefixes[_codes(session, cand)]
        assert len(cert.number) == 15 and cert.number.isdigit()
        assert cert.number[:11] == prefix
        seen_serials.setdefault(prefix, []).append(int(cert.number[11:]))
    for prefix, serials in seen_serials.items():
        assert serials == list(range(before[prefix] + 1, before[prefix] + 1 + len(serials)))
    holder_cert = next(session.get(Certificate, c.certificate_id) for c in batch.candidates
                       if c.id_number == holder.id_number)
    assert holder_cert.person_id == holder.id
    assert holder_cert.number[9] == "0"  # 施工员 has no level
    new_person = session.scalar(select(Person).where(Person.id_number == new2))
    assert {c.person_id for c in certificates if c.person.id_number == new2} == {new_person.id}
    assert new_person.employer_id == enterprise.id


def test_two_hundred_candidates_across_a_segment_boundary_open_index_2(session):
    year = local_today().year
    key = dict(year=year, region_code="3701", occupation_code="001", level_code="5")
    segment = session.scalar(select(NumberSegment).filter_by(seg_index=1, **key))
    segment.position = 9990
    session.flush()
    batch = advance(session, make_batch(session, "inst_jinan", candidates=200), "submit", "authority_approve")

    advance(session, batch, "province_approve")

    numbers = [session.get(Certificate, c.certificate_id).number for c in batch.candidates]
    prefix = f"{year % 100:02d}3701001"
    assert numbers[:9] == [f"{prefix}51{s:04d}" for s in range(9991, 10000)]
    assert numbers[9:] == [f"{prefix}52{s:04d}" for s in range(1, 192)]
    assert len(set(numbers)) == 200
    positions = dict(session.execute(select(NumberSegment.seg_index, NumberSegment.position).filter_by(**key)).all())
    assert positions == {1: 9999, 2: 191}


def test_exhausted_segments_refuse_approval_and_issue_nothing(session):
    year = local_today().year
    for index in range(1, 10):
        session.add(NumberSegment(year=year, region_code="3701", occupation_code="006", level_code="3",
                                  seg_index=index, position=9999))
    batch = advance(session, make_batch(session, "inst_jinan", candidates=4,
                                        pairs=[("砌筑工", "初级工(五级)"), ("电工", "高级工(三级)")]),
                    "submit", "authority_approve")
    bricklayer = session.scalar(select(NumberSegment).filter_by(year=year, region_code="3701", occupation_code="001",
                                                                level_code="5", seg_index=1))
    position = bricklayer.position
    persons = _count(session, Person)

    with pytest.raises(WorkflowError) as exc:
        advance(session, batch, "province_approve")

    assert "第9号段" in exc.value.message and f"{year}年" in exc.value.message
    session.expire_all()
    assert batch.status == S.province_review
    assert certificates_of(session, batch.id) == []
    assert bricklayer.position == position  # the first group's numbers were handed back
    assert _count(session, Person) == persons
    assert all(c.certificate_id is None for c in batch.candidates)


# -- property: the row never leaves the table -------------------------------------------------------

STATES = {"draft", "authority_review", "province_review", "approved", "rejected"}
REASONS = ["", "  ", REASON]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owner=st.sampled_from(["inst_jinan", "direct_inst"]), data=st.data())
def test_random_sequences_only_follow_the_table(session, owner, data):
    """Random (demo user, transition, reason or empty) steps on a fresh batch.

    Half of the steps are drawn from what the table allows in the current state (so sequences
    reach 审核通过, 审核不通过 and 删除), the other half from anything at all.
    """
    batch = make_batch(session, owner, candidates=2)
    batch_id = batch.id
    users = {name: user(session, name) for name in DEMO_USERS}
    for _ in range(data.draw(st.integers(1, 15), label="length")):
        state = batch.status.value
        legal = [(u, t) for t, (_, sources, _) in TABLE.items() if state in sources for u in sorted(ALLOWED[owner][t])]
        if legal and data.draw(st.booleans(), label="plausible"):
            username, name = data.draw(st.sampled_from(legal), label="step")
        else:
            username = data.draw(st.sampled_from(DEMO_USERS), label="user")
            name = data.draw(st.sampled_from(sorted(TABLE)), label="transition")
        reason = data.draw(st.sampled_from(REASONS), label="reason")

        allowed = state in TABLE[name][1] and username in ALLOWED[owner][name]
        assert allowed == (name in [t.name for t in BATCH.available(users[username], batch)])
        expected_ok = allowed and (name not in NEEDS_REASON or bool(reason.strip()))
        try:
            BATCH.fire(session, users[username], batch, name, reason=reason)
            ok = True
        except WorkflowError:
            ok = False
        assert ok == expected_ok, (state, username, name, reason)
        if ok and name == "delete":
            assert session.get(Batch, batch_id) is None
            assert _logs(session, batch_id)[-1].to_state == "deleted"
            return
        session.expire(batch)
        now = batch.status.value
        assert now in STATES
        assert now == (target_of(owner, name) if ok else state)
        issued = _count(session, Certificate, Certificate.batch_id == batch_id)
        assert issued == (2 if now == "approved" else 0)


def test_demo_batches_of_every_state_exist_for_both_institutions(session):
    """SPEC §12: the walks above start from what the demo already holds, too."""
    rows = session.execute(
        select(Organization.code, Batch.status).join(Organization, Organization.id == Batch.institution_id)
    ).all()
    for code in ("JG370101", "JG370201"):
        assert {s.value for c, s in rows if c == code} == STATES



@pytest.mark.parametrize(("username", "states"), [
    ("jinan", {S.authority_review}), ("jinan_reviewer", {S.authority_review}), ("qingdao", {S.authority_review}),
    ("province", {S.province_review}), ("province_reviewer", {S.province_review}),
    ("inst_jinan", set()), ("direct_inst", set()), ("enterprise", set()), ("ministry", set()),
])
def test_what_waits_for_each_reviewer_comes_from_the_table(session, username, states):
    """审核批次 待审核 and the 首页 count: the sources of the review transitions a user is offered."""
    assert awaiting_review(user(session, username)) == states
