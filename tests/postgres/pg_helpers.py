"""Helpers for tests/postgres: building reviewable batches, and the code child processes run.

Child processes are started with the ``spawn`` context, so each imports this module afresh and
builds its own app and engine from the database URL: nothing (no connection, no session) is
shared with the parent, exactly like two gunicorn workers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import traceback
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from tests.signing import signing_config

REPO = Path(__file__).resolve().parent.parent.parent

STALE_MESSAGE = "该记录已被他人处理"
# the failing side of two simultaneous approvals arrives after the winner's commit
STATE_MESSAGE_PREFIX = "当前状态为"

# in inst_jinan's scope; the demo issues no 济南 number in its segment (26 3701 006 3 x), which
# test_the_race_segment_starts_empty checks so a demo change cannot silently break the gap tests
PAIR = ("电工", "高级工(三级)")
PAIR_SEGMENT = ("006", "3")
REGION6 = "370103"  # a district no demo person is born in, so generated IDs never clash with the seed


# -- apps on PostgreSQL -----------------------------------------------------------------------
def app_config(url: str, tmp: str | os.PathLike) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "x",
        "SQLALCHEMY_DATABASE_URI": url,
        "SMS_OUTBOX_PATH": str(Path(tmp) / "sms_outbox.log"),
        "SMS_SHOW_CODE": True,
        **signing_config(),
    }


@contextlib.contextmanager
def preserved_logging():
    """Alembic's env.py runs logging.config.fileConfig, which disables every existing logger
    and replaces the root handlers; put them back so later tests' logging and caplog still work."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    loggers = {name: lg.disabled for name, lg in logging.root.manager.loggerDict.items()
               if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.disabled = loggers.get(name, lg.disabled)


def build_schema() -> None:
    """What `flask db upgrade` does (inside an app context): PostgreSQL gets the real migrations."""
    import flask_migrate

    with preserved_logging():
        flask_migrate.upgrade()


