"""The PostgreSQL schema comes from the migrations and matches the models, PostgreSQL-only indexes
included; a name prefix search is answered from an index (issue 7: never a sequential scan)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from models import Base, Certificate, Organization, Person, User, db
from models.base import include_for
from tests.integration.test_cli import check_business_print_backfill
from tests.postgres.pg_helpers import preserved_logging
from workflows.search import starts_with


def test_migrations_build_exactly_the_models_on_postgresql(pg_app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_for(conn.dialect.name)})
        assert compare_metadata(context, Base.metadata) == []
        names = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'person'")))
    assert "ix_person_name_prefix" in names


def test_a_name_prefix_search_uses_an_index(pg_app):
    stmt = select(Person.id).where(starts_with(Person.name, "张"))
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # the demo is small: ask what it would do at scale
        plan = "\n".join(conn.scalars(text(f"EXPLAIN {sql}")))
    assert "Seq Scan" not in plan and "ix_person_name" in plan, plan
    assert db.session.scalars(stmt).all()  # and it finds the demo's 张…


def test_an_institutions_newest_certificates_come_from_one_index_in_order(pg_app):
    """WHERE issuer_id = … [AND status = …] ORDER BY id DESC LIMIT 20 reads (issuer_id[, status], id)
    in order: no sort, and no walk of the primary key filtering on the issuer (issue 7: an institution
    with 25 certificates among a million read the whole table for its first page)."""
    with db.engine.connect() as conn:
        issuer = conn.scalar(select(Organization.id).where(Organization.code == "JG370101"))
        conn.execute(text("SET enable_seqscan = off"))
        for extra, index in (("", "ix_certificate_issuer_recent"),
                             (" AND status = 'valid'", "ix_certificate_issuer_status")):
            plan = "\n".join(conn.scalars(text(
                f"EXPLAIN SELECT id FROM certificate WHERE issuer_id = {issuer}{extra} ORDER BY id DESC LIMIT 20")))
            assert index in plan and "Sort" not in plan and "pk_certificate" not in plan, plan
    assert db.session.scalar(select(Certificate.id).where(Certificate.issuer_id == issuer).limit(1))


def test_the_planner_keeps_a_fine_histogram_of_issuers_and_employers(pg_app):
    """Set by migration 5d1f0a2b7c41: a small institution or enterprise is estimated from its own
    frequency, not the average, so its list sorts its few rows instead of walking a whole index."""
    with db.engine.connect() as conn:
        targets = dict(conn.execute(text(
            "SELECT attrelid::regclass::text || '.' || attname, attstattarget FROM pg_attribute "
            "WHERE (attrelid = 'certificate'::regclass AND attname = 'issuer_id') "
            "OR (attrelid = 'person'::regclass AND attname = 'employer_id')")).all())
    assert targets == {"certificate.issuer_id": 1000, "person.employer_id": 1000}


def test_the_business_print_migration_marks_what_the_approvals_marked_on_postgresql(pg_app):
    with preserved_logging():
        check_business_print_backfill()


def test_business_print_reads_an_institutions_marked_certificates_from_the_partial_index(pg_app):
    with db.engine.connect() as conn:
        issuer = conn.scalar(select(Organization.id).where(Organization.code == "JG370101"))
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(conn.scalars(text(
            f"EXPLAIN SELECT id FROM certificate WHERE issuer_id = {issuer} AND status = 'valid' "
            "AND business_print_application_id IS NOT NULL ORDER BY id DESC LIMIT 20")))
    assert "ix_certificate_business_print" in plan and "Sort" not in plan, plan


def test_a_citys_name_search_reads_only_indexes(pg_app):
    """A surname search of a city: the persons' ids from (name text_pattern_ops, id), their certificates
    the city may see from (person_id, authority_id, issuer_id, id) — no table row read to count them
    (issue 7: ~8,000 persons share a surname at a million certificates)."""
    from workflows.visibility import visible

    jinan = db.session.scalars(select(Organization).where(Organization.code == "SD370100")).one()
    city = db.session.scalars(select(User).where(User.organization_id == jinan.id)).first()
    stmt = visible(city, select(Certificate.id).where(
        Certificate.person_id.in_(select(Person.id).where(starts_with(Person.name, "张")))), Certificate)
    stmt = stmt.order_by(Certificate.id.desc()).limit(20)
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) person"))
        conn.execute(text("VACUUM (ANALYZE) certificate"))
        for off in ("seqscan", "bitmapscan", "hashjoin", "mergejoin"):  # the demo is small: the plan at scale
            conn.execute(text(f"SET enable_{off} = off"))
        plan = "\n".join(conn.scalars(text(f"EXPLAIN {sql}")))
    assert "Index Only Scan using ix_person_name_prefix" in plan, plan
    assert "Index Only Scan using ix_certificate_person_visibility" in plan, plan
    assert db.session.scalars(stmt).all()  # 济南's 张…
