"""Certificate.business_print_application: the approved name change or reissue that put a
certificate on 业务打印, set by the province's approval, with a partial index per institution.

业务打印 used to find its certificates through a UNION over every approved name change and reissue
in the province, once for the count and once for the rows (issue 7: ~25 ms per page at a million
certificates). The upgrade fills the column for existing certificates from the approved
applications: a name change marks its certificates, a reissue its new certificate; the latest
approval wins.

Revision ID: 73a890e88329
Revises: 5d1f0a2b7c41
Create Date: 2026-12-03 12:06:59.848899

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '73a890e88329'
down_revision = '5d1f0a2b7c41'
branch_labels = None
depends_on = None

# The approved application behind each certificate that 业务打印 lists; change_fields is a
# comma-separated list ("name,employer"), and no other field's value contains "name".
MARKS = """
SELECT i.certificate_id AS certificate_id, a.id AS application_id, a.reviewed_at AS reviewed_at
  FROM application_item i JOIN certificate_application a ON a.id = i.application_id
 WHERE a.status = 'approved' AND a.kind = 'change' AND a.change_fields LIKE '%name%'
UNION ALL
SELECT i.new_certificate_id, a.id, a.reviewed_at
  FROM application_item i JOIN certificate_application a ON a.id = i.application_id
 WHERE a.status = 'approved' AND a.kind = 'reissue' AND i.new_certificate_id IS NOT NULL
"""

BACKFILL = f"""
UPDATE certificate SET business_print_application_id = (
    SELECT m.application_id FROM ({MARKS}) m WHERE m.certificate_id = certificate.id
     ORDER BY m.reviewed_at DESC, m.application_id DESC LIMIT 1)
 WHERE id IN (SELECT certificate_id FROM ({MARKS}) marked)
"""

WHERE = sa.text('business_print_application_id IS NOT NULL')


def upgrade():
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_print_application_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_certificate_business_print_application_id_certificate_application'),
            'certificate_application', ['business_print_application_id'], ['id'])
    op.execute(BACKFILL)
    op.create_index('ix_certificate_business_print', 'certificate', ['issuer_id', 'id'], unique=False,
                    postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade():
    op.drop_index('ix_certificate_business_print', table_name='certificate')
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_certificate_business_print_application_id_certificate_application'), type_='foreignkey')
        batch_op.drop_column('business_print_application_id')