def make_rows(count: int, tag: int, pair: tuple[str, str | None] = PAIR, employer: str | None = None):
    """``count`` clean template rows with valid, unique ID numbers; ``tag`` separates batches."""
    from workflows.excel import CandidateRow as Row
    from workflows.validators import make_id_number

    rows = []
    for i in range(count):
        birth = date(1970, 1, 1) + timedelta(days=tag * 40 + i // 500)
        gender = "男" if i % 2 else "女"
        rows.append(Row(
            row=i + 2, name=f"考生{tag}-{i}", id_number=make_id_number(REGION6, birth, i % 500, gender),
            birth_date=birth, gender=gender, phone=f"137{tag % 10_000:04d}{i % 10_000:04d}",
            employer_name=employer, occupation_name=pair[0], level_name=pair[1],
        ))
    return rows


def user(session, username: str):
    from models import User

    return session.scalars(select(User).where(User.username == username)).one()


def reviewable_batch(session, tag: int, count: int = 30, pair=PAIR, institution="inst_jinan",
                     authority="jinan") -> int:
    """A batch of ``institution`` moved to 审核中(省厅) by the demo users; returns its id (not committed)."""
    from seed.reference import ensure_reference
    from workflows.batch import BATCH, create_batch

    inst, auth = user(session, institution), user(session, authority)
    occupations, levels = ensure_reference(session)
    batch = create_batch(session, inst, f"并发测试批次{tag}", make_rows(count, tag, pair), occupations, levels)
    BATCH.fire(session, inst, batch, "submit")
    BATCH.fire(session, auth, batch, "authority_approve")
    session.flush()
    return batch.id


# -- child processes ------------------------------------------------------------------------
def approve_worker(url: str, tmp: str, username: str, batch_ids: list[int], barrier, results) -> None:
    """Fire ``province_approve`` on each batch in turn, all processes released together by ``barrier``.

    Puts one ``(username, batch_id, outcome, message, error_type)`` per batch on ``results``;
    outcome is ``ok``, ``refused`` (a WorkflowError) or ``error`` (anything else).
    """
    try:
        from app import create_app
        from models import db

        app = create_app(app_config(url, tmp))
    except Exception:
        for batch_id in batch_ids:
            results.put((username, batch_id, "error", traceback.format_exc(), "startup"))
        barrier.abort()
        return
    with app.app_context():
        for batch_id in batch_ids:
            results.put((username, batch_id, *_approve_once(db.session, username, batch_id, barrier)))
        db.session.remove()
        db.engine.dispose()


def _approve_once(session, username: str, batch_id: int, barrier) -> tuple[str, str, str]:
    from models import Batch
    from workflows import WorkflowError
    from workflows.batch import BATCH

    try:
        # Load everything the transition reads before the barrier: both reviewers hold the
        # same version of the batch when they fire, as two browsers showing the same page.
        actor = user(session, username)
        _ = actor.permissions, actor.organization
        batch = session.get(Batch, batch_id)
        _ = batch.institution.parent, batch.version
    except Exception:
        session.rollback()
        barrier.abort()
        return "error", traceback.format_exc(), "load"
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        session.rollback()
        return "error", "barrier broken", "barrier"
    try:
        BATCH.fire(session, actor, batch, "province_approve")
        session.commit()
        return "ok", "", ""
    except WorkflowError as exc:
        session.rollback()
        return "refused", exc.message, type(exc).__name__
    except Exception as exc:
        session.rollback()
        return "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", type(exc).__name__
    finally:
        session.expunge_all()


def collect(results, processes, expected: int, timeout: float = 180) -> list[tuple]:
    """Read ``expected`` results (before joining, so no child blocks on a full pipe)."""
    import queue
    import time

    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                out.append(results.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    break
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    return out


# -- races of issue 4: checks that read, then an insert the database's constraint decides --------
def race_worker(url: str, tmp: str, job: str, args: tuple, barrier, results) -> None:
    """Run ``job`` (a function of this module) once: it loads what it needs and returns the
    action, which fires when every process reached ``barrier``. Puts (outcome, message)."""
    try:
        from app import create_app
        from models import db

        app = create_app(app_config(url, tmp))
    except Exception:
        results.put(("error", traceback.format_exc()))
        barrier.abort()
        return
    with app.app_context():
        session = db.session
        try:
            action = globals()[job](session, *args)
        except Exception:
            session.rollback()
            barrier.abort()
            results.put(("error", traceback.format_exc()))
            return
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            session.rollback()
            results.put(("error", "barrier broken"))
            return
        from workflows import WorkflowError

        try:
            action()
            session.commit()
            results.put(("ok", ""))
        except WorkflowError as exc:
            session.rollback()
            results.put(("refused", exc.message))
        except Exception as exc:
            session.rollback()
            results.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        finally:
            db.session.remove()
            db.engine.dispose()


def run(app, tmp_path, jobs: list[tuple[str, tuple]]) -> list[tuple[str, str]]:
    """Run the jobs in as many processes, released together; [(outcome, message)] — no errors."""
    from models import db

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    processes = [ctx.Process(target=race_worker, args=(url, str(tmp_path), job, args, barrier, results), daemon=True)
                 for job, args in jobs]
    for p in processes:
        p.start()
    outcomes = collect(results, processes, len(jobs))
    errors = [o for o in outcomes if o[0] == "error"]
    assert not errors, "\n\n".join(o[1] for o in errors)
    db.session.expire_all()
    return outcomes


def declare_job(session, username: str, specialty: str, enterprise_name: str):
    from workflows.registration import declare

    actor = user(session, username)
    _ = actor.person_id
    return lambda: declare(session, actor, {"kind": "initial", "specialty": specialty,
                                            "enterprise": enterprise_name})


def enterprise_registration_job(session, values: dict, licence: bytes):
    from models.base import utcnow
    from workflows.accounts import register_enterprise

    return lambda: register_enterprise(session, values, [("营业执照.png", licence)], [], now=utcnow())


def phone_update_job(session, manager: str, target: str, phone: str):
    """修改 of ``target`` by ``manager`` binding ``phone`` (issue 17: one phone, one active account)."""
    from workflows.users import update_user

    actor, edited = user(session, manager), user(session, target)
    values = {"name": edited.name, "phone": phone, "role": edited.role.value}
    return lambda: update_user(session, actor, edited, values)


def change_job(session, username: str, values: dict):
    from workflows.enterprise import start_change

    actor = user(session, username)
    org = actor.organization
    _ = org.parent, org.name
    return lambda: start_change(session, actor, org, values)


def create_org_job(session, username: str, kind: str, values: dict):
    from models.org import OrgKind
    from workflows.organizations import create_organization

    actor = user(session, username)
    _ = actor.organization.path
    return lambda: create_organization(session, actor, OrgKind(kind), values)


def set_scope_job(session, username: str, org_code: str, pairs: list):
    from models import Organization
    from workflows.scope import set_scope

    actor = user(session, username)
    org = session.scalars(select(Organization).where(Organization.code == org_code)).one()
    _ = actor.organization.path, org.path, org.parent
    return lambda: set_scope(session, actor, org, {tuple(p) for p in pairs})


# -- the job queue (issue 16): several workers claiming at once ------------------------------------
def job_worker(url: str, tmp: str, name: str, barrier, results) -> None:
    """Run queued jobs until none is left, with a handler that writes a small file; puts
    (worker name, job id) for every job this process ran, then ("done", name)."""
    try:
        from sqlalchemy.orm import Session

        from app import create_app
        from models import JobKind, db
        from workflows.jobs import Worker, WorkerSettings

        app = create_app(app_config(url, tmp))
        with app.app_context():
            engine = db.engine

        def handler(claim, progress):
            progress(1, 2)
            path = os.path.join(tmp, f"{name}-{claim.job_id}.xlsx")
            with open(path, "wb") as fh:
                fh.write(f"job {claim.job_id} by {name}".encode())
            results.put((name, claim.job_id))
            return f"{claim.job_id}.xlsx", path, 2

        worker = Worker(name, lambda: Session(engine), {JobKind.export: handler}, WorkerSettings(beat_seconds=0))
        barrier.wait(timeout=60)
        worker.run(once=True)
        engine.dispose()
    except Exception:
        results.put(("error", traceback.format_exc()))
    results.put(("done", name))


def first_ecert_job(session, certificate_id: int):
    """The first download of a certificate that has no electronic certificate yet (issue 19)."""
    from models import Certificate
    from workflows import ecert

    certificate = session.get(Certificate, certificate_id)
    return lambda: ecert.current(session, certificate)
