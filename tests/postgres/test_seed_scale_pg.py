"""`flask seed scale` (SPEC §12) on PostgreSQL: loaded through COPY beside the demo, consistent,
idempotent, and the id sequences moved past what it wrote so the app's next insert just works."""

from __future__ import annotations

from datetime import date

import psycopg
from sqlalchemy import func, select, text

from models import Certificate, Organization, Person, db
from models.org import OrgKind
from seed.scale import COLUMNS, SCALE_PREFIX
from workflows.validators import make_id_number

N = 3000


def seed(app, certificates: int) -> str:
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["seed", "scale", "--certificates", str(certificates)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def scalar(sql: str):
    return db.session.execute(text(sql)).scalar()


def test_scale_seed_on_postgres(pg_app, monkeypatch):
    copied = []
    copy = psycopg.Cursor.copy

    def spy(self, statement, *args, **kwargs):
        copied.append(statement.split('"')[1])
        return copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    demo_certificates = scalar("SELECT count(*) FROM certificate")
    seed(pg_app, N)
    assert {"organization", "user_account", "person", "batch", "certificate", "candidate", "transition_log",
            "registration", "certificate_application"} <= set(copied)

    scale = ("SELECT count(*) FROM certificate c JOIN organization o ON o.id = c.issuer_id "
             f"WHERE o.code LIKE '{SCALE_PREFIX}%'")
    assert scalar(scale) == N
    assert scalar("SELECT count(*) FROM certificate") == demo_certificates + N
    holders = scalar("SELECT count(DISTINCT c.person_id) FROM certificate c JOIN organization o ON o.id = c.issuer_id "
                     f"WHERE o.code LIKE '{SCALE_PREFIX}%'")
    assert 0.75 * N <= holders <= 0.85 * N
    assert scalar("SELECT count(*) FROM organization WHERE kind = 'authority'") == 16
    # unique, well-formed numbers; denormalised authority; paths; segments ahead of every serial
    assert scalar("SELECT count(*) - count(DISTINCT number) FROM certificate") == 0
    assert scalar("SELECT count(*) FROM certificate WHERE number !~ '^[0-9]{15}$'") == 0
    assert scalar("""SELECT count(*) FROM certificate c JOIN organization i ON i.id = c.issuer_id
                     WHERE c.authority_id IS DISTINCT FROM
                           CASE WHEN i.kind = 'institution' THEN i.parent_id END""") == 0
    assert scalar("""SELECT count(*) FROM batch b JOIN organization i ON i.id = b.institution_id
                     WHERE b.authority_id IS DISTINCT FROM
                           CASE WHEN i.kind = 'institution' THEN i.parent_id END""") == 0
    assert scalar("""SELECT count(*) FROM organization o LEFT JOIN organization p ON p.id = o.parent_id
                     WHERE o.path <> coalesce(p.path, '/') || o.id || '/'""") == 0
    assert scalar("""SELECT count(*) FROM (
                         SELECT substr(number, 1, 11) AS prefix, max(substr(number, 12)::int) AS serial
                         FROM certificate GROUP BY 1) used
                     LEFT JOIN number_segment s
                       ON lpad((s.year % 100)::text, 2, '0') || s.region_code || s.occupation_code
                          || s.level_code || s.seg_index = used.prefix
                     WHERE s.position IS NULL OR s.position < used.serial""") == 0

    # every id sequence is at its table's maximum, so the ORM's next row takes a fresh id
    for table in COLUMNS:
        assert scalar(f"SELECT last_value FROM {scalar(f'''SELECT pg_get_serial_sequence('{table}', 'id')''')}") \
            >= (scalar(f'SELECT max(id) FROM "{table}"') or 1), table
    jinan = db.session.scalar(select(Organization).where(Organization.code == "SD370100"))
    org = Organization(code="PGSEQ01", name="序列检查培训机构", kind=OrgKind.institution, parent=jinan,
                       region_code="370100")
    person = Person(name="序列检查", id_number=make_id_number("370103", date(1990, 1, 2), 8, "男"))
    db.session.add_all([org, person])
    db.session.flush()
    org.refresh_path()
    db.session.commit()
    assert org.id == scalar("SELECT max(id) FROM organization") and person.id == scalar("SELECT max(id) FROM person")

    # a second run finds the data and leaves it alone
    before = db.session.scalar(select(func.count()).select_from(Certificate))
    assert "未做改动" in seed(pg_app, N)
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == before
