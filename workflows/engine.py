"""Declarative transition tables (SPEC §5), in the manner of django-fsm.

A ``Workflow`` is a table of ``Transition`` rows over one state attribute. ``fire`` is the
only code that changes a state: it checks the actor, the source state, the guards and the
reason, claims the row with its version (optimistic locking), runs the effects, writes the
``TransitionLog`` and the messages, all inside one savepoint, so a refused or stale
transition leaves nothing behind. ``fire_many`` does that per row and reports per row.

A workflow's state attribute is protected (django-fsm's ``protected=True``): once a row is in the
database, assigning it anywhere but in ``fire`` raises ``ProtectedStateError``, and so does an ORM
``update(Model).values(state=…)``. A new row's initial state is set like any column; seed data,
migrations and test fixtures that must place a row in a state use ``with setting_state(): …``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, attributes
from sqlalchemy.orm.exc import StaleDataError

from models import TransitionLog, User
from models.base import utcnow
from models.user import Permission
from workflows import NotFoundError, StaleObjectError, WorkflowError, messages
from workflows.audit import Kind, log


class ProtectedStateError(RuntimeError):
    """A workflow's state attribute was assigned outside the engine: a programming error."""


# Who is writing state attributes in the current context: None (nobody may), _ENGINE (``_apply``)
# or _ESCAPE (``setting_state``: seed data, migrations, test fixtures).
_ENGINE, _ESCAPE = "engine", "escape"
_writer: ContextVar[str | None] = ContextVar("state_writer", default=None)
# the info key under which a row remembers the state attributes last set through the escape, so a
# check of "no state change without a TransitionLog row" (tests/conftest.py) can leave them out
ESCAPED = "state_set_outside_transition"
# filled as Workflows are built: model → its state attributes; a TransitionLog's object_type → model
PROTECTED: dict[type, frozenset[str]] = {}
MODEL_OF_OBJECT_TYPE: dict[str, type] = {}


@contextmanager
def _writing(writer: str) -> Iterator[None]:
    token = _writer.set(writer)
    try:
        yield
    finally:
        _writer.reset(token)


def setting_state():
    """``with setting_state(): row.status = …`` — assign state attributes of rows already in the
    database: for seed data, migrations and test fixtures that place a row in a state without a
    transition; never for product code (tests/unit/test_layers.py)."""
    return _writing(_ESCAPE)


def _guard_state_assignment(target, value, oldvalue, initiator) -> None:
    """The ``set`` event of a protected attribute (it does not fire when rows are loaded)."""
    writer = _writer.get()
    state = attributes.instance_state(target)
    if writer == _ENGINE:
        if ESCAPED in state.info:
            state.info[ESCAPED].discard(initiator.key)
    elif writer == _ESCAPE:
        state.info.setdefault(ESCAPED, set()).add(initiator.key)
    elif state.key is not None:  # in the database already (a new row's initial state is free)
        raise ProtectedStateError(
            f"{type(target).__name__}.{initiator.key} is a workflow state: fire a transition "
            "(engine.Workflow.fire), or use engine.setting_state() in seed data and fixtures")


def _protect(model, state_attr: str, object_type: str) -> None:
    MODEL_OF_OBJECT_TYPE[object_type] = model
    names = PROTECTED.get(model, frozenset())
    if state_attr not in names:
        PROTECTED[model] = names | {state_attr}
        event.listen(getattr(model, state_attr), "set", _guard_state_assignment)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_state_update(execute_state) -> None:
    """An ORM ``update(Model).values(<state>=…)`` would skip the engine as an assignment would."""
    if not execute_state.is_update or _writer.get() is not None:
        return
    mapper = execute_state.bind_mapper
    names = PROTECTED.get(mapper.class_) if mapper is not None else None
    if not names:
        return
    statement = execute_state.statement
    keys = {getattr(k, "key", k) for k in statement._values or ()}  # noqa: SLF001 (no public accessor)
    for params in execute_state.parameters if execute_state.is_executemany else ():
        keys.update(params)
    touched = names & keys
    if touched:
        raise ProtectedStateError(f"{mapper.class_.__name__}.{min(touched)} is a workflow state: an ORM UPDATE "
                                  "may not set it (fire a transition for each row)")


