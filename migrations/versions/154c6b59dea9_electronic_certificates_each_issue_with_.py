"""electronic certificates: each issue with its identifier

Revision ID: 154c6b59dea9
Revises: a17c0ffee011
Create Date: 2026-12-07 20:02:36.129256

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '154c6b59dea9'
down_revision = 'a17c0ffee011'
branch_labels = None
depends_on = None


def upgrade():
    # issue 19: one row per issue of a certificate's electronic certificate (证照标识, current or ended and why)
    op.create_table('electronic_certificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=100), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.Enum('cancelled', 'voided', 'changed', name='electronicend', native_enum=False, length=32), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], name=op.f('fk_electronic_certificate_certificate_id_certificate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_electronic_certificate')),
    sa.UniqueConstraint('certificate_id', 'sequence', name='uq_electronic_certificate_issue'),
    sa.UniqueConstraint('identifier', name=op.f('uq_electronic_certificate_identifier'))
    )
    with op.batch_alter_table('electronic_certificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_electronic_certificate_certificate_id'), ['certificate_id'], unique=False)



def downgrade():
    # issue 19: one row per issue of a certificate's electronic certificate (证照标识, current or ended and why)
    with op.batch_alter_table('electronic_certificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_electronic_certificate_certificate_id'))

    op.drop_table('electronic_certificate')
