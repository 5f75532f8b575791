"""操作日志 rows of one object: the index behind 数据维护's history on a record's page

A certificate's, a person's or an organization's details page lists the corrections made to it
(issue 17 item 11): audit_log rows by (object_type, object_id), answered from this index however
large the log grows. And application_item(new_certificate_id): a certificate's 业务日志 finds the
补办 that issued it.

Revision ID: a17c0ffee011
Revises: b7e3f1a2c9d4
Create Date: 2026-12-07 15:10:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a17c0ffee011'
down_revision = 'b7e3f1a2c9d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_audit_log_object', 'audit_log', ['object_type', 'object_id'], unique=False)
    # a certificate's 业务日志 finds the 补办 that issued it (workflows.business.held_applications)
    op.create_index('ix_application_item_new_certificate_id', 'application_item', ['new_certificate_id'],
                    unique=False)


def downgrade():
    op.drop_index('ix_application_item_new_certificate_id', table_name='application_item')
    op.drop_index('ix_audit_log_object', table_name='audit_log')
