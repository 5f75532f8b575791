"""The certificate workflow (SPEC §3, §6; 003 §八.2): 注销, 激活, 作废 by the province; 补办作废
and 注销(业务) fired only by code; 已作废 terminal and its number never issued again."""

from __future__ import annotations

import pytest
from flask_login import login_user
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from models import AuditLog, Certificate, Message, TransitionLog, User
from models.base import utcnow
from models.certificate import CertificateStatus
from tests.factories import advance, make_batch, user
from workflows import WorkflowError
from workflows.certificate import CERTIFICATE, other_valid_certificate, state_label
from workflows.numbering import allocate_numbers, segment_key

S = CertificateStatus
PROVINCE_USERS = ("province", "province_reviewer")
# Every demo account that is not the province (SPEC §12): none may touch a certificate's state.
NOT_PROVINCE = ("jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao", "direct_inst", "enterprise",
                "enterprise2", "school", "person", "ministry")
REASON = "证书信息有误"
# the transitions a state is reached by from valid (test set-up goes through the engine too)
PATH = {S.valid: (), S.cancelled: ("cancel",), S.voided: ("void",)}
MANUAL = ("cancel", "activate", "void")
BY_CODE = ("void_for_reissue", "cancel_by_application")


@pytest.fixture
def session(rolled_session):
    """One demo copy for the module, every test rolled back."""
    return rolled_session


def _province(session) -> User:
    return user(session, "province")


def certificate_of(session, issuer_code: str = "JG370101") -> Certificate:
    return session.scalar(
        select(Certificate).where(Certificate.issuer.has(code=issuer_code), Certificate.status == S.valid)
        .order_by(Certificate.id).limit(1)
    )


def in_state(session, state: S, issuer_code: str = "JG370101") -> Certificate:
    cert = certificate_of(session, issuer_code)
    for step in PATH[state]:
        CERTIFICATE.fire(session, _province(session), cert, step, reason=REASON)
    assert cert.status == state
    return cert


def _logs(session, cert) -> list[TransitionLog]:
    return list(session.scalars(
        select(TransitionLog).where(TransitionLog.object_type == "certificate", TransitionLog.object_id == cert.id)
        .order_by(TransitionLog.id)
    ))


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


# -- the table ---------------------------------------------------------------------------------
def test_the_table_reads_as_the_spec():
    table = {name: (set(t.sources), t.target, t.needs_reason, t.bulk, t.manual)
             for name, t in CERTIFICATE.transitions.items()}
    assert table == {
        "cancel": ({S.valid}, S.cancelled, False, True, True),
        "activate": ({S.cancelled}, S.valid, False, True, True),
        "void": ({S.valid, S.cancelled}, S.voided, True, True, True),
        "void_for_reissue": ({S.valid}, S.voided, False, False, False),
        "cancel_by_application": ({S.valid}, S.cancelled, False, False, False),
    }
    assert CERTIFICATE.object_type == "certificate"
    assert CERTIFICATE.states() == set(S)


def test_voided_is_terminal():
    """No row of the table leaves 已作废."""
    assert all(S.voided not in t.sources for t in CERTIFICATE.transitions.values())


def test_states_are_shown_in_chinese():
    assert [state_label(s.value) for s in S] == ["有效", "已注销", "已作废"]
    assert state_label("unknown") == "unknown"


# -- what the province may do --------------------------------------------------------------------
LEGAL = [(state, name, t.target) for name, t in CERTIFICATE.transitions.items() for state in t.sources]


@pytest.mark.parametrize("who", PROVINCE_USERS)
@pytest.mark.parametrize(("state", "name", "target"), LEGAL, ids=[f"{s.value}-{n}" for s, n, _ in LEGAL])
def test_every_legal_transition_fired_by_the_province(session, who, state, name, target):
    cert = in_state(session, state)
    actor = user(session, who)
    reason = REASON if CERTIFICATE.transitions[name].needs_reason else None
    CERTIFICATE.fire(session, actor, cert, name, reason=reason)
    assert cert.status == target
    session.expire(cert)
    assert cert.status == target  # in the database, not only on the object
    log = _logs(session, cert)[-1]
    assert (log.transition, log.from_state, log.to_state) == (name, state.value, target.value)
    assert (log.actor_id, log.organization_id) == (actor.id, actor.organization_id)


ILLEGAL = [(state, name) for name, t in CERTIFICATE.transitions.items() for state in S if state not in t.sources]


@pytest.mark.parametrize(("state", "name"), ILLEGAL, ids=[f"{s.value}-{n}" for s, n in ILLEGAL])
def test_every_illegal_state_is_refused_with_the_state(session, state, name):
    cert = in_state(session, state)
    logs = len(_logs(session, cert))
    with pytest.raises(WorkflowError) as exc:
        CERTIFICATE.fire(session, _province(session), cert, name, reason=REASON)
    label = CERTIFICATE.transitions[name].label
    assert exc.value.message == f"当前状态为「{state.label}」，不能执行「{label}」"
    session.expire(cert)
    assert cert.status == state
    assert len(_logs(session, cert)) == logs


