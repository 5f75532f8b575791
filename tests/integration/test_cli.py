"""The CLI a deployment runs: migrations, `seed demo`, `segments rollover` (SPEC §4, §12)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from app import create_app
from models import Base, Batch, Certificate, NumberSegment, Organization, User, db
from models.base import include_for, local_today


def counts(session) -> dict:
    return {m.__name__: session.scalar(select(func.count()).select_from(m))
            for m in (Organization, User, Batch, Certificate, NumberSegment)}


def test_seed_demo_rebuilds_cleanly(app, session):
    before = counts(session)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    assert "演示数据已生成" in result.output
    session.expire_all()
    assert counts(session) == before
    result = runner.invoke(args=["seed", "demo"])
    assert result.exit_code == 0
    assert counts(session) == before
    usernames = set(session.scalars(select(User.username)))
    assert {"province", "province_reviewer", "jinan", "qingdao", "inst_jinan", "inst_qingdao", "direct_inst",
            "enterprise", "enterprise2", "school", "person", "ministry"} <= usernames


def test_segments_rollover_creates_next_year_once(app, session):
    year = local_today().year
    runner = app.test_cli_runner()
    result = runner.invoke(args=["segments", "rollover", "--year", str(year + 1)])
    assert result.exit_code == 0, result.output
    used = session.scalar(select(func.count()).select_from(NumberSegment).where(
        NumberSegment.year == year, NumberSegment.position > 0))
    created = session.scalar(select(func.count()).select_from(NumberSegment).where(NumberSegment.year == year + 1))
    assert used > 0 and created > 0
    assert f"新建号段 {created} 个" in result.output
    again = runner.invoke(args=["segments", "rollover", "--year", str(year + 1)])
    assert "新建号段 0 个" in again.output
    fresh = session.scalars(select(NumberSegment).where(NumberSegment.year == year + 1)).all()
    assert all(s.position == 0 and s.seg_index == 1 for s in fresh)


def test_migrations_build_exactly_the_models(tmp_path):
    """The schema in production comes from Alembic; it must match the models, with nothing missing."""
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/m.db"})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": include_for(conn.dialect.name)})
            diff = compare_metadata(context, Base.metadata)
        db.engine.dispose()
    assert diff == []


def business_print_marks() -> dict[int, int]:
    return dict(db.session.execute(select(Certificate.id, Certificate.business_print_application_id)
                                   .where(Certificate.business_print_application_id.is_not(None))).all())


def check_business_print_backfill() -> None:
    """Migration 73a890e88329 fills Certificate.business_print_application from the approved
    applications: on the demo it marks exactly what the approvals themselves marked — the
    approved name change's certificate and the approved reissue's new one, not the employer change's."""
    from models import ApplicationKind, ApplicationStatus, CertificateApplication
    from tests.factories import business_print_marks_from_applications

    marked = business_print_marks()
    assert marked == business_print_marks_from_applications(db.session) and len(marked) == 2
    employer_changed = {c.id for a in db.session.scalars(select(CertificateApplication).where(
        CertificateApplication.status == ApplicationStatus.approved, CertificateApplication.kind == ApplicationKind.change,
        CertificateApplication.change_fields == "employer")) for c in a.certificates}
    assert employer_changed and not employer_changed & set(marked)
    db.session.remove()
    downgrade(revision="5d1f0a2b7c41")
    upgrade()
    assert business_print_marks() == marked


def test_the_business_print_migration_marks_what_the_approvals_marked(tmp_path):
    from seed.demo import build_demo

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/b.db"})
    with app.app_context():
        upgrade()
        build_demo(db.session)
        db.session.commit()
        check_business_print_backfill()
        # the migrations ran with SQLite's foreign keys off (migrations/env.py): back on after
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.session.remove()
        db.engine.dispose()


def test_the_phone_migration_unbinds_duplicates_keeping_the_latest_sign_in_and_logs_it(tmp_path):
    """Migration b7e3f1a2c9d4 (issue 17): before the partial unique index, accounts sharing a phone keep
    it only on the one signed in most recently; each other loses it, with a row in the 操作日志. A
    rejected enterprise's administrator is marked rejected and keeps its number out of the rule."""
    from models import AuditLog, OrgStatus, User
    from seed.demo import build_demo

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    with app.app_context():
        upgrade()
        build_demo(db.session)
        db.session.commit()
        db.session.remove()
        downgrade(revision="c27fa9182f60")
        db.session.execute(text("UPDATE user_account SET phone = '13912300009' "
                                "WHERE username IN ('jinan', 'qingdao', 'dingsheng')"))
        db.session.execute(text("UPDATE user_account SET account_status = 'active' WHERE username = 'dingsheng'"))
        db.session.execute(text("UPDATE user_account SET last_login_at = '2026-01-02 00:00:00' WHERE username = 'qingdao'"))
        db.session.commit()
        upgrade()
        phones = dict(db.session.execute(select(User.username, User.phone).where(
            User.username.in_(("jinan", "qingdao", "dingsheng")))).all())
        assert phones == {"qingdao": "13912300009", "jinan": None, "dingsheng": "13912300009"}
        dingsheng = db.session.scalar(select(User).where(User.username == "dingsheng"))
        assert dingsheng.organization.status == OrgStatus.rejected and dingsheng.account_status.value == "rejected"
        logged = db.session.scalars(select(AuditLog.summary).where(AuditLog.summary.startswith("系统升级"))).all()
        assert logged == ["系统升级：手机号 139****0009 同时绑定多个账号，保留在 qingdao，取消绑定用户 jinan 的手机号"
                          "（一个手机号只能绑定一个账号）"]
        db.session.remove()
        db.engine.dispose()
