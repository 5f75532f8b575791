"""Certificate visibility indexes in list order: (issuer_id, id), (issuer_id, status, id) and the
same for authority_id, in place of (issuer_id), (issuer_id, status), (authority_id),
(authority_id, status).

An institution's first page (WHERE issuer_id = … ORDER BY id DESC LIMIT 20) is then read from one
index in order; before, PostgreSQL walked the primary key backwards filtering on issuer_id and,
for a small institution among a million certificates, read the whole table. Issue 7.

On PostgreSQL the planner also gets a finer histogram of certificate.issuer_id (and of
person.employer_id): with the default statistics target every institution outside the 100 most
common is estimated at the average (~1,700 certificates at a million), so a small institution's list
sorted by date walked the date index over the whole table instead of sorting its 25 rows.

Revision ID: 5d1f0a2b7c41
Revises: c8dd4e987ea3
Create Date: 2026-12-03 12:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5d1f0a2b7c41'
down_revision = 'c8dd4e987ea3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_issuer_id')
        batch_op.drop_index('ix_certificate_authority_id')
        batch_op.drop_index('ix_certificate_issuer_status')
        batch_op.drop_index('ix_certificate_authority_status')
        batch_op.create_index('ix_certificate_issuer_recent', ['issuer_id', 'id'], unique=False)
        batch_op.create_index('ix_certificate_issuer_status', ['issuer_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_certificate_authority_recent', ['authority_id', 'id'], unique=False)
        batch_op.create_index('ix_certificate_authority_status', ['authority_id', 'status', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE certificate ALTER COLUMN issuer_id SET STATISTICS 1000")
        op.execute("ALTER TABLE person ALTER COLUMN employer_id SET STATISTICS 1000")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE person ALTER COLUMN employer_id SET STATISTICS -1")
        op.execute("ALTER TABLE certificate ALTER COLUMN issuer_id SET STATISTICS -1")
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_authority_status')
        batch_op.drop_index('ix_certificate_authority_recent')
        batch_op.drop_index('ix_certificate_issuer_status')
        batch_op.drop_index('ix_certificate_issuer_recent')
        batch_op.create_index('ix_certificate_authority_status', ['authority_id', 'status'], unique=False)
        batch_op.create_index('ix_certificate_authority_id', ['authority_id'], unique=False)
        batch_op.create_index('ix_certificate_issuer_status', ['issuer_id', 'status'], unique=False)
        batch_op.create_index('ix_certificate_issuer_id', ['issuer_id'], unique=False)