@pytest.mark.parametrize("who", NOT_PROVINCE)
@pytest.mark.parametrize("name", list(CERTIFICATE.transitions))
def test_no_one_but_the_province_may_fire(session, who, name):
    """Not the issuing institution, not its authority, not the holder's employer, not the holder."""
    transition = CERTIFICATE.transitions[name]
    state = next(iter(transition.sources))
    cert = in_state(session, state)
    before = (len(_logs(session, cert)), _count(session, Message))
    with pytest.raises(WorkflowError) as exc:
        CERTIFICATE.fire(session, user(session, who), cert, name, reason=REASON)
    assert exc.value.message == f"无权执行「{transition.label}」"
    session.expire(cert)
    assert cert.status == state
    assert (len(_logs(session, cert)), _count(session, Message)) == before
    assert CERTIFICATE.available(user(session, who), cert) == []
    assert CERTIFICATE.offered(user(session, who)) == []


def test_a_province_user_without_business_review_is_refused(session):
    reviewer = user(session, "province_reviewer")
    reviewer.set_permissions(reviewer.permissions - {"business_review"})
    session.flush()
    cert = certificate_of(session)
    with pytest.raises(WorkflowError, match="无权执行「注销」"):
        CERTIFICATE.fire(session, reviewer, cert, "cancel")


# -- reasons ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [S.valid, S.cancelled])
@pytest.mark.parametrize("reason", [None, "", "   \n "])
def test_void_without_reason_is_refused(session, state, reason):
    cert = in_state(session, state)
    with pytest.raises(WorkflowError) as exc:
        CERTIFICATE.fire(session, _province(session), cert, "void", reason=reason)
    assert exc.value.message == "请填写作废原因"
    session.expire(cert)
    assert cert.status == state


def test_cancel_reason_is_optional_and_kept_in_the_log(session):
    with_reason, without = in_state(session, S.valid), in_state(session, S.valid, "JG370201")
    CERTIFICATE.fire(session, _province(session), with_reason, "cancel", reason="  持证人申请注销  ")
    CERTIFICATE.fire(session, _province(session), without, "cancel")
    assert _logs(session, with_reason)[-1].reason == "持证人申请注销"
    assert _logs(session, without)[-1].reason is None
    assert with_reason.status == without.status == S.cancelled


# -- 已作废 is terminal ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CERTIFICATE.transitions))
def test_nothing_leaves_voided(session, name):
    cert = in_state(session, S.voided)
    with pytest.raises(WorkflowError, match="当前状态为「已作废」"):
        CERTIFICATE.fire(session, _province(session), cert, name, reason=REASON)
    assert CERTIFICATE.available(_province(session), cert) == []


def test_a_voided_number_is_never_issued_again(session):
    """Numbers are unique in the table and a segment's position only moves forward (SPEC §4)."""
    cert = in_state(session, S.voided)
    key = segment_key(cert.issuer, cert.occupation, cert.level, cert.issue_date.year)
    fresh = allocate_numbers(session, key, 30)
    assert cert.number not in fresh
    assert min(fresh) > cert.number  # the same segment goes on after it, never back
    with pytest.raises(IntegrityError):  # and the table itself refuses a second row with it
        with session.begin_nested():
            session.execute(insert(Certificate).values(
                number=cert.number, person_id=cert.person_id, occupation_id=cert.occupation_id,
                level_id=cert.level_id, issuer_id=cert.issuer_id, issue_date=cert.issue_date,
                status=S.valid, print_status="unprinted", endorsement_count=0, created_at=utcnow(), version=1))


# -- 激活: one valid certificate per holder and occupation/level -----------------------------------
def _second_certificate_for(session, cert) -> Certificate:
    """The holder earns the same certificate again through a new batch while ``cert`` is cancelled."""
    pair = (cert.occupation.name, cert.level.name if cert.level else None)
    batch = make_batch(session, "inst_jinan", candidates=1, pairs=[pair], id_numbers=[cert.person.id_number])
    advance(session, batch, "submit", "authority_approve", "province_approve")
    return session.scalar(select(Certificate).where(Certificate.batch_id == batch.id))


def test_activate_is_blocked_while_another_valid_certificate_of_the_pair_exists(session):
    cert = in_state(session, S.cancelled)
    newer = _second_certificate_for(session, cert)
    assert newer.person_id == cert.person_id and newer.status == S.valid
    assert other_valid_certificate(session, cert).id == newer.id
    with pytest.raises(WorkflowError) as exc:
        CERTIFICATE.fire(session, _province(session), cert, "activate")
    assert f"已持有同职业(工种)等级的有效证书「{newer.number}」" in exc.value.message
    assert cert.person.name in exc.value.message
    session.expire(cert)
    assert cert.status == S.cancelled
    # once the newer one is voided, the old one may be activated again
    CERTIFICATE.fire(session, _province(session), newer, "void", reason="重复发证")
    CERTIFICATE.fire(session, _province(session), cert, "activate")
    assert cert.status == S.valid


