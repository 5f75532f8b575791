"""`flask seed demo` (SPEC §12): a Shandong province where every journey can start at once.

Batches are moved through their states by the workflow engine itself, so the demo's
certificates, numbers and logs are exactly what the product would have produced.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import Attachment, AttachmentKind, Base, Organization, Person, ScopeItem, User
from models.base import local_today, utcnow
from models.org import OrgKind, OrgStatus
from models.user import Role, role_preset
from seed.images import make_png
from seed.reference import ensure_reference
from workflows.batch import BATCH, create_batch
from workflows.excel import CandidateRow as Row  # demo rows have the shape of a clean import
from workflows.reference import load_cities
from workflows.validators import make_credit_code, make_id_number

DEMO_PASSWORD = "Demo@2026"


def clear_all(session: Session) -> None:
    """Remove every row of every table (children first), so a rerun starts clean."""
    from models import Candidate

    session.execute(update(Candidate).values(certificate_id=None))  # break the batch ↔ certificate cycle
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table))
    session.flush()


NOT_YET_ONBOARDED = "371700"


class DemoBuilder:
    def __init__(self, session: Session):
        self.s = session
        self.password_hash = generate_password_hash(DEMO_PASSWORD)
        self.phone_seq = 0
        self.person_seq = 0
        self.occupations, self.levels = ensure_reference(session)

    # -- organizations and users --------------------------------------------------------
    def org(self, code, name, kind, parent=None, region=None, **extra) -> Organization:
        org = Organization(code=code, name=name, kind=kind, parent=parent,
                           region_code=region or (parent.region_code if parent else "370000"),
                           status=extra.pop("status", OrgStatus.active), created_at=utcnow(), **extra)
        self.s.add(org)
        self.s.flush()
        org.refresh_path()
        return org

    def user(self, username, name, org, role=Role.admin, person=None) -> User:
        self.phone_seq += 1
        user = User(username=username, name=name, organization=org, role=role, person_id=person.id if person else None,
                    password_hash=self.password_hash, phone=f"138{self.phone_seq:08d}", is_enabled=True,
                    created_at=utcnow())
        user.set_permissions(role_preset(org.kind, role) if org is not None else ())
        self.s.add(user)
        return user

    def scope(self, org, pairs) -> None:
        for occupation, level in pairs:
            self.s.add(ScopeItem(organization=org, occupation=self.occupations[occupation],
                                 level=self.levels[level] if level else None))

    def all_pairs(self):
        for occupation in self.occupations.values():
            if occupation.has_levels:
                for level in self.levels.values():
                    yield occupation.name, level.name
            else:
                yield occupation.name, None

    # -- persons -------------------------------------------------------------------------
    def next_identity(self, region="370102"):
        self.person_seq += 1
        birth = date(1975, 1, 1) + timedelta(days=self.person_seq * 211)
        gender = "男" if self.person_seq % 3 else "女"
        return make_id_number(region, birth, self.person_seq % 999 + 1, gender), birth, gender

    def rows(self, names, pairs, employer=None, region="370102"):
        out = []
        for i, name in enumerate(names):
            occupation, level = pairs[i % len(pairs)]
            number, birth, gender = self.next_identity(region)
            out.append(Row(i + 2, name, number, birth, gender, f"139{self.person_seq:08d}", employer, occupation, level))
        return out

    def holder(self, username, name, gender, birth, employer) -> User:
        """An individual account (个人用户) and its person, employed by ``employer``."""
        self.person_seq += 1
        region = "370202" if employer.region_code == "370200" else "370112"
        person = Person(name=name, id_number=make_id_number(region, birth, self.person_seq % 999 + 1, gender),
                        birth_date=birth, gender=gender, phone=f"136{self.person_seq:08d}", employer=employer,
                        created_at=utcnow())
        self.s.add(person)
        self.s.flush()
        user = self.user(username, name, None, Role.individual, person=person)
        self.s.flush()
        return user

    def batch(self, user, name, rows, steps, reason="资料不全，请补充培训记录"):
        batch = create_batch(self.s, user, name, rows, self.occupations, self.levels)
        for actor, transition in steps:
            BATCH.fire(self.s, actor, batch, transition, reason=reason if "reject" in transition else None)
        return batch


def build_demo(session: Session, reset: bool = True) -> dict:
    """Build the demo; with ``reset`` every table is emptied first, so a rerun starts clean."""
    if reset:
        clear_all(session)
    b = DemoBuilder(session)
    cities = load_cities()
    province_row, city_rows = cities[0], cities[1:]

    province = b.org("SD370000", province_row["authority_name"], OrgKind.province, region=province_row["region_code"],
                     contact="省厅证书科", phone="0531-00000000", address="济南市历下区")
    b.scope(province, b.all_pairs())
    ministry = b.org("MOHURD", "住房和城乡建设部执业资格注册中心", OrgKind.ministry, region="100000")
    authorities = {}
    # 菏泽市 has no authority yet: the province creates it in 主管部门管理 (issue 5's journey)
    for row in (r for r in city_rows if r["region_code"] != NOT_YET_ONBOARDED):
        authority = b.org(f"SD{row['region_code']}", row["authority_name"], OrgKind.authority, parent=province,
                          region=row["region_code"], contact=f"{row['name']}证书窗口")
        b.scope(authority, b.all_pairs())
        authorities[row["region_code"]] = authority
    jinan, qingdao = authorities["370100"], authorities["370200"]

    trades = [("砌筑工", "初级工(五级)"), ("砌筑工", "中级工(四级)"), ("钢筋工", "初级工(五级)"),
              ("焊工", "中级工(四级)"), ("电工", "初级工(五级)"), ("电工", "高级工(三级)"), ("施工员", None),
              ("安全员", None)]
    inst_jinan = b.org("JG370101", "济南市建设职业技能培训中心", OrgKind.institution, parent=jinan, contact="王老师")
    b.scope(inst_jinan, trades)
    inst_jinan2 = b.org("JG370102", "济南建筑技工学校培训部", OrgKind.institution, parent=jinan)
    b.scope(inst_jinan2, trades[:4])
    inst_qingdao = b.org("JG370201", "青岛市建筑业职业培训学校", OrgKind.institution, parent=qingdao, contact="李老师")
    b.scope(inst_qingdao, trades)
    for region, authority in authorities.items():
        if region not in ("370100", "370200"):
            inst = b.org(f"JG{region[:4]}01", f"{authority.name[:3]}建设职业培训学校", OrgKind.institution, parent=authority)
            b.scope(inst, trades[:3])
    direct = b.org("SZ370001", "山东省建设职业技能鉴定指导中心", OrgKind.direct_institution, parent=province)
    b.scope(direct, trades + [("木工", "初级工(五级)"), ("架子工", "初级工(五级)")])

    enterprise = b.org("QY370101", "山东鲁建建设集团有限公司", OrgKind.enterprise, parent=jinan,
                       credit_code=make_credit_code("91370100MA3C00001"), qualification_no="D237010001",
                       contact="赵经理", phone="0531-88880001", address="济南市历城区工业南路1号")
    enterprise2 = b.org("QY370201", "青岛海晟建设工程有限公司", OrgKind.enterprise, parent=qingdao,
                        credit_code=make_credit_code("91370200MA3C00002"), qualification_no="D237020002",
                        contact="孙经理", phone="0532-88880002")
    b.org("QY370102", "济南同创建筑劳务有限公司", OrgKind.enterprise, parent=jinan,
          credit_code=make_credit_code("91370100MA3C00003"), contact="周经理")
    school = b.org("XX370101", "济南城市建设职业学院(虚拟企业)", OrgKind.school, parent=jinan)

    holder, birth, gender = b.next_identity()
    person = Person(name="张建国", id_number=holder, birth_date=birth, gender=gender, phone="13912345678",
                    employer=enterprise, created_at=utcnow())
    session.add(person)
    session.flush()

    users = {
        "province": b.user("province", "省厅管理员", province),
        "province_reviewer": b.user("province_reviewer", "省厅审核员", province, Role.reviewer),
        "jinan": b.user("jinan", "济南市审核管理员", jinan),
        "qingdao": b.user("qingdao", "青岛市审核管理员", qingdao),
        "inst_jinan": b.user("inst_jinan", "济南培训中心管理员", inst_jinan),
        "inst_qingdao": b.user("inst_qingdao", "青岛培训学校管理员", inst_qingdao),
        "direct_inst": b.user("direct_inst", "省直所管理员", direct),
        "enterprise": b.user("enterprise", "鲁建集团管理员", enterprise),
        "enterprise2": b.user("enterprise2", "海晟建设管理员", enterprise2),
        "school": b.user("school", "城建学院管理员", school),
        "person": b.user("person", "张建国", None, Role.individual, person=person),
        "ministry": b.user("ministry", "部注册中心审核员", ministry, Role.reviewer),
    }
    users["jinan_reviewer"] = b.user("jinan_reviewer", "济南市审核员", jinan, Role.reviewer)
    # a second-level user of `enterprise` (002 §3.1.5 人员管理: the administrator manages them)
    b.user("enterprise_op", "鲁建集团经办人", enterprise, Role.operator)
    session.flush()

    P, J, Q, D = users["province"], users["jinan"], users["qingdao"], users["direct_inst"]
    IJ, IQ = users["inst_jinan"], users["inst_qingdao"]
    ent_name, ent2_name = enterprise.name, enterprise2.name
    approved_j = b.batch(IJ, "2026年第一期砌筑工培训", b.rows(["李明", "王强", "刘洋", "陈静"], trades[:2], ent_name),
                         [(IJ, "submit"), (J, "authority_approve"), (P, "province_approve")])
    b.batch(IJ, "2026年第二期焊工电工培训", b.rows(["赵磊", "孙丽", "周涛"], trades[3:6], ent_name),
            [(IJ, "submit"), (J, "authority_approve")])
    b.batch(IJ, "2026年第三期钢筋工培训", b.rows(["吴刚", "郑爽"], trades[2:3], ent_name), [(IJ, "submit")])
    b.batch(IJ, "2026年第四期施工员培训", b.rows(["冯雪", "韩梅"], trades[6:8], None), [])
    b.batch(IJ, "2026年第五期安全员培训", b.rows(["杨帆", "朱琳"], trades[7:8], None),
            [(IJ, "submit"), (J, "authority_reject")])
    b.batch(IQ, "青岛2026年第一期钢筋工", b.rows(["钱坤", "褚颖", "卫东"], trades[2:4], ent2_name, "370202"),
            [(IQ, "submit"), (Q, "authority_approve"), (P, "province_approve")])
    b.batch(IQ, "青岛2026年第二期电工", b.rows(["蒋勇", "沈佳"], trades[4:6], ent2_name, "370202"),
            [(IQ, "submit"), (Q, "authority_approve")])
    b.batch(IQ, "青岛2026年第三期砌筑工", b.rows(["韩冰", "杨柳"], trades[:1], None, "370202"), [(IQ, "submit")])
    b.batch(IQ, "青岛2026年第四期施工员", b.rows(["秦岭"], trades[6:7], None, "370202"), [])
    b.batch(IQ, "青岛2026年第五期焊工", b.rows(["尤佳", "许诺"], trades[3:4], None, "370202"),
            [(IQ, "submit"), (Q, "authority_approve"), (P, "province_reject")])
    b.batch(D, "省直所2026年第一期木工", b.rows(["何平", "吕方"], [("木工", "初级工(五级)")], ent_name),
            [(D, "submit"), (P, "province_approve")])
    b.batch(D, "省直所2026年第二期架子工", b.rows(["施然"], [("架子工", "初级工(五级)")], None), [(D, "submit")])
    # `person` holds two valid certificates (SPEC §12)
    b.batch(IJ, "2026年张建国取证批次", [
        Row(2, person.name, person.id_number, person.birth_date, person.gender, person.phone, ent_name, "砌筑工", "初级工(五级)"),
        Row(3, person.name, person.id_number, person.birth_date, person.gender, person.phone, ent_name, "电工", "初级工(五级)"),
    ], [(IJ, "submit"), (J, "authority_approve"), (P, "province_approve")])
    school_holder = b.batch(IJ, "2026年在校学生取证批次", b.rows(["林晓"], trades[:1], school.name), [
        (IJ, "submit"), (J, "authority_approve"), (P, "province_approve")])
    moving = b.batch(IJ, "2026年同创劳务人员取证批次", b.rows(["顾铭"], trades[:1], "济南同创建筑劳务有限公司"), [
        (IJ, "submit"), (J, "authority_approve"), (P, "province_approve")])
    business = b.batch(IJ, "2026年第六期砌筑工钢筋工培训", b.rows(
        ["马骏", "秦朗", "许晴", "蔡琴", "邓超", "宋佳", "冯远", "袁泉", "孔明", "曹操", "邵峰", "唐嫣", "韦东",
         "程风", "鲁豫", "白岩"], trades[:3], ent_name), [(IJ, "submit"), (J, "authority_approve"), (P, "province_approve")])
    session.flush()
    build_applications(session, users, enterprise, [c for c in business.candidates], moving.candidates[0])
    del school_holder
    session.flush()
    build_accounts(b, users, jinan)
    build_registrations(b, users, authorities)
    session.flush()
    from sqlalchemy import func, select

    from models import Anomaly, Batch, Certificate, Registration

    return {
        "机构": session.scalar(select(func.count()).select_from(Organization)),
        "用户": session.scalar(select(func.count()).select_from(User)),
        "批次": session.scalar(select(func.count()).select_from(Batch)),
        "证书": session.scalar(select(func.count()).select_from(Certificate)),
        "注册申报": session.scalar(select(func.count()).select_from(Registration)),
        "申辩": session.scalar(select(func.count()).select_from(Anomaly)),
        "示例批次": approved_j.code,
    }


def build_applications(session: Session, users: dict, enterprise: Organization, candidates, mover) -> None:
    """证书业务 of every kind in every state (SPEC §12), through the real workflow, and a holder
    of ``enterprise`` whose employer change was approved a few weeks ago (000 §二(二).3)."""
    from models import Certificate, ChangeField
    from workflows.business import BUSINESS, attach_images, start_cancel, start_change, start_reissue

    png = [("申请表.png", make_png(160, 100))]
    IJ, E, J, P = users["inst_jinan"], users["enterprise"], users["jinan"], users["province"]
    certificates = iter(session.get(Certificate, c.certificate_id) for c in candidates)
    steps = {
        "draft": [],
        "pending_authority": ["submit"],
        "pending_province": ["submit", "authority_approve"],
        "approved": ["submit", "authority_approve", "province_approve"],
        "rejected": ["submit", "authority_reject"],
    }
    actors = {"submit": None, "authority_approve": J, "authority_reject": J, "province_approve": P}

    def run(app, applicant, path):
        if path:
            attach_images(session, applicant, app, png)
        for name in path:
            BUSINESS.fire(session, actors[name] or applicant, app, name,
                          reason="申请表信息不完整，请补充后重新申请" if "reject" in name else None)

    names = iter(["马俊", "秦浪", "许清", "蔡勤", "邓潮"])
    for state, path in steps.items():
        certificate = next(certificates)
        applicant = IJ if state in ("draft", "pending_province", "approved") else E
        app = start_change(session, applicant, certificate, [ChangeField.name], {"new_name": next(names)},
                           one_field_only=True)
        run(app, applicant, path)
    for state, path in steps.items():
        applicant = E if state in ("draft", "pending_authority") else IJ
        app = start_reissue(session, applicant, "证书不慎遗失，申请补办", next(certificates))
        run(app, applicant, path)
    for state, path in steps.items():
        applicant = IJ if state != "pending_authority" else E
        app = start_cancel(session, applicant, next(certificates), "持证人申请注销证书")
        run(app, applicant, path)

    # 顾铭 moved from 济南同创 to `enterprise`, approved weeks ago: a new employer change of his
    # shows reviewers the 3-month warning
    moved = session.get(Certificate, mover.certificate_id)
    app = start_change(session, IJ, moved, [ChangeField.employer], {"new_employer_id": str(enterprise.id)},
                       one_field_only=True)
    run(app, IJ, steps["approved"])
    moved.person.last_employer_change_at = utcnow() - timedelta(days=40)


class _Inbox:
    """An SMS sender that keeps the codes: the demo's self-registrations bind their phones with
    the real 手机号绑定 code, without writing to the outbox."""

    def __init__(self):
        self.texts: list[str] = []

    def send(self, phone: str, text: str) -> None:
        self.texts.append(text)


def build_accounts(b: DemoBuilder, users: dict, jinan: Organization) -> None:
    """企业注册 / 个人注册 (SPEC §5.3) through the public registration functions: an enterprise and an
    individual waiting for 济南, an enterprise of 青岛 rejected; and 瑞丰 (`ruifeng`), whose 企业名称变更
    was rejected once and now waits at the province (§5.4). (Each registration hashes a password:
    three keep the seed fast.)"""
    session = b.s
    from workflows.accounts import ACCOUNT, register_enterprise, register_individual
    from workflows.auth import Purpose, issue_code
    from workflows.enterprise import ENTERPRISE_CHANGE, start_change

    inbox, now = _Inbox(), utcnow()
    licence = [("营业执照.png", make_png(120, 80))]

    def code(phone):
        issue_code(session, phone, Purpose.REGISTER, inbox, now=now)
        return inbox.texts[-1].split("验证码：")[1][:6]

    def enterprise(name, body17, region, address, username, phone, **extra):
        values = {"name": name, "credit_code": make_credit_code(body17), "region_code": region, "address": address,
                  "postcode": "250001" if region == "370100" else "266001", "contact": "刘经理",
                  "contact_phone": "0531-86660000", "admin_name": f"{name[2:4]}管理员", "username": username,
                  "password": DEMO_PASSWORD, "password2": DEMO_PASSWORD, "phone": phone, "sms_code": code(phone),
                  **extra}
        return register_enterprise(session, values, licence, [], now=now)

    J, Q = users["jinan"], users["qingdao"]
    # the demo enterprises registered before this system: their 营业执照 on record (企业信息)
    for key in ("enterprise", "enterprise2"):
        org = users[key].organization
        session.add(Attachment(owner_type="organization", owner_id=org.id, kind=AttachmentKind.image,
                               purpose="营业执照", filename="营业执照.png", content_type="image/png",
                               size=len(licence[0][1]), sha256=hashlib.sha256(licence[0][1]).hexdigest(),
                               data=licence[0][1], uploaded_by_id=users[key].id, created_at=now))
    enterprise("济南恒远建筑安装有限公司", "91370100MA3C00005", "370100", "济南市槐荫区经十路100号", "hengyuan",
               "13700000001")
    individual = {"name": "许文杰", "id_number": make_id_number("370105", date(1988, 3, 14), 17, "男"),
                  "region_code": "370100", "username": "xuwenjie", "password": DEMO_PASSWORD,
                  "password2": DEMO_PASSWORD, "phone": "13700000002"}
    register_individual(session, {**individual, "sms_code": code(individual["phone"])}, now=now)
    rejected = enterprise("青岛鼎盛建设有限公司", "91370200MA3C00006", "370200", "青岛市市北区辽宁路6号", "dingsheng",
                          "13700000003")
    ACCOUNT.fire(session, Q, rejected, "reject", reason="营业执照图片不清晰，请重新上传后再注册")

    ruifeng_org = b.org("QY370103", "济南瑞丰建设工程有限公司", OrgKind.enterprise, parent=jinan,
                        credit_code=make_credit_code("91370100MA3C00007"), qualification_no="D237010007",
                        contact="吴经理", phone="0531-88880007", address="济南市天桥区北园大街7号")
    ruifeng = b.user("ruifeng", "瑞丰建设管理员", ruifeng_org)
    session.flush()
    change = start_change(session, ruifeng, ruifeng_org, {"new_name": "瑞丰建设", "explanation": "工商登记名称变更"})
    ENTERPRISE_CHANGE.fire(session, J, change, "authority_reject", reason="新名称与营业执照不一致，请核对后重新申请")
    change = start_change(session, ruifeng, ruifeng_org, {"new_name": "山东瑞丰建设集团有限公司",
                                                         "explanation": "工商登记名称已变更"})
    ENTERPRISE_CHANGE.fire(session, J, change, "authority_approve")  # now 待审核(省厅)


# registration demo: (username, name, gender, birth date, specialty, path) per enterprise; over-age holders (born
# before 1956) are flagged by 异常筛查 and their anomalies walk through every 申辩 state
_OK = "approved"
_REGISTRATIONS = {
    "enterprise": [
        ("person_li", "李文博", "男", date(1986, 4, 12), "01", "unreported"),
        ("person_wang", "王海涛", "男", date(1984, 9, 3), "08", "returned"),
        ("person_zhao", "赵志刚", "男", date(1979, 6, 21), "01", "expiring:30+renewal"),
        ("person_sun", "孙晓明", "男", date(1981, 11, 8), "10", "expiring:75"),
        ("person_zhou", "周丽华", "女", date(1988, 2, 17), "08", _OK),
        ("person_wu", "吴建平", "男", date(1983, 7, 30), "01", "province_reject"),
        ("person_zheng", "郑国强", "男", date(1985, 5, 5), "02", "withdrawn"),
        ("person_qian", "钱守业", "男", date(1952, 3, 9), "01", "anomaly:open"),
        ("person_feng", "冯德厚", "男", date(1953, 8, 15), "06", "anomaly:appealed"),
        ("person_chen", "陈宝山", "男", date(1954, 1, 27), "08", "anomaly:accepted"),
        ("person_chu", "褚长林", "男", date(1955, 10, 2), "01", "anomaly:rejected"),
    ],
    "enterprise2": [
        ("person_liu", "刘海波", "男", date(1982, 12, 1), "05", _OK),
        ("person_ma", "马晓东", "男", date(1987, 4, 19), "01", "ministry_reject"),
        ("person_he", "何玉兰", "女", date(1990, 8, 8), "08", "unreported"),
        ("person_song", "宋立业", "男", date(1978, 3, 3), "01", "expiring:45"),
        ("person_gao", "高福田", "男", date(1951, 5, 20), "05", "anomaly:open"),
        ("person_lu", "陆宝华", "男", date(1950, 11, 11), "01", "anomaly:appealed"),
        ("person_jin", "金永昌", "男", date(1952, 7, 7), "08", "anomaly:accepted"),
        ("person_tang", "唐德胜", "男", date(1953, 2, 14), "01", "anomaly:rejected"),
    ],
    # registrations under review sit at 泰岳, so `enterprise` and `enterprise2` may change their names
    "enterprise4": [
        ("person_tian", "田立新", "男", date(1983, 1, 23), "01", "province_unaccepted"),
        ("person_yang", "杨振华", "男", date(1980, 10, 10), "08", "province_accepted"),
        ("person_xu", "徐春梅", "女", date(1986, 6, 6), "10", "ministry_unaccepted"),
        ("person_han", "韩志明", "男", date(1982, 9, 9), "01", "ministry_accepted"),
        ("person_dong", "董建军", "男", date(1984, 12, 12), "02", "withdraw_requested"),
    ],
    # 同创 has no qualification number: its report is a 预注册 waiting for 补正资质 (004 §3.2.6)
    "enterprise3": [
        ("person_kong", "孔祥瑞", "男", date(1989, 3, 21), "01", "province_unaccepted"),
    ],
}
# the transitions that bring a new declaration to each state, and who fires them
_PATHS = {
    "unreported": [],
    "returned": ["return"],
    "province_unaccepted": ["report"],
    "province_accepted": ["report", "province_accept"],
    "ministry_unaccepted": ["report", "province_accept", "province_forward"],
    "ministry_accepted": ["report", "province_accept", "province_forward", "ministry_accept"],
    _OK: ["report", "province_accept", "province_forward", "ministry_accept", "ministry_approve"],
    "province_reject": ["report", "province_accept", "province_reject"],
    "ministry_reject": ["report", "province_accept", "province_forward", "ministry_accept", "ministry_reject"],
    "withdraw_requested": ["report", "request_withdraw"],
    "withdrawn": ["report", "request_withdraw", "consent_withdraw"],
}
_REASONS = {"return": "劳动合同扫描件不清晰，请补充后重新申报", "province_reject": "社保缴纳记录与聘用企业不一致",
            "ministry_reject": "继续教育学时不足，不予注册"}


def build_registrations(b: DemoBuilder, users: dict, authorities: dict) -> None:
    """注册申报 in every state (SPEC §5.5, §12) and 申辩管理 in every state, through the workflows.

    `person` (张建国) has no registration: a browser journey declares his first one. `enterprise`
    and `enterprise2` have none under review (§5.4: their name changes can go through); 泰岳
    (`enterprise4`) holds those, 同创 (`enterprise3`, no qualification number) the 预注册."""
    from sqlalchemy import select

    from models import Anomaly
    from workflows.appeals import APPEAL, scan_anomalies, submit_appeal
    from workflows.registration import REGISTRATION, Commitment, declare

    s = b.s
    tongchuang = s.scalars(select(Organization).where(Organization.code == "QY370102")).one()
    taiyue = b.org("QY370301", "淄博泰岳建设工程有限公司", OrgKind.enterprise, parent=authorities["370300"],
                   credit_code=make_credit_code("91370300MA3C00008"), qualification_no="D237030008",
                   contact="钱经理", phone="0533-88880008", address="淄博市张店区人民西路8号")
    users["enterprise3"] = b.user("enterprise3", "同创劳务管理员", tongchuang)
    users["enterprise4"] = b.user("enterprise4", "泰岳建设管理员", taiyue)
    s.flush()
    province, ministry = users["province_reviewer"], users["ministry"]
    today = local_today()
    flagged = {}
    for ent_user, rows in _REGISTRATIONS.items():
        ent = users[ent_user]
        for username, name, gender, birth, specialty, plan in rows:
            holder = b.holder(username, name, gender, birth, ent.organization)
            state, _, extra = plan.partition(":")
            path = _PATHS[_OK if state in ("expiring", "anomaly") else state]
            reg = declare(s, holder, {"kind": "initial", "specialty": specialty, "enterprise": ent.organization.name,
                                      "explanation": "申请初始注册"})
            for step in path:
                actor = {"report": ent, "return": ent, "consent_withdraw": ent, "request_withdraw": holder}.get(
                    step, ministry if step.startswith("ministry") else province)
                # the 企业承诺书 was shown a minute ago and ticked (SPEC §5.5)
                data = {"commitment": Commitment(shown_at=utcnow() - timedelta(seconds=61), ticked=True)} \
                    if step == "report" else {}
                REGISTRATION.fire(s, actor, reg, step, reason=_REASONS.get(step), **data)
            if state == "expiring":  # approved three years ago: 人员到期预警 (EXPIRY_WARNING_DAYS)
                days, _, renewal = extra.partition("+")
                reg.valid_until = today + timedelta(days=int(days))
                reg.decided_at = utcnow() - timedelta(days=3 * 365 - int(days))
                if renewal:
                    declare(s, holder, {"kind": "renewal", "specialty": specialty,
                                        "enterprise": ent.organization.name, "explanation": "注册有效期即将届满"})
            if state == "anomaly":
                flagged[holder.person_id] = extra
    s.flush()

    # 异常筛查 flags the over-age holders; their enterprises answer, the province decides
    scan_anomalies(s, users["province"])
    evidence = [("退休返聘说明.png", make_png(120, 80))]
    for anomaly in s.scalars(select(Anomaly).order_by(Anomaly.id)).all():
        target = flagged.get(anomaly.person_id, "open")
        if target == "open":
            continue
        answerer = next(u for u in users.values() if u.organization_id == anomaly.enterprise_id)
        submit_appeal(s, answerer, anomaly, "该人员为退休返聘技术顾问，已签订劳务协议，正在办理注销注册手续。", evidence)
        if target == "accepted":
            APPEAL.fire(s, users["province"], anomaly, "accept", reason="情况属实，予以认可")
        elif target == "rejected":
            APPEAL.fire(s, users["province"], anomaly, "reject", reason="超龄人员不得继续注册执业，请办理注销注册")
