"""操作日志 helpers (SPEC §8): one way to write an AuditLog row, and the Chinese words 操作日志
shows for what a row's detail and object hold."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from sqlalchemy.orm import Session

from models import AuditLog
from models.base import utcnow


class Kind(StrEnum):
    """Every kind of operation-log row (stored as its value); ``label`` is what 操作日志 shows."""

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
    BATCH_CREATE = "batch_create"
    CANDIDATE_MARK = "candidate_mark"
    API = "api"  # a call with an API key (issue 20)

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]


_KIND_LABELS = {
    Kind.LOGIN_OK: "登录成功", Kind.LOGIN_FAIL: "登录失败", Kind.LOGOUT: "退出", Kind.PASSWORD: "密码",
    Kind.TRANSITION: "审核流转", Kind.EDIT: "编辑", Kind.DATA_FIX: "数据维护", Kind.EXPORT: "导出",
    Kind.DOWNLOAD: "下载", Kind.UPLOAD: "上传", Kind.BATCH_CREATE: "创建批次", Kind.CANDIDATE_MARK: "标记考生",
    Kind.API: "接口调用",
}


# Where a row's client IP comes from when the caller names none: admin_views installs the request's
# address (set_ip_source); outside a request — the job worker, the CLI — there is none, and 操作日志
# shows 「—（系统）」. workflows never read the request themselves (ARCHITECTURE).
def _no_ip() -> str | None:
    return None


_ip_source: Callable[[], str | None] = _no_ip


def set_ip_source(source: Callable[[], str | None]) -> None:
    global _ip_source
    _ip_source = source


def log(session: Session, user, kind: Kind, summary: str, *, obj=None, object_type: str | None = None,
        detail: dict | None = None, ip: str | None = None, username: str | None = None) -> AuditLog:
    """Add an operation-log row to the current transaction (committed with the change it records).
    A row written while serving a request carries that request's client IP, whether or not the
    caller passed it."""
    if not isinstance(kind, Kind):
        raise TypeError(f"an operation-log kind is a workflows.audit.Kind, not {kind!r}")
    if ip is None:
        ip = _ip_source()
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


# -- what 操作日志 shows for a row's detail and object (never English keys or raw JSON) ----------
# The keys the workflows write into ``detail`` (field names of the rows they change, and the
# bookkeeping of jobs and scopes), in the manuals' words. A key already in Chinese is shown as is.
FIELD_LABELS = {
    "name": "名称", "id_number": "身份证号", "phone": "手机号", "employer_name": "工作单位",
    "issue_date": "发证日期", "valid_until": "有效期至", "endorsement_count": "签注次数",
    "contact": "联系人", "address": "通讯地址", "postcode": "邮政编码", "qualification_no": "资质证书编号",
    "code": "机构代码", "credit_code": "统一社会信用代码", "region_code": "所属地市", "role": "角色",
    "permissions": "权限", "reason": "原因", "added": "新增", "removed": "删除", "descendants": "下级机构同时删除",
    "worker": "处理进程", "attempt": "第几次执行", "bytes": "文件大小(字节)", "heartbeat_at": "最后心跳时间",
    "rejected_request": "未通过的注册申请(记录号)", "paper": "纸张尺寸(毫米)", "font": "字号(磅)",
    "qr": "二维码尺寸(毫米)", "fields": "打印位置(毫米)", "count": "数量", "ids": "记录号",
    "status": "状态", "number": "编号", "title": "标题", "filename": "文件名", "occupation": "职业(工种)",
    "level": "等级", "username": "用户名", "gender": "性别", "birth_date": "出生日期",
    "person_name": "姓名", "holder": "持证人", "certificate": "证书", "certificates": "证书",
    "registration_number": "注册编号", "specialty": "注册专业", "enterprise": "聘用企业",
    "employer": "工作单位", "issuer": "发证机构", "qr_code": "二维码(证书查询)",
    "date_from": "开始日期", "date_to": "结束日期", "city": "城市(记录号)",
    "key": "密钥编号", "endpoint": "接口", "method": "请求方法", "rows": "返回条数", "scopes": "数据范围",
    "expires_on": "有效期至", "rate_limit": "每分钟调用上限", "organization": "所属机构",
}
# where a key means something else on a kind of row (a person's 「name」 is 姓名, an organization's 名称)
FIELD_LABELS_BY_OBJECT = {
    "person": {"name": "姓名", "employer_name": "工作单位(未注册企业)"},
    "candidate": {"name": "姓名"},
    "user_account": {"name": "姓名"},
    "organization": {"name": "名称", "phone": "联系电话"},
    "batch": {"name": "姓名"},  # a batch's log rows are about its candidates (新增/修改考生)
    "print_format": {"name": "姓名", "number": "证书编号"},  # the printed fields' positions
    "api_key": {"name": "密钥名称", "status": "响应状态码"},  # 接口调用: the HTTP status of the answer
}
# the kinds of row a log row is about, as 操作日志 names them (object_type is the table's name)
OBJECT_LABELS = {
    "person": "人员", "certificate": "证书", "organization": "机构", "candidate": "考生", "batch": "批次",
    "user_account": "用户", "job": "导出任务", "attachment": "附件", "registration": "注册申报",
    "certificate_application": "证书业务", "account_request": "注册申请", "enterprise_change": "企业信息变更",
    "anomaly": "申辩", "print_format": "证书格式", "number_segment": "证书号段", "message": "消息",
    "api_key": "接口密钥",
}


def field_label(key, object_type: str | None = None) -> str:
    """A detail key in Chinese: the object's own word first, then the common one; a key that is
    neither (written by code not listed here) reads 「其他」, never as an English name."""
    key = str(key)
    label = FIELD_LABELS_BY_OBJECT.get(object_type or "", {}).get(key) or FIELD_LABELS.get(key)
    if label:
        return label
    return key if not key.isascii() else "其他"
