"""`flask seed demo` (SPEC §12): a Shandong province where every journey can start at once.

Batches are moved through their states by the workflow engine itself, so the demo's
certificates, numbers and logs are exactly what the product would have produced.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import Base, Organization, Person, ScopeItem, User
from models.base import utcnow
from models.org import OrgKind, OrgStatus
from models.user import Role, role_preset
from seed.images import make_png
from seed.reference import ensure_reference, load_cities
from workflows.batch import BATCH, create_batch
from workflows.excel import CandidateRow as Row  # demo rows have the shape of a clean import
from workflows.validators import make_credit_code, make_id_number

DEMO_PASSWORD = "Demo@2026"


def clear_all(session: Session) -> None:
    """Remove every row of every table (children first), so a rerun starts clean."""
    from models import Candidate

    session.execute(update(Candidate).values(certificate_id=None))  # break the batch ↔ certificate cycle
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table))
    session.flush()


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
    for row in city_rows:
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
    from sqlalchemy import func, select

    from models import Batch, Certificate

    return {
        "机构": session.scalar(select(func.count()).select_from(Organization)),
        "用户": len(users),
        "批次": session.scalar(select(func.count()).select_from(Batch)),
        "证书": session.scalar(select(func.count()).select_from(Certificate)),
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
