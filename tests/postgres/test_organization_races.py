"""Issue 5's organization rules under concurrency on PostgreSQL (SPEC §2, §7).

One authority per city and unique organization codes are read first and then decided by the
unique constraint; a child's scope stays inside its parent's even when the parent is narrowed
at the very moment the child is given one of the pairs being removed (set_scope locks the
organization and its ancestors, top down).
"""

from __future__ import annotations

from pg_helpers import run, user
from sqlalchemy import func, select

from models import Organization, db
from models.org import OrgKind
from workflows.scope import scope_pairs


def test_two_simultaneous_authorities_for_one_city_leave_one(pg_app, tmp_path):
    values = {"region_code": "371700", "name": "菏泽市住房和城乡建设局", "contact": "王", "phone": "0530-1"}
    outcomes = run(pg_app, tmp_path, [("create_org_job", ("province", "authority", values)),
                                      ("create_org_job", ("province", "authority", {**values, "name": "菏泽市住建局"}))])
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "菏泽市已有主管部门" in next(o[1] for o in outcomes if o[0] == "refused")
    assert db.session.scalar(select(func.count()).select_from(Organization).where(
        Organization.kind == OrgKind.authority, Organization.region_code == "371700")) == 1


def test_two_simultaneous_institutions_get_two_codes(pg_app, tmp_path):
    jobs = [("create_org_job", ("jinan", "institution", {"name": f"并发培训机构{n}", "contact": "李", "phone": "0531-2"}))
            for n in range(3)]
    outcomes = run(pg_app, tmp_path, jobs)
    assert [o[0] for o in outcomes] == ["ok"] * 3
    codes = db.session.scalars(select(Organization.code).where(Organization.name.like("并发培训机构%"))).all()
    assert len(codes) == len(set(codes)) == 3 and all(c.startswith("JG3701") for c in codes)


def test_a_child_never_keeps_a_pair_its_parent_loses_at_the_same_moment(pg_app, tmp_path):
    jinan = user(db.session, "jinan").organization
    institution = db.session.scalars(select(Organization).where(Organization.code == "JG370102")).one()
    parent_pairs, child_pairs = scope_pairs(db.session, jinan), scope_pairs(db.session, institution)
    contested = sorted(parent_pairs - child_pairs, key=lambda p: (p[0], p[1] or 0))[:5]
    assert contested
    for _round in range(3):
        outcomes = run(pg_app, tmp_path, [
            ("set_scope_job", ("province", "SD370100", [list(p) for p in parent_pairs - set(contested)])),
            ("set_scope_job", ("jinan", "JG370102", [list(p) for p in child_pairs | set(contested)])),
        ])
        assert {o[0] for o in outcomes} <= {"ok", "refused"}
        refused = [o[1] for o in outcomes if o[0] == "refused"]
        assert all("不在" in message for message in refused), refused
        child_now, parent_now = scope_pairs(db.session, institution), scope_pairs(db.session, jinan)
        assert child_now <= parent_now, child_now - parent_now
        assert not set(contested) & child_now
        # give the pairs back for the next round
        run(pg_app, tmp_path, [("set_scope_job", ("province", "SD370100", [list(p) for p in parent_pairs]))])
