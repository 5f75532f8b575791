"""The certificate workflow (证书, SPEC §3, §6; manual 003 §八.2 省厅可对证书进行注销及激活操作).

Read the ``CERTIFICATE`` table top to bottom: it is the whole life of a certificate after
issue. 注销 / 激活 / 作废 are the province's hand in 证书库; 补办作废 and 注销(业务) are the
effects of an approved certificate-business application (SPEC §5.2), fired by that workflow
through this table so the certificate's 业务日志 records them — never offered as buttons.
已作废 is terminal: no row of the table leaves it, and its number is never issued again
(numbers are unique and number segments only move forward, SPEC §4).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from models import ApplicationStatus, Certificate, ElectronicEnd
from models.certificate import CertificateStatus, PrintStatus
from models.org import OrgKind
from models.user import Permission
from workflows import ecert
from workflows.engine import Context, Guard, Transition, Workflow, actor

S = CertificateStatus
PROVINCE = actor(OrgKind.province)


# -- guards ------------------------------------------------------------------------------
def other_valid_certificate(session, certificate: Certificate) -> Certificate | None:
    """A valid certificate of the same holder, occupation and level other than ``certificate``."""
    return session.scalars(
        select(Certificate).where(
            Certificate.person_id == certificate.person_id,
            Certificate.occupation_id == certificate.occupation_id,
            Certificate.level_id.is_not_distinct_from(certificate.level_id),
            Certificate.status == S.valid,
            Certificate.id != certificate.id,
        ).order_by(Certificate.id).limit(1)
    ).first()


def _no_other_valid(ctx: Context):
    """One valid certificate per holder and occupation/level (the batch import's rule, SPEC §5.1)."""
    other = other_valid_certificate(ctx.session, ctx.obj)
    if other is not None:
        return (f"持证人{ctx.obj.person.name}已持有同职业(工种)等级的有效证书「{other.number}」，"
                f"不能激活证书「{ctx.obj.number}」")
    return True


# -- effects: the electronic certificate follows the certificate (issue 19) ------------------
def _ecert_ends(reason: ElectronicEnd):
    def effect(ctx: Context) -> None:
        ecert.end(ctx.session, [ctx.obj.id], reason)
    effect.__name__ = f"_ecert_{reason.value}"
    return effect


def _ecert_issued(ctx: Context) -> None:
    ecert.issue(ctx.session, [ctx.obj])


# -- notifications -----------------------------------------------------------------------
def _notify_issuer(ctx: Context) -> Iterable[int]:
    return [ctx.obj.issuer_id]


CERTIFICATE = Workflow(
    Certificate,
    "status",
    [
        Transition(
            "cancel", "注销", (S.valid,), S.cancelled,
            who=PROVINCE, permission=Permission.business_review,
            reason_label="注销原因", notify=_notify_issuer, effects=(_ecert_ends(ElectronicEnd.cancelled),),
            confirm="确定注销所选证书？注销后可由省厅重新激活",
        ),
        Transition(
            "activate", "激活", (S.cancelled,), S.valid,
            who=PROVINCE, permission=Permission.business_review,
            guards=(Guard(_no_other_valid),),
            reason_label="激活说明", notify=_notify_issuer, effects=(_ecert_issued,),
        ),
        Transition(
            "void", "作废", (S.valid, S.cancelled), S.voided,
            who=PROVINCE, permission=Permission.business_review,
            needs_reason=True, reason_label="作废原因", notify=_notify_issuer, danger=True,
            effects=(_ecert_ends(ElectronicEnd.voided),),
            confirm="作废后证书不可恢复，证书编号不再使用，确定作废？",
        ),
        # fired by an approved 补办 application (SPEC §5.2): the old number is voided, a new one issued
        Transition(
            "void_for_reissue", "补办作废", (S.valid,), S.voided,
            who=PROVINCE, permission=Permission.business_review, effects=(_ecert_ends(ElectronicEnd.voided),),
            notify=_notify_issuer, bulk=False, manual=False,
        ),
        # fired by an approved 注销 application (SPEC §5.2)
        Transition(
            "cancel_by_application", "注销(业务)", (S.valid,), S.cancelled,
            who=PROVINCE, permission=Permission.business_review, effects=(_ecert_ends(ElectronicEnd.cancelled),),
            notify=_notify_issuer, bulk=False, manual=False,
        ),
    ],
    object_type="certificate",
    title=lambda c: f"证书「{c.number}」",
)


def state_label(value) -> str:
    """业务日志 shows states in Chinese (status, or print status: both tables log as "certificate";
    and the states of the applications that held the certificate); a value none knows is shown as is."""
    for states in (CertificateStatus, PrintStatus, ApplicationStatus):
        try:
            return states(value).label
        except ValueError:
            continue
    return value or ""
