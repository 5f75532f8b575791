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
from flask import Flask, current_app, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException

from admin_views.verify import count_lookup
from models import db
from workflows import verification as rules

PROBLEM = "application/problem+json"
PREFIX = "/api/v1"

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


def api_blueprint(name: str, url_prefix: str, description: str) -> Blueprint:
    blp = Blueprint(name, __name__, url_prefix=PREFIX + url_prefix, description=description)
    blp.register_error_handler(HTTPException, handle_http_exception)
    blp.after_request(_no_store)
    return blp


def _no_store(response):
    """Answers are per caller (a rate-limited lookup, a key's own rows): never kept by a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- public verification ---------------------------------------------------------------------------
verify_blp = api_blueprint("api_verify", "/verify", "证书查询（公开，无需密钥）：与证书查询页面的回答相同，按来源地址限制频率")


class VerifyQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    number = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=rules.MAX_NUMBER_LENGTH),
                              metadata={"description": "证书编号（15位）"})
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=rules.MAX_NAME_LENGTH),
                            metadata={"description": "持证人姓名"})


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
    """The same counter as 证书查询's page (one budget per address for pages and API)."""
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
    _allowed()
    number = rules.normalize_number(query["number"])
    result = rules.lookup(db.session, number, query["name"])
    current_app.logger.info("证书查询(API): number=%s matched=%s", number, result is not None)
    if result is None:
        abort(404, message=NOT_FOUND)
    return _card(result)


@verify_blp.route("/electronic/<identifier>")
@verify_blp.response(200, CertificateCardSchema)
@verify_blp.alt_response(404, schema=ProblemSchema, content_type=PROBLEM, description="未查询到该电子证书")
@verify_blp.alt_response(429, schema=ProblemSchema, content_type=PROBLEM, description="查询过于频繁")
def verify_electronic(identifier: str):
    """按电子证书的证照标识查询（证照标识带校验位，错误的标识不查询数据库）"""
    _allowed()
    result = rules.lookup_by_identifier(db.session, identifier)
    current_app.logger.info("证书查询(API 证照标识): identifier=%s matched=%s", identifier[:100], result is not None)
    if result is None:
        abort(404, message=NOT_FOUND_ECERT)
    return _card(result)


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
    api.register_blueprint(verify_blp)


def is_api_request() -> bool:
    return request.path.startswith(PREFIX + "/")
