"""PostgreSQL: person name prefix index; the candidate → certificate foreign key

LIKE 'name%' uses a b-tree on PostgreSQL only with text_pattern_ops (whatever the database's
collation); SQLite's prefix search (GLOB) uses the existing ix_person_name. Issue 7.

candidate.certificate_id was declared use_alter (candidate and certificate point at each other),
and the initial migration's create_table left such a constraint to an ALTER it never ran: on
PostgreSQL the column had no foreign key (SQLite creates it inline). Added here.

Revision ID: c8dd4e987ea3
Revises: 7941c22fd1f0
Create Date: 2026-11-23 18:19:54.520525

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c8dd4e987ea3'
down_revision = '7941c22fd1f0'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.create_index('ix_person_name_pattern', 'person', ['name'], unique=False,
                        postgresql_ops={'name': 'text_pattern_ops'})
        op.create_foreign_key(op.f('fk_candidate_certificate_id_certificate'), 'candidate', 'certificate',
                              ['certificate_id'], ['id'])


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f('fk_candidate_certificate_id_certificate'), 'candidate', type_='foreignkey')
        op.drop_index('ix_person_name_pattern', table_name='person')