@dataclass(frozen=True)
class Guard:
    """A rule that must hold.

    ``check(ctx)`` returns True (or None) when it holds, False to refuse with ``message``, or a
    string to refuse with that more specific message (e.g. naming the offending rows).

    ``offer=True`` marks a condition on the row alone — no query, no reason, no data typed — that
    also decides whether the transition is offered at all (as django-fsm's ``conditions``): 同意撤回
    is not offered before the enterprise asks. ``available`` runs those, with ``ctx.session`` None.
    The others are checks of what the row holds or the user typed, run when it fires: their button
    stays, and pressing it says what is missing (「请先上传照片」), which a hidden button never would.
    """

    check: Callable[[Context], bool | str | None]
    message: str = "不满足操作条件"
    offer: bool = False


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple
    target: Any  # a state, or a callable(obj) -> state when the target depends on the object
    who: Callable[[User, Any], bool]  # organization kind + relation to the object
    permission: Permission | None = None
    guards: tuple[Guard, ...] = ()
    needs_reason: bool = False
    reason_label: str = "原因"
    effects: tuple[Callable[[Context], None], ...] = ()
    notify: Callable[[Context], Iterable[int]] | None = None  # organization ids to message
    notify_users: Callable[[Context], Iterable[int]] | None = None  # user ids (individuals have no org)
    bulk: bool = True  # offered as a list action over selected rows
    # False: fired only by code (another workflow's effect, e.g. 补办 voiding the old certificate),
    # never offered as a button or action; it still goes through ``fire`` and the log
    manual: bool = True
    danger: bool = False
    confirm: str | None = None
    # what to say when the row is in a state the transition does not start from, when the
    # generic 「当前状态为…」 is not what the manual says (re-reporting: 「已上报，请勿重复上报」)
    state_message: Callable[[Any], str | None] | None = None

    def target_for(self, obj) -> Any:
        return self.target(obj) if callable(self.target) else self.target


@dataclass
class Context:
    """What a guard or an effect sees."""

    session: Session
    user: User
    obj: Any
    transition: Transition
    from_state: Any
    reason: str | None = None
    data: dict = field(default_factory=dict)


@dataclass
class RowResult:
    id: Any
    label: str
    ok: bool
    message: str = ""


@dataclass
class BulkResult:
    rows: list[RowResult] = field(default_factory=list)

    @property
    def succeeded(self) -> list[RowResult]:
        return [r for r in self.rows if r.ok]

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.rows if not r.ok]

    def summary(self) -> str:
        """成功 N 条，失败 M 条 — the wording the manuals' bulk operations use."""
        text = f"成功 {len(self.succeeded)} 条，失败 {len(self.failed)} 条"
        if self.failed:
            text += "：" + "；".join(f"{r.label}：{r.message}" for r in self.failed)
        return text


