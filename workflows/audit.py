"""操作日志 helpers (SPEC §8): one way to write an AuditLog row."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import AuditLog
from models.base import utcnow


class Kind:
    """Kinds of operation-log rows; the Chinese labels are what 操作日志 shows."""

    LOGIN_OK = "login_ok"
    LOGIN_FAIL = "login_fail"
    LOGOUT = "logout"
    PASSWORD = "password"
    TRANSITION = "transition"
    EDIT = "edit"
    DATA_FIX = "data_fix"
    EXPORT = "export"
    DOWNLOAD = "download"
    UPLOAD = "upload"

    LABELS = {
        "login_ok": "登录成功", "login_fail": "登录失败", "logout": "退出", "password": "密码",
        "transition": "审核流转", "edit": "编辑", "data_fix": "数据维护", "export": "导出",
        "download": "下载", "upload": "上传", "batch_create": "创建批次", "candidate_mark": "标记考生",
    }


def log(session: Session, user, kind: str, summary: str, *, obj=None, object_type: str | None = None,
        detail: dict | None = None, ip: str | None = None, username: str | None = None) -> AuditLog:
    """Add an operation-log row to the current transaction (committed with the change it records)."""
    row = AuditLog(
        kind=kind,
        user_id=getattr(user, "id", None),
        username=username or getattr(user, "username", None),
        organization_id=getattr(user, "organization_id", None),
        summary=summary[:500],
        object_type=object_type or (getattr(obj, "__tablename__", None) if obj is not None else None),
        object_id=getattr(obj, "id", None),
        ip=ip,
        detail=detail,
        created_at=utcnow(),
    )
    session.add(row)
    return row
