"""API keys and updated_at for the API's incremental sync

Revision ID: f7ddf1861b19
Revises: 154c6b59dea9
Create Date: 2026-12-07 22:46:35.321251

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f7ddf1861b19'
down_revision = '154c6b59dea9'
branch_labels = None
depends_on = None


def upgrade():
    # issue 20: 接口密钥
    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.String(length=100), nullable=False),
    sa.Column('rate_limit', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_api_key_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_api_key_organization_id_organization')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['user_account.id'], name=op.f('fk_api_key_revoked_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('key_id', name=op.f('uq_api_key_key_id'))
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_organization_id'), ['organization_id'], unique=False)
    # a key's calls newest first (接口密钥's 最近调用): the record-history index gains the row id
    op.drop_index('ix_audit_log_object', table_name='audit_log')
    op.create_index('ix_audit_log_object', 'audit_log', ['object_type', 'object_id', 'id'], unique=False)

    # issue 20: updated_at of what the API syncs — added empty, filled from what each row knows, then required
    op.add_column('certificate', sa.Column('updated_at', sa.DateTime(), nullable=True))
    op.add_column('registration', sa.Column('updated_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE certificate SET updated_at = COALESCE(printed_at, created_at)")
    op.execute("UPDATE registration SET updated_at = COALESCE(decided_at, reported_at, created_at)")
    op.execute("UPDATE batch SET updated_at = COALESCE(updated_at, reviewed_at, submitted_at, created_at)")

    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index('ix_batch_changed', ['updated_at', 'id'], unique=False)

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index('ix_certificate_changed', ['updated_at', 'id'], unique=False)
        batch_op.create_index('ix_certificate_issuer_changed', ['issuer_id', 'updated_at', 'id'], unique=False)

    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index('ix_registration_changed', ['updated_at', 'id'], unique=False)



def downgrade():
    op.drop_index('ix_audit_log_object', table_name='audit_log')
    op.create_index('ix_audit_log_object', 'audit_log', ['object_type', 'object_id'], unique=False)
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index('ix_registration_changed')
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_issuer_changed')
        batch_op.drop_index('ix_certificate_changed')
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_index('ix_batch_changed')
        batch_op.alter_column('updated_at',
               existing_type=sa.DateTime(),
               nullable=True)

    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_organization_id'))

    op.drop_table('api_key')