class Workflow:
    def __init__(
        self,
        model,
        state_attr: str,
        transitions: Sequence[Transition],
        *,
        object_type: str,
        title: Callable[[Any], str] = str,
    ):
        self.model = model
        self.state_attr = state_attr
        self.object_type = object_type
        self.title = title
        self.transitions = {t.name: t for t in transitions}
        if len(self.transitions) != len(transitions):
            raise ValueError("duplicate transition names")
        _protect(model, state_attr, object_type)

    # -- reading the table ------------------------------------------------------------
    def transition(self, name: str) -> Transition:
        try:
            return self.transitions[name]
        except KeyError:
            raise WorkflowError("不支持的操作") from None

    def state_of(self, obj):
        return getattr(obj, self.state_attr)

    def states(self) -> set:
        out = set()
        for t in self.transitions.values():
            out.update(t.sources)
            if not callable(t.target):
                out.add(t.target)
        return out

    def may(self, user: User, obj, transition: Transition) -> bool:
        """Actor check without guards: right organization, relation and permission."""
        if user is None or not getattr(user, "is_enabled", False):
            return False
        if transition.permission is not None and not user.has(transition.permission):
            return False
        return bool(transition.who(user, obj))

    def available(self, user: User, obj, *, manual: bool = True) -> list[Transition]:
        """What ``user`` may do to ``obj`` now (django-fsm's ``get_available_user_*_transitions``):
        the actor may fire it, the row is in one of its sources, and its ``offer`` guards hold.
        Views offer exactly this (details buttons, the 操作 column); ``manual`` keeps out the
        transitions only code fires. It reads nothing but the row: a list asks it for every row."""
        state = self.state_of(obj)
        return [t for t in self.transitions.values()
                if (t.manual or not manual) and state in t.sources and self.may(user, obj, t)
                and self._offered_on(user, obj, t, state)]

    def allows(self, user: User, obj, name: str) -> bool:
        """``name`` is among ``available(user, obj)``."""
        return any(t.name == name for t in self.available(user, obj, manual=False))

    @staticmethod
    def _offered_on(user: User, obj, transition: Transition, state) -> bool:
        if not any(g.offer for g in transition.guards):
            return True
        ctx = Context(None, user, obj, transition, state)
        return all(g.check(ctx) in (True, None) for g in transition.guards if g.offer)

    def offered(self, user: User) -> list[Transition]:
        """Transitions the user could fire on some object: what list pages offer as actions."""
        return [t for t in self.transitions.values() if self._may_in_principle(user, t)]

    def awaiting(self, user: User, *names: str) -> set:
        """States in which rows wait for ``user``: sources of the named transitions it is offered
        (审核批次 待审核 for an authority is authority_review, for the province province_review)."""
        return {s for t in self.offered(user) if t.name in names for s in t.sources}

    def _may_in_principle(self, user: User, transition: Transition) -> bool:
        if user is None or (transition.permission is not None and not user.has(transition.permission)):
            return False
        probe = getattr(transition.who, "kinds", None)
        return probe is None or (user.kind in probe)

    # -- firing -----------------------------------------------------------------------
    def check(self, session: Session, user: User, obj, name: str, reason: str | None = None, **data) -> Context:
        """Raise ``WorkflowError`` with the first reason ``name`` cannot fire now."""
        transition = self.transition(name)
        state = self.state_of(obj)
        if not self.may(user, obj, transition):
            raise WorkflowError(f"无权执行「{transition.label}」")
        if state not in transition.sources:
            specific = transition.state_message(state) if transition.state_message else None
            raise WorkflowError(specific or f"当前状态为「{_label(state)}」，不能执行「{transition.label}」")
        reason = (reason or "").strip() or None
        if transition.needs_reason and not reason:
            raise WorkflowError(f"请填写{transition.reason_label}")
        ctx = Context(session, user, obj, transition, state, reason, data)
        for guard in transition.guards:
            verdict = guard.check(ctx)
            if isinstance(verdict, str):
                raise WorkflowError(verdict)
            if verdict is False:
                raise WorkflowError(guard.message)
        return ctx

    def fire(self, session: Session, user: User, obj, name: str, reason: str | None = None, **data):
        """Fire one transition inside a savepoint; on any refusal nothing of it remains."""
        try:
            with session.begin_nested():
                try:
                    ctx = self.check(session, user, obj, name, reason, **data)
                except WorkflowError:
                    # a guard that failed because someone else moved the row on (e.g. the
                    # certificates they just issued) must say so, not blame the data
                    if _moved_on(session, obj):
                        raise StaleObjectError() from None
                    raise
                self._apply(ctx)
        except StaleDataError:
            session.expire_all()
            raise StaleObjectError() from None
        return obj

    def _apply(self, ctx: Context) -> None:
        session, obj, transition = ctx.session, ctx.obj, ctx.transition
        target = transition.target_for(obj)
        with _writing(_ENGINE):
            setattr(obj, self.state_attr, target)
        # Claim the row first: the version check in this UPDATE is what makes the second of
        # two simultaneous reviewers fail before any effect (certificates, numbers) runs.
        session.flush()
        for effect in transition.effects:
            effect(ctx)
        session.add(
            TransitionLog(
                object_type=self.object_type,
                object_id=obj.id,
                transition=transition.name,
                label=transition.label,
                from_state=_value(ctx.from_state),
                to_state=_value(target),
                actor_id=ctx.user.id,
                organization_id=ctx.user.organization_id,
                reason=ctx.reason,
                created_at=utcnow(),
            )
        )
        # 操作日志 (SPEC §8) shows transitions beside sign-ins and edits
        log(session, ctx.user, Kind.TRANSITION, f"{self.title(obj)}：{transition.label}"
            + (f"（原因：{ctx.reason}）" if ctx.reason else ""), obj=obj)
        if transition.notify is not None or transition.notify_users is not None:
            self._notify(ctx, transition.notify(ctx) if transition.notify else (),
                         transition.notify_users(ctx) if transition.notify_users else ())
        session.flush()

    def _notify(self, ctx: Context, org_ids: Iterable[int], user_ids: Iterable[int] = ()) -> None:
        """我的消息 to the enabled users of the concerned organizations, and to named users."""
        body = f"{_label(ctx.from_state)} → {_label(ctx.transition.target_for(ctx.obj))}"
        if ctx.reason:
            body += f"；原因：{ctx.reason}"
        messages.send(ctx.session, title=f"{self.title(ctx.obj)}：{ctx.transition.label}", body=body, obj=ctx.obj,
                      object_type=self.object_type, org_ids=org_ids, user_ids=user_ids, besides=ctx.user.id)

    def fire_many(self, session: Session, user: User, objs_by_id: dict, ids: Iterable, name: str,
                  reason: str | None = None, **data) -> BulkResult:
        """Fire on each id; ``objs_by_id`` holds only rows the user may see (others: not found).

        One bad row never blocks or half-applies the others: each row has its own savepoint.
        """
        result = BulkResult()
        for raw_id in ids:
            obj = objs_by_id.get(raw_id)
            if obj is None:
                result.rows.append(RowResult(raw_id, f"#{raw_id}", False, NotFoundError().message))
                continue
            label = self.title(obj)
            try:
                self.fire(session, user, obj, name, reason, **data)
            except WorkflowError as exc:
                result.rows.append(RowResult(raw_id, label, False, exc.message))
            else:
                result.rows.append(RowResult(raw_id, label, True))
        return result


def _moved_on(session: Session, obj) -> bool:
    """The row's version changed, or the row vanished, since ``obj`` was loaded."""
    state = sa_inspect(obj)
    mapper = state.mapper
    column = mapper.version_id_col
    if column is None or state.identity is None:
        return False
    loaded = state.attrs[mapper.get_property_by_column(column).key].loaded_value
    current = session.execute(
        select(column).where(*(c == v for c, v in zip(mapper.primary_key, state.identity, strict=True)))
    ).scalar_one_or_none()
    return current != loaded


def _value(state) -> str:
    return getattr(state, "value", str(state))


def _label(state) -> str:
    return getattr(state, "label", None) or _value(state)


def actor(*kinds, relation: Callable[[User, Any], bool] | None = None):
    """Build a ``who`` predicate: the user's organization is one of ``kinds`` and ``relation`` holds.

    The kinds are kept on the function so list pages can tell which actions to offer.
    """

    def who(user: User, obj) -> bool:
        if user.kind not in kinds:
            return False
        return relation is None or bool(relation(user, obj))

    who.kinds = frozenset(kinds)
    return who
