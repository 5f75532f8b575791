"""Covering indexes for a search by person: person (name text_pattern_ops, id) on PostgreSQL in place
of (name text_pattern_ops); certificate (person_id, authority_id, issuer_id, id) in place of
(person_id).

A name search finds the matching persons, then their certificates the city or institution may see,
and counts them / orders them by id. A surname alone matches ~8,000 persons at a million
certificates: with both indexes covering, neither persons nor certificates are read from the table
(issue 7: 济南's surname search counted in ~28 ms, reading ~10,000 certificate rows to keep ~1,000).

Revision ID: 8fcb37e854fa
Revises: 73a890e88329
Create Date: 2026-12-03 13:20:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8fcb37e854fa'
down_revision = '73a890e88329'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.create_index('ix_certificate_person_visibility', ['person_id', 'authority_id', 'issuer_id', 'id'],
                              unique=False)
        batch_op.drop_index('ix_certificate_person_id')
    if op.get_bind().dialect.name == "postgresql":
        op.create_index('ix_person_name_prefix', 'person', ['name', 'id'], unique=False,
                        postgresql_ops={'name': 'text_pattern_ops'})
        op.drop_index('ix_person_name_pattern', table_name='person')


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.create_index('ix_person_name_pattern', 'person', ['name'], unique=False,
                        postgresql_ops={'name': 'text_pattern_ops'})
        op.drop_index('ix_person_name_prefix', table_name='person')
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.create_index('ix_certificate_person_id', ['person_id'], unique=False)
        batch_op.drop_index('ix_certificate_person_visibility')
