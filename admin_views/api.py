"""The open API (issue 20): ``/api/v1/``, its OpenAPI 3 document generated from the code by
flask-smorest (``/api/v1/openapi.json``), errors as ``application/problem+json`` with a Chinese
``detail``.

Public verification answers exactly what 证书查询 answers (``workflows.verification``: the masked
card, the same rate limit per address, no oracle — a wrong name and an unknown number get the same
404). Why flask-smorest and not APIFlask: APIFlask wants the application to be an ``APIFlask``; this
one is a Flask-Admin back office whose pages keep their own error pages, so the API is an extension
on its own blueprints, and its error handler is installed on them only (flask-smorest's default
takes every HTTP error of the whole app).
"""

from __future__ import annotations

import http

import marshmallow as ma
from flask import Flask, current_app, g, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException

from admin_views.access import client_ip
from admin_views.verify import count_lookup
from models import db
from models.base import utcnow
from workflows import apikeys, exchange
from workflows import verification as rules

PROBLEM = "application/problem+json"
PREFIX = "/api/v1"
SECURITY = "接口密钥"  # the OpenAPI security scheme of keyed endpoints (Authorization: Bearer csk_…)
RATE_WINDOW = 60  # a key's rate limit is per minute

# what each status means to a client, in Chinese (the ``title`` of a problem)
TITLES = {
    400: "请求有误", 401: "未认证", 403: "无权访问", 404: "未找到", 405: "不支持的请求方法",
    413: "请求过大", 422: "参数不正确", 429: "请求过于频繁", 500: "服务器内部错误",
}
NOT_FOUND = "未查询到匹配的证书，请核对证书编号和姓名"
NOT_FOUND_ECERT = "未查询到该电子证书，请核对证照标识"
TOO_MANY = "查询过于频繁，请稍后再试"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details (``application/problem+json``)."""

    type = ma.fields.String(metadata={"description": "问题类型（about:blank）"})
    title = ma.fields.String(metadata={"description": "状态的中文说明"})
    status = ma.fields.Integer(metadata={"description": "HTTP 状态码"})
    detail = ma.fields.String(metadata={"description": "出了什么问题（中文）"})
    errors = ma.fields.Dict(metadata={"description": "逐个参数的错误（中文），参数不正确时"})


class ProblemApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def register_blueprint(self, blp, *, parameters=None, **options):
        """flask-smorest's, with the blueprint's Chinese ``tag`` as the documentation's group name
        (flask-smorest uses the Flask blueprint name, an identifier)."""
        self._app.extensions["flask-smorest"]["blp_name_to_api"][blp.name] = self
        self._app.register_blueprint(blp, **options)
        blp.register_views_in_doc(self, self._app, self.spec, name=blp.name, parameters=parameters)
        for operations in self.spec._paths.values():  # noqa: SLF001 - apispec keeps no public setter
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("tags") == [blp.name]:
                    operation["tags"] = [blp.tag]
        self.spec.tag({"name": blp.tag, "description": blp.description})

    def _register_error_handlers(self):
        """The API's blueprints only (``api_blueprint``): the back office keeps its error pages."""

    def _register_responses(self):
        """flask-smorest's error responses, documented as what they are: problem+json."""
        from flask_smorest.utils import prepare_response

        for status in http.HTTPStatus:
            response = {"description": TITLES.get(status.value, status.phrase)}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "错误（见 detail）", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def handle_http_exception(error: HTTPException):
    """Every HTTP error of the API as a problem (the app's 404/405/413/500 handlers send the API's
    paths here too, for a URL no blueprint matched)."""
    return problem(error.code or 500, _detail(error), errors=_errors(error), headers=_headers(error))