def test_activate_ignores_other_pairs_and_other_holders(session):
    """张建国 holds two valid certificates of different occupations: activating one is fine."""
    person_user = user(session, "person")
    certs = list(session.scalars(select(Certificate).where(Certificate.person_id == person_user.person_id)))
    assert len(certs) == 2
    CERTIFICATE.fire(session, _province(session), certs[0], "cancel")
    assert other_valid_certificate(session, certs[0]) is None
    CERTIFICATE.fire(session, _province(session), certs[0], "activate")
    assert certs[0].status == S.valid


# -- what firing leaves behind -------------------------------------------------------------------------
def test_transition_log_audit_log_and_messages_to_the_issuer(session):
    cert = certificate_of(session)
    province = _province(session)
    issuer_users = set(session.scalars(select(User.id).where(User.organization_id == cert.issuer_id,
                                                             User.is_enabled.is_(True))))
    assert issuer_users
    CERTIFICATE.fire(session, province, cert, "void", reason="证书编号录入错误")
    [log] = _logs(session, cert)
    assert (log.transition, log.label, log.from_state, log.to_state, log.reason) == (
        "void", "作废", "valid", "voided", "证书编号录入错误")
    assert (log.actor_id, log.organization_id) == (province.id, province.organization_id)
    messages = list(session.scalars(select(Message).where(Message.object_type == "certificate",
                                                          Message.object_id == cert.id)))
    assert {m.user_id for m in messages} == issuer_users
    assert all(m.title == f"证书「{cert.number}」：作废" and "证书编号录入错误" in m.body for m in messages)
    audit = session.scalar(select(AuditLog).where(AuditLog.object_type == "certificate",
                                                  AuditLog.object_id == cert.id))
    assert audit.summary == f"证书「{cert.number}」：作废（原因：证书编号录入错误）"


@pytest.mark.parametrize(("name", "target"), [("void_for_reissue", S.voided), ("cancel_by_application", S.cancelled)])
def test_business_effects_go_through_the_engine(session, name, target):
    """补办 and 注销 applications fire these from their own effects: logged like the others."""
    cert = certificate_of(session)
    CERTIFICATE.fire(session, _province(session), cert, name, reason="业务申请 #1 审核通过")
    assert cert.status == target
    [log] = _logs(session, cert)
    assert (log.transition, log.reason) == (name, "业务申请 #1 审核通过")


def test_bulk_reports_per_row(session):
    valid, cancelled = in_state(session, S.valid), in_state(session, S.cancelled, "JG370201")
    rows = {str(valid.id): valid, str(cancelled.id): cancelled}
    result = CERTIFICATE.fire_many(session, _province(session), rows, [str(valid.id), str(cancelled.id), "0"],
                                   "cancel")
    assert [r.ok for r in result.rows] == [True, False, False]
    assert result.summary().startswith("成功 1 条，失败 2 条")
    assert "当前状态为「已注销」" in result.summary()


# -- what the views offer ------------------------------------------------------------------------------
def _views(app):
    return {v.endpoint: v for v in app.extensions["admin"][0]._views}


def test_code_only_transitions_are_never_offered_by_the_views(module_demo, session):
    library = _views(module_demo)["certificate_library"]
    assert {name for name, _ in library._actions if name.startswith("wf_")} == {f"wf_{n}" for n in MANUAL}
    province = _province(session)
    valid, cancelled = in_state(session, S.valid), in_state(session, S.cancelled, "JG370201")
    with module_demo.test_request_context():
        login_user(province)
        offered = {t.name for t in library.offered_transitions()}
        assert offered == set(MANUAL)
        assert {t.name for t in library.available_transitions(valid)} == {"cancel", "void"}
        assert {t.name for t in library.available_transitions(cancelled)} == {"activate", "void"}
        assert not any(library.is_action_allowed(f"wf_{n}") for n in BY_CODE)
        # the engine itself still lists them: they are fired by code, through it
        assert set(BY_CODE) <= {t.name for t in CERTIFICATE.available(province, valid, manual=False)}


def test_the_certificate_view_offers_only_printing(module_demo, session):
    """证书查看 changes no certificate status: its actions are the print-status table's (and the
    .zip of the selection's electronic certificates, issue 19)."""
    view = _views(module_demo)["certificate"]
    assert {name for name, _ in view._actions} - {"delete"} == {"print", "wf_mark_printed", "wf_mark_unprinted",
                                                                "ecert_zip"}
    assert not view.can_delete
    with module_demo.test_request_context():
        login_user(user(session, "inst_jinan"))
        assert [t.name for t in view.available_transitions(certificate_of(session))] == ["mark_printed"]
    with module_demo.test_request_context():
        login_user(user(session, "jinan"))
        assert view.available_transitions(certificate_of(session)) == []
