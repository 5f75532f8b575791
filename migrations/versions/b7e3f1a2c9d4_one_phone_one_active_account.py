"""One phone number, one active account (issue 17): a partial unique index on the phones of enabled
accounts that are not rejected registrations; an enterprise administrator's account follows its
registration's status as an individual's does

Revision ID: b7e3f1a2c9d4
Revises: c27fa9182f60
Create Date: 2026-12-07 15:00:00

Before the index, the data must obey it. A rejected enterprise's administrator is marked rejected (it
releases its phone, as the application now does). Where several active accounts share a phone, the one
signed in most recently keeps it; the others lose it — they cannot sign in until a manager binds a new
number (修改), as after 取消绑定手机号 — and each loss is a row of the 操作日志.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e3f1a2c9d4'
down_revision = 'c27fa9182f60'
branch_labels = None
depends_on = None

INDEX = "uq_user_account_active_phone"
WHERE = "is_enabled AND account_status <> 'rejected'"


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "*" * len(phone)


def upgrade():
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE user_account SET account_status = 'rejected' WHERE organization_id IN "
        "(SELECT id FROM organization WHERE status = 'rejected') AND account_status <> 'rejected'"))
    rows = bind.execute(sa.text(
        f"SELECT id, username, phone, organization_id FROM user_account WHERE phone IS NOT NULL AND {WHERE} "
        "AND phone IN (SELECT phone FROM user_account WHERE phone IS NOT NULL AND " + WHERE +
        " GROUP BY phone HAVING COUNT(*) > 1) "
        "ORDER BY phone, CASE WHEN last_login_at IS NULL THEN 1 ELSE 0 END, last_login_at DESC, id")).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    kept = {}
    for user_id, username, phone, org_id in rows:
        if phone not in kept:
            kept[phone] = username
            continue
        bind.execute(sa.text("UPDATE user_account SET phone = NULL WHERE id = :id"), {"id": user_id})
        bind.execute(sa.text(
            "INSERT INTO audit_log (kind, user_id, username, organization_id, summary, object_type, object_id, "
            "created_at) VALUES ('data_fix', NULL, :who, :org, :summary, 'user_account', :id, :now)"),
            {"who": "系统升级", "org": org_id, "id": user_id, "now": now,
             "summary": f"系统升级：手机号 {_masked(phone)} 同时绑定多个账号，保留在 {kept[phone]}，"
                        f"取消绑定用户 {username} 的手机号（一个手机号只能绑定一个账号）"})
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(INDEX, ['phone'], unique=True, sqlite_where=sa.text(WHERE),
                              postgresql_where=sa.text(WHERE))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(INDEX, sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))