def problem(status: int, detail: str, *, errors: dict | None = None, headers: dict | None = None):
    body = {"type": "about:blank", "title": TITLES.get(status, "错误"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = current_app.response_class(current_app.json.dumps(body), status=status, mimetype=PROBLEM)
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def _data(error) -> dict:
    return getattr(error, "data", None) or {}


def _errors(error) -> dict | None:
    data = _data(error)
    found = data.get("errors") or data.get("messages")
    return _chinese(found) if found else None


def _detail(error) -> str:
    data = _data(error)
    if data.get("message"):
        return str(data["message"])
    if error.code == 422 or _errors(error):
        return "请求参数不正确，请查看 errors 中每个参数的说明"
    return TITLES.get(error.code or 500, "错误")


def _headers(error) -> dict:
    return dict(_data(error).get("headers") or {})


# webargs/marshmallow say it in English; a client of this API reads Chinese
_MESSAGES = {
    "Missing data for required field.": "缺少必填参数",
    "Unknown field.": "不支持的参数",
    "Not a valid string.": "应为字符串",
    "Not a valid integer.": "应为整数",
    "Field may not be null.": "不能为空",
    "Not a valid datetime.": "应为日期时间（ISO 8601，如 2026-12-01T08:00:00+08:00）",
    "Not a valid list.": "应为数组",
    "Invalid input type.": "类型不正确",
    "Not a valid boolean.": "应为 true 或 false",
    "Invalid JSON body.": "请求体不是有效的 JSON",
    "Not a valid mapping type.": "应为 JSON 对象",
}


def _chinese(errors):
    if isinstance(errors, dict):
        return {key: _chinese(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_chinese(item) for item in errors]
    if isinstance(errors, str):
        if errors in _MESSAGES:
            return _MESSAGES[errors]
        if errors.startswith("Length must be"):
            return "长度超出范围"
        return errors
    return errors


def api_blueprint(name: str, url_prefix: str, tag: str, description: str) -> Blueprint:
    """A blueprint of the API: problem+json errors, no caching, and the key check of its keyed
    endpoints (``keyed``) before anything reads the request, their 操作日志 row after."""
    blp = Blueprint(name, __name__, url_prefix=PREFIX + url_prefix, description=description)
    blp.tag = tag
    blp.register_error_handler(HTTPException, handle_http_exception)
    blp.before_request(_authenticate)
    blp.after_request(_record_call)
    blp.after_request(_no_store)
    return blp


def no_nul(value: str) -> None:
    """PostgreSQL refuses NUL in text: a value holding one is refused before any query (422)."""
    if "\x00" in value:
        raise ma.ValidationError("不能包含空字符（\\u0000）")


# -- keys --------------------------------------------------------------------------------------------------
def keyed(blp: Blueprint, scope: str):
    """An endpoint for API keys with ``scope``: checked by ``_authenticate``, documented as such."""

    def decorator(func):
        func.api_scope = scope
        label = apikeys.scope_label(scope)
        func = blp.alt_response(401, schema=ProblemSchema, content_type=PROBLEM,
                                description="缺少接口密钥，或密钥无效、已吊销、已过期")(func)
        func = blp.alt_response(403, schema=ProblemSchema, content_type=PROBLEM,
                                description=f"接口密钥没有「{label}」数据范围")(func)
        func = blp.alt_response(429, schema=ProblemSchema, content_type=PROBLEM,
                                description="超出该接口密钥的每分钟调用上限")(func)
        return blp.doc(security=[{SECURITY: []}])(func)

    return decorator


def _authenticate():
    """Before a keyed endpoint reads anything: the key (401/403) and its rate limit (429). A call of
    a known key is in 操作日志 whatever its answer (``_record_call``)."""
    view = current_app.view_functions.get(request.endpoint)
    scope = getattr(view, "api_scope", None)
    if scope is None:
        return None
    g.api_rows = 0
    try:
        key = apikeys.authenticate(db.session, request.headers.get("Authorization"), scope)
    except apikeys.KeyRefused as refused:
        g.api_key = refused.key
        headers = {"WWW-Authenticate": 'Bearer realm="api"'} if refused.code == 401 else None
        return problem(refused.code, refused.message, headers=headers)
    now = utcnow()
    allowed = rules.hit(db.session, f"apikey:{key.id}", key.rate_limit, RATE_WINDOW, now)
    db.session.commit()  # the counter at once: a refused or failed call still counts
    g.api_key = key
    if not allowed:
        return problem(429, f"超出该接口密钥的调用上限（每分钟 {key.rate_limit} 次），请稍后再试",
                       headers={"Retry-After": str(rules.retry_after(now, RATE_WINDOW))})
    g.api_principal = apikeys.KeyPrincipal(key)
    return None


def _record_call(response):
    key = g.pop("api_key", None)
    if key is None:
        return response
    try:
        db.session.rollback()  # nothing of a read-only call is left to write but this row
        apikeys.record_call(db.session, key, request.method, request.path, g.get("api_rows", 0),
                            response.status_code, ip=client_ip())
        db.session.commit()
    except Exception:  # noqa: BLE001 - the answer stands; the failure is in the server's log
        db.session.rollback()
        current_app.logger.exception("接口调用: the operation-log row was not written")
    return response


def _no_store(response):
    """Answers are per caller (a rate-limited lookup, a key's own rows): never kept by a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- public verification ---------------------------------------------------------------------------
verify_blp = api_blueprint("api_verify", "/verify", "证书查询",
                           "证书查询：按编号和姓名、按证照标识查询公开，无需密钥，与证书查询页面的回答相同，"
                           "按来源地址限制频率；批量核验需要带「批量核验」范围的接口密钥")


class VerifyQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    number = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=rules.MAX_NUMBER_LENGTH),
                                                       no_nul], metadata={"description": "证书编号（15位）"})
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=rules.MAX_NAME_LENGTH), no_nul],
                            metadata={"description": "持证人姓名"})


class NoQuery(ma.Schema):
    """An endpoint that takes no query parameter: any is refused (422), as on the lists."""

    class Meta:
        unknown = ma.RAISE


class ElectronicSchema(ma.Schema):
    current = ma.fields.Boolean(metadata={"description": "该电子证书是否为当前有效的一份"})
    label = ma.fields.String(metadata={"description": "电子证书状态：有效 / 已注销 / 已作废 / 已变更，请以新证为准"})
    since = ma.fields.Date(allow_none=True, metadata={"description": "不再有效的日期（有效时为空）"})


class CertificateCardSchema(ma.Schema):
    """The card 证书查询 shows: the holder masked (SPEC §10)."""

    number = ma.fields.String(metadata={"description": "证书编号"})
    status = ma.fields.String(metadata={"description": "证书状态代码：valid 有效 / cancelled 已注销 / voided 已作废"})
    status_label = ma.fields.String(metadata={"description": "证书状态（中文）"})
    holder_name = ma.fields.String(metadata={"description": "持证人姓名（脱敏，如 张*）"})
    id_number = ma.fields.String(metadata={"description": "身份证号（脱敏，如 3701**********1234）"})
    occupation = ma.fields.String(metadata={"description": "职业(工种)"})
    level = ma.fields.String(metadata={"description": "等级（无等级时为「无等级」）"})
    issuer = ma.fields.String(metadata={"description": "发证机构"})
    issue_date = ma.fields.Date(metadata={"description": "发证日期"})
    valid_until = ma.fields.Date(allow_none=True, metadata={"description": "有效期至（长期有效时为空）"})
    replaced_by_number = ma.fields.String(allow_none=True,
                                          metadata={"description": "已补办时新证书的编号（证书已作废时）"})
    electronic = ma.fields.Nested(ElectronicSchema, allow_none=True,
                                  metadata={"description": "按证照标识查询时：该份电子证书的状态"})


def _allowed() -> None:
    """The same counter as 证书查询's page (one budget per address for pages and API). Called after
    the lookup, before anything of it is answered: the lookup's read and the counter's write are one
    transaction and one commit (bench/api.py: a commit and a transaction less per call)."""
    allowed, wait = count_lookup()
    if not allowed:
        abort(429, message=TOO_MANY, headers={"Retry-After": str(wait)})


def _card(result: rules.VerificationResult) -> dict:
    card = {field: getattr(result, field) for field in CertificateCardSchema._declared_fields if field != "electronic"}
    card["status"] = result.status.value
    card["electronic"] = None
    if result.electronic is not None:
        card["electronic"] = {"current": result.electronic.current, "label": result.electronic.label,
                              "since": result.electronic.since}
    return card


@verify_blp.route("/certificate")
@verify_blp.arguments(VerifyQuery, location="query", unknown=ma.RAISE)
@verify_blp.response(200, CertificateCardSchema)
@verify_blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM,
                         description="未查询到：编号不存在与姓名不符回答相同")
@verify_blp.alt_response(429, schema=ProblemSchema, content_type=PROBLEM, description="查询过于频繁")
def verify_certificate(query):
    """按证书编号和持证人姓名查询证书（与证书查询页面相同）"""
    number = rules.normalize_number(query["number"])
    result = rules.lookup(db.session, number, query["name"])
    _allowed()
    current_app.logger.info("证书查询(API): number=%s matched=%s", number, result is not None)
    if result is None:
        abort(404, message=NOT_FOUND)
    return _card(result)


@verify_blp.route("/electronic/<identifier>", parameters=[{
    "in": "path", "name": "identifier", "schema": {"type": "string"},
    "description": "证照标识（电子证书上印的，或其二维码中的），末位为校验位"}])
@verify_blp.arguments(NoQuery, location="query", unknown=ma.RAISE)
@verify_blp.response(200, CertificateCardSchema)
@verify_blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM, description="未查询到该电子证书")
@verify_blp.alt_response(429, schema=ProblemSchema, content_type=PROBLEM, description="查询过于频繁")
def verify_electronic(_query, identifier: str):
    """按电子证书的证照标识查询（证照标识带校验位，错误的标识不查询数据库）"""
    result = rules.lookup_by_identifier(db.session, identifier)
    _allowed()
    current_app.logger.info("证书查询(API 证照标识): identifier=%s matched=%s", identifier[:100], result is not None)
    if result is None:
        abort(404, message=NOT_FOUND_ECERT)
    return _card(result)

class BulkItemSchema(VerifyQuery):
    pass


class BulkQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    items = ma.fields.List(ma.fields.Nested(BulkItemSchema), required=True,
                           validate=ma.validate.Length(min=1, max=rules.MAX_BULK,
                                                       error=f"一次最多核验 {rules.MAX_BULK} 条，至少 1 条"),
                           metadata={"description": f"要核验的证书（证书编号和持证人姓名），1 到 {rules.MAX_BULK} 条"})


class BulkResultSchema(ma.Schema):
    number = ma.fields.String(metadata={"description": "请求中的证书编号（原样）"})
    found = ma.fields.Boolean(metadata={"description": "是否查询到：编号不存在与姓名不符同样为 false"})
    certificate = ma.fields.Nested(CertificateCardSchema, allow_none=True,
                                   metadata={"description": "查询到时：与证书查询页面相同的证书信息（持证人脱敏）"})


class BulkResponseSchema(ma.Schema):
    results = ma.fields.List(ma.fields.Nested(BulkResultSchema),
                             metadata={"description": "逐条结果，顺序与请求相同"})
    found = ma.fields.Integer(metadata={"description": "查询到的条数"})


@verify_blp.route("/bulk", methods=["POST"])
@verify_blp.arguments(BulkQuery, location="json", unknown=ma.RAISE)
@verify_blp.response(200, BulkResponseSchema)
@verify_blp.alt_response(400, schema=ProblemSchema, content_type=PROBLEM, description="请求体不是有效的 JSON")
@keyed(verify_blp, "verify")
def verify_bulk(body):
    """批量核验：一次最多 1000 条证书编号和姓名（需要接口密钥）"""
    items = body["items"]
    found = rules.lookup_many(db.session, [(item["number"], item["name"]) for item in items])
    results = [{"number": item["number"], "found": result is not None,
                "certificate": _card(result) if result is not None else None}
               for item, result in zip(items, found, strict=True)]
    g.api_rows = sum(1 for result in found if result is not None)
    return {"results": results, "found": g.api_rows}


# -- data exchange (keys) -----------------------------------------------------------------------------------
data_blp = api_blueprint(
    "api_data", "", "数据交换",
    "机构数据交换（需要接口密钥）：密钥所属机构的用户能看到的数据，只读。列表按 (updated_at, 内部序号) 顺序分页，"
    "用 next_cursor 取下一页；增量同步时传 updated_since（建议取上次收到的最大 updated_at 再往前 5 分钟，"
    "重复收到的记录按编号覆盖即可）。记录离开本机构可见范围（如持证人调往其他企业）时不会作为删除返回，"
    "请定期做一次全量同步核对。")


class SinceField(ma.fields.DateTime):
    """``updated_since``: any ISO 8601 time, read as the naive UTC the database holds (a time without
    offset is Beijing time); one that has no UTC equivalent (year 1 in +08:00) is refused, not a 500."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return exchange.naive_utc(parsed)
        except OverflowError:
            raise ma.ValidationError("超出可用的时间范围") from None


class PageQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    limit = ma.fields.Integer(load_default=exchange.PAGE_DEFAULT, strict=False,
                              validate=ma.validate.Range(min=1, max=exchange.PAGE_MAX,
                                                         error=f"每页条数应在 1 到 {exchange.PAGE_MAX} 之间"),
                              metadata={"description": f"每页条数，1 到 {exchange.PAGE_MAX}，默认 {exchange.PAGE_DEFAULT}"})
    cursor = ma.fields.String(validate=[ma.validate.Length(max=500, error="游标过长"), no_nul],
                              metadata={"description": "上一页返回的 next_cursor（原样传回）；第一页不传"})
    updated_since = SinceField(metadata={"description": "只返回此时间及以后变更的记录（增量同步）；"
                                                                "ISO 8601，不带时区时按北京时间"})


class CertificateRecordSchema(ma.Schema):
    number = ma.fields.String(metadata={"description": "证书编号"})
    status = ma.fields.String(metadata={"description": "证书状态代码：valid 有效 / cancelled 已注销 / voided 已作废"})
    status_label = ma.fields.String(metadata={"description": "证书状态（中文）"})
    print_status = ma.fields.String(metadata={"description": "打印状态：unprinted 未打印 / printed 已打印"})
    holder_name = ma.fields.String(metadata={"description": "持证人姓名"})
    holder_id_number = ma.fields.String(metadata={"description": "持证人身份证号"})
    employer = ma.fields.String(allow_none=True, metadata={"description": "工作单位（持证人当前的工作单位）"})
    occupation_code = ma.fields.String(metadata={"description": "职业(工种)代码（3位）"})
    occupation = ma.fields.String(metadata={"description": "职业(工种)"})
    level_code = ma.fields.String(metadata={"description": "等级代码（1位，无等级为 0）"})
    level = ma.fields.String(allow_none=True, metadata={"description": "等级（无等级时为空）"})
    issuer_code = ma.fields.String(metadata={"description": "发证机构代码"})
    issuer = ma.fields.String(metadata={"description": "发证机构"})
    batch_code = ma.fields.String(allow_none=True, metadata={"description": "批次代码"})
    issue_date = ma.fields.Date(metadata={"description": "发证日期"})
    valid_until = ma.fields.Date(allow_none=True, metadata={"description": "有效期至（长期有效时为空）"})
    replaces_number = ma.fields.String(allow_none=True, metadata={"description": "补办时：被替换（已作废）证书的编号"})
    updated_at = ma.fields.DateTime(metadata={"description": "证书或持证人信息最近变更时间（北京时间，带时区）"})


class RegistrationRecordSchema(ma.Schema):
    registration_number = ma.fields.String(allow_none=True, metadata={"description": "注册证书编号"})
    holder_name = ma.fields.String(metadata={"description": "注册人员姓名"})
    holder_id_number = ma.fields.String(metadata={"description": "身份证号"})
    enterprise_code = ma.fields.String(metadata={"description": "聘用企业代码"})
    enterprise = ma.fields.String(metadata={"description": "聘用企业"})
    specialty_code = ma.fields.String(metadata={"description": "注册专业代码"})
    specialty = ma.fields.String(metadata={"description": "注册专业"})
    kind = ma.fields.String(metadata={"description": "申报类型代码：initial 初始 / renewal 延续 / change 变更 / "
                                                     "additional 增项"})
    kind_label = ma.fields.String(metadata={"description": "申报类型（中文）"})
    valid_until = ma.fields.Date(allow_none=True, metadata={"description": "注册有效期至"})
    registered_at = ma.fields.DateTime(allow_none=True, metadata={"description": "准予注册时间"})
    in_force = ma.fields.Boolean(metadata={"description": "是否为现行注册（false：已被延续、变更或增项注册取代）"})
    updated_at = ma.fields.DateTime(metadata={"description": "注册或人员信息最近变更时间（北京时间，带时区）"})


class BatchRecordSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "批次代码"})
    name = ma.fields.String(metadata={"description": "批次名称"})
    institution_code = ma.fields.String(metadata={"description": "单位（培训机构）代码"})
    institution = ma.fields.String(metadata={"description": "单位（培训机构）"})
    status = ma.fields.String(metadata={"description": "批次状态代码：draft 待提交 / authority_review 审核中(主管部门) / "
                                                       "province_review 审核中(省厅) / approved 审核通过 / rejected 审核不通过"})
    status_label = ma.fields.String(metadata={"description": "批次状态（中文）"})
    candidate_count = ma.fields.Integer(metadata={"description": "考生人数"})
    created_at = ma.fields.DateTime(metadata={"description": "创建时间"})
    submitted_at = ma.fields.DateTime(allow_none=True, metadata={"description": "提交审核时间"})
    reviewed_at = ma.fields.DateTime(allow_none=True, metadata={"description": "最近审核时间"})
    reject_reason = ma.fields.String(allow_none=True, metadata={"description": "审核不通过的原因"})
    updated_at = ma.fields.DateTime(metadata={"description": "最近变更时间（北京时间，带时区）"})


def _page_schema(name: str, record):
    return type(name, (ma.Schema,), {
        "items": ma.fields.List(ma.fields.Nested(record), metadata={"description": "本页记录"}),
        "next_cursor": ma.fields.String(allow_none=True, metadata={"description": "下一页的游标；为空表示已是最后一页"}),
    })


CertificatePageSchema = _page_schema("CertificatePage", CertificateRecordSchema)
RegistrationPageSchema = _page_schema("RegistrationPage", RegistrationRecordSchema)
BatchPageSchema = _page_schema("BatchPage", BatchRecordSchema)


def _page(collection: exchange.Collection, query: dict) -> dict:
    principal = g.api_principal
    bound = exchange.fingerprint(request.endpoint, principal.key.id, query.get("updated_since"))
    try:
        found = exchange.page(db.session, principal, collection, limit=query["limit"],
                              since=query.get("updated_since"), cursor=query.get("cursor"), fingerprint=bound,
                              secret=current_app.config["SECRET_KEY"])
    except exchange.CursorError as refused:
        abort(400, message=refused.message)
    g.api_rows = len(found.items)
    return {"items": found.items, "next_cursor": found.next_cursor}


def _one(collection: exchange.Collection, key: str, missing: str) -> dict:
    if len(key) > 64:  # (a NUL byte never gets here: admin_views.hardening refuses it first)
        abort(404, message=missing)
    record = exchange.one(db.session, g.api_principal, collection, key)
    if record is None:
        abort(404, message=missing)
    g.api_rows = 1
    return record


_NOT_VISIBLE = "不存在与不可见回答相同"


def _collection(path: str, item: str, item_label: str, collection: exchange.Collection, scope: str, page_schema,
                record_schema, names: tuple[str, str], docs: tuple[str, str], missing: str) -> None:
    """A collection's two endpoints: its list (keyset pages, ``updated_since``) and one row by its
    number or code — a row outside the key's visibility answers like an absent one."""

    def listing(query):
        return _page(collection, query)

    def one(_query, **key):
        return _one(collection, key[item], missing)

    for func, name, doc in ((listing, names[0], docs[0]), (one, names[1], docs[1])):
        func.__name__, func.__qualname__, func.__doc__ = name, name, doc
    listing = keyed(data_blp, scope)(data_blp.alt_response(
        400, schema=ProblemSchema, content_type=PROBLEM, description="游标无效或不属于本次查询")(listing))
    data_blp.route(path)(data_blp.arguments(PageQuery, location="query", unknown=ma.RAISE)(
        data_blp.response(200, page_schema)(listing)))
    one = keyed(data_blp, scope)(data_blp.alt_response(
        404, schema=ProblemSchema, content_type=PROBLEM, description=_NOT_VISIBLE)(one))
    described = [{"in": "path", "name": item, "description": item_label, "schema": {"type": "string"}}]
    data_blp.route(f"{path}/<{item}>", parameters=described)(data_blp.arguments(NoQuery, location="query", unknown=ma.RAISE)(
        data_blp.response(200, record_schema)(one)))


_collection("/certificates", "number", "证书编号", exchange.CERTIFICATES, "certificates", CertificatePageSchema,
            CertificateRecordSchema, ("certificates", "certificate"),
            ("证书列表（本机构可见的证书，分页，可增量同步）", "按证书编号取一张证书"),
            "未找到该证书：编号不存在，或不在本机构可见的范围内")
_collection("/registered-persons", "registration_number", "注册证书编号", exchange.REGISTRATIONS, "registrations",
            RegistrationPageSchema, RegistrationRecordSchema, ("registered_persons", "registered_person"),
            ("注册人员列表（准予注册的记录，含已被取代的，分页，可增量同步）", "按注册证书编号取一条注册人员记录"),
            "未找到该注册人员：注册证书编号不存在，或不在本机构可见的范围内")
_collection("/batches", "code", "批次代码", exchange.BATCHES, "batches", BatchPageSchema, BatchRecordSchema,
            ("batches", "batch"), ("批次状态列表（本机构可见的批次，分页，可增量同步）", "按批次代码取一个批次的状态"),
            "未找到该批次：批次代码不存在，或不在本机构可见的范围内")


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "建设行业人员证书管理 API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    # 接口文档: Swagger UI from this app's own static files (templates/swagger_ui.html), never a CDN
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", (app.static_url_path or "/static") + "/swagger-ui/")
    api = ProblemApi(app, spec_kwargs={"info": {"description": "证书查询（公开）与机构数据交换接口。所有错误以 "
                                                              "application/problem+json 返回，detail 为中文说明。"}})
    api.spec.components.security_scheme(SECURITY, {
        "type": "http", "scheme": "bearer",
        "description": "机构的接口密钥（系统管理 › 接口密钥 新建，只显示一次）：Authorization: Bearer csk_…"})
    api.register_blueprint(verify_blp)
    api.register_blueprint(data_blp)


# keyed calls carry their key in a header, never a cookie: no cross-site request can make one, so
# these are exempt from CSRF (admin_views.init_app); the API reads no session
KEY_BLUEPRINTS = (verify_blp, data_blp)


def is_api_request() -> bool:
    return request.path.startswith(PREFIX + "/")
