"""Who manages whom (SPEC §1, §7) is one table, ``workflows.organizations.MANAGES`` (extended for
users by ``workflows.users.USER_REACH``); its Python predicates and its SQL clauses must answer the
same for every manager kind × organization kind × relation (placed under the manager, or not)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Organization
from models.org import OrgKind
from models.user import Permission, Role
from tests.factories import make_org, make_user, user
from workflows.organizations import MANAGES, Relation, managed_clause, manages
from workflows.users import USER_REACH, manages_users_of, reach_clause
from workflows.visibility import clause

P = Permission
# with neither, one or both of the two permissions the rule reads; and a disabled manager
GRANTS = [(), (P.org_manage,), (P.user_manage,), (P.org_manage, P.user_manage)]


@pytest.fixture
def world(rolled_session):
    """For every kind: a manager organization and a rival of the same kind, each with one
    organization of every kind placed under it; and managers of every permission set."""
    orgs, managers = [], []
    for manager_kind in OrgKind:
        own, rival = make_org(rolled_session, manager_kind), make_org(rolled_session, manager_kind)
        orgs += [own, rival]
        for kind in OrgKind:
            orgs += [make_org(rolled_session, kind, own), make_org(rolled_session, kind, rival)]
        for grants in GRANTS:
            manager = make_user(rolled_session, own, role=Role.admin)
            manager.set_permissions(grants)
            managers.append(manager)
        disabled = make_user(rolled_session, own, role=Role.admin, enabled=False)
        disabled.set_permissions((P.org_manage, P.user_manage))
        managers.append(disabled)
    rolled_session.flush()
    return rolled_session, orgs, managers


def selected(session, predicate, orgs) -> set[int]:
    ids = [o.id for o in orgs]
    return set(session.scalars(select(Organization.id).where(Organization.id.in_(ids), predicate)))


def test_the_tables_use_both_relations():
    """So the world below, which places an organization of every kind under every manager and
    under a rival, exercises both."""
    relations = {relation for table in (MANAGES.table, USER_REACH.table)
                 for reached in table.values() for relation in reached.values()}
    assert relations == set(Relation)


def test_managed_clause_agrees_with_manages(world):
    session, orgs, managers = world
    for manager in managers:
        for kind in OrgKind:
            of_kind = [o for o in orgs if o.kind == kind]
            expected = {o.id for o in of_kind if manages(manager, o)}
            assert selected(session, managed_clause(manager, kind), of_kind) == expected, (
                manager.organization.kind, sorted(manager.permissions), manager.is_enabled, kind)


def test_reach_clause_agrees_with_manages_users_of(world):
    session, orgs, managers = world
    for manager in managers:
        expected = {o.id for o in orgs if manages_users_of(manager, o)}
        assert selected(session, reach_clause(manager), orgs) == expected, (
            manager.organization.kind, sorted(manager.permissions), manager.is_enabled)


def test_the_rule_reads_the_table(world):
    """What the predicates answer is what the tables say: kind and relation, nothing else."""
    _session, orgs, managers = world
    for manager in managers:
        own = manager.organization
        full = manager.is_enabled and manager.has(P.org_manage)
        for o in orgs:
            relation = MANAGES.table.get(own.kind, {}).get(o.kind)
            placed = o.parent_id == own.id
            assert manages(manager, o) is (full and (relation == Relation.ANY or (relation == Relation.CHILD and placed)))


def test_whatever_a_manager_reaches_it_sees(world):
    """Managing is narrower than seeing (SPEC §1): every organization reached is visible."""
    session, orgs, managers = world
    for manager in managers:
        reached = selected(session, reach_clause(manager), orgs)
        for kind in OrgKind:
            reached |= selected(session, managed_clause(manager, kind), orgs)
        assert reached <= selected(session, clause(manager, Organization), orgs)


@pytest.mark.parametrize("username", ["province", "jinan", "qingdao", "inst_jinan", "direct_inst", "enterprise",
                                      "school", "ministry", "province_reviewer"])
def test_the_demo_agrees_too(rolled_session, username):
    manager = user(rolled_session, username)
    orgs = list(rolled_session.scalars(select(Organization)))
    assert selected(rolled_session, reach_clause(manager), orgs) == {o.id for o in orgs if manages_users_of(manager, o)}
    for kind in OrgKind:
        assert (selected(rolled_session, managed_clause(manager, kind), orgs)
                == {o.id for o in orgs if o.kind == kind and manages(manager, o)})
