"""The demo's invented companies, sites, fleet, prices and people. Figures, not logic.

Company names are invented; the cost figures for the platform-owned servers and the P-year
supply cost come from the white paper (``apps/contracts/data/market_figures.csv``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from apps.accounts import roles

DEMO_PASSWORD = "suanli-demo"
DEFAULT_SEED = 2026

# ---------------------------------------------------------------------------------------- people


@dataclass(frozen=True)
class StaffUser:
    username: str
    display_name: str
    roles: tuple[str, ...] = ()
    superuser: bool = False


STAFF_USERS = [
    StaffUser("admin", "Platform admin 平台管理员", superuser=True),
    StaffUser("am1", "Wang Lei 王磊 (account manager)", (roles.ACCOUNT_MANAGER,)),
    StaffUser("am2", "Li Na 李娜 (account manager)", (roles.ACCOUNT_MANAGER,)),
    StaffUser("sales1", "Zhang Wei 张伟 (sales manager)", (roles.SALES_MANAGER,)),
    StaffUser("finance1", "Chen Jing 陈静 (finance)", (roles.FINANCE,)),
    StaffUser("ops1", "Liu Yang 刘洋 (operations)", (roles.OPERATIONS,)),
]
STAFF_EMAIL_DOMAIN = "suanli.example"

# (username, display name, customer code, membership role)
PORTAL_USERS = [("acme-user", "Zhou Min 周敏 (Acme)", "acme", "admin")]

# ---------------------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class SiteSpec:
    name: str
    city: str
    hub: str
    serial_prefix: str
    # (GPU model name, number of 8-card servers)
    fleet: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ProviderSpec:
    code: str
    name: str
    type: str
    contact_name: str
    contact_phone: str
    settlement_terms_days: int
    cost_factor: Decimal  # this provider's supply costs relative to SUPPLY_COSTS
    sites: tuple[SiteSpec, ...]
    is_related_party: bool = False
    notes: str = ""


A100_40 = "A100-SXM4-40GB"
A100_80 = "A100-SXM4-80GB"
A800 = "A800-SXM4-80GB"
H800 = "H800-SXM5-80GB"
H20 = "H20-96GB"
L40S = "L40S-48GB"
RTX4090 = "RTX4090-24GB"
ASCEND = "Ascend-910B-64GB"

CARDS_PER_SERVER = 8

PROVIDERS = [
    ProviderSpec(
        code="cu-qinghai",
        name="华联通信青海分公司 Hualian Telecom Qinghai",
        type="telecom_operator",
        contact_name="马海军",
        contact_phone="0971-6310000",
        settlement_terms_days=60,
        cost_factor=Decimal("1.00"),
        notes="Carrier capacity sold by the P-year, H800 servers with IB network (cf. the 2023 Qinghai deal).",
        sites=(
            SiteSpec("Xining AIDC 西宁智算中心", "西宁", "other", "QH", ((H800, 24), (A800, 16))),
            SiteSpec("Zhongwei Cloud Base 中卫云基地", "中卫", "ningxia", "ZW", ((H20, 16),)),
        ),
    ),
    ProviderSpec(
        code="bj-idc",
        name="京北云港数据科技有限公司 Jingbei Cloudport Data",
        type="idc",
        contact_name="赵立新",
        contact_phone="010-67880000",
        settlement_terms_days=30,
        cost_factor=Decimal("1.00"),
        notes="Colocation IDC; also hosts the platform's own A100 servers (purchase cost recorded).",
        sites=(
            SiteSpec(
                "Yizhuang DC1 亦庄一号机房",
                "北京",
                "jingjinji",
                "BJ",
                ((A100_40, 20), (A100_80, 12), (L40S, 8)),
            ),
            SiteSpec("Huailai AI Park 怀来智算园", "张家口", "jingjinji", "ZJK", ((A800, 12), (RTX4090, 10))),
        ),
    ),
    ProviderSpec(
        code="yunqiong-cloud",
        name="云穹计算(杭州)有限公司 Yunqiong Cloud",
        type="cloud_vendor",
        contact_name="钱思远",
        contact_phone="0571-88120000",
        settlement_terms_days=30,
        cost_factor=Decimal("1.05"),
        sites=(
            SiteSpec("Hangzhou Yuhang 杭州余杭", "杭州", "yangtze_delta", "HZ", ((A100_80, 16), (H20, 12))),
            SiteSpec(
                "Ulanqab Jining 乌兰察布集宁",
                "乌兰察布",
                "inner_mongolia",
                "WLCB",
                ((A100_40, 16), (RTX4090, 8)),
            ),
        ),
    ),
    ProviderSpec(
        code="xingtu-ai",
        name="星图智源(深圳)科技有限公司 Xingtu AI",
        type="ai_company",
        contact_name="黄嘉欣",
        contact_phone="0755-86500000",
        settlement_terms_days=30,
        cost_factor=Decimal("0.95"),
        notes="Rents out the idle part of its own training cluster.",
        sites=(
            SiteSpec("Shenzhen Qianhai 深圳前海", "深圳", "greater_bay", "SZ", ((H800, 12), (L40S, 10))),
            SiteSpec("Shaoguan Hub 韶关枢纽", "韶关", "greater_bay", "SG", ((RTX4090, 12),)),
        ),
    ),
    ProviderSpec(
        code="huaxin-ict",
        name="天府华信系统集成有限公司 Tianfu Huaxin Systems",
        type="ict_integrator",
        contact_name="杨帆",
        contact_phone="028-85190000",
        settlement_terms_days=45,
        cost_factor=Decimal("1.00"),
        sites=(
            SiteSpec("Chengdu Tianfu 成都天府", "成都", "chengyu", "CD", ((ASCEND, 16), (A800, 8))),
            SiteSpec("Chongqing Liangjiang 重庆两江", "重庆", "chengyu", "CQ", ((L40S, 8),)),
        ),
    ),
    ProviderSpec(
        code="guian-infra",
        name="贵安算力基础设施有限公司 Gui'an Compute Infrastructure",
        type="ai_infra",
        contact_name="吴志刚",
        contact_phone="0851-88860000",
        settlement_terms_days=30,
        cost_factor=Decimal("0.95"),
        is_related_party=True,
        notes="Sister company of the platform (related party: voucher programmes may exclude it).",
        sites=(SiteSpec("Gui'an AIDC 贵安智算中心", "贵阳", "guizhou", "GA", ((ASCEND, 20), (H20, 12))),),
    ),
    ProviderSpec(
        code="shapotou-energy",
        name="沙坡头新能源投资有限公司 Shapotou New Energy Investment",
        type="cross_industry",
        contact_name="何建国",
        contact_phone="0955-7010000",
        settlement_terms_days=60,
        cost_factor=Decimal("0.90"),
        notes="Solar-farm investor moving into compute; cheap green power, yearly terms only.",
        sites=(
            SiteSpec("Zhongwei Shapotou 中卫沙坡头", "中卫", "ningxia", "NX", ((A800, 12), (H20, 8))),
            SiteSpec("Qingyang East 庆阳东数西算产业园", "庆阳", "gansu", "QY", ((RTX4090, 12),)),
        ),
    ),
]

# The platform's own servers (heavy-asset model): the first servers of this site and model.
PLATFORM_OWNED = {"provider": "bj-idc", "serial_prefix": "BJ", "gpu_model": A100_40, "count": 2}
PLATFORM_PURCHASE_COST = Decimal("1800000.00")  # server + switch + parts (white paper)
PLATFORM_ANNUAL_CASH_COST = Decimal("240000.00")  # 40 % of yearly total cost (white paper)

# Chance that a planned server is in maintenance / retired, and that one card of a healthy
# server is out for repair.
SERVER_MAINTENANCE_RATE = 0.03
SERVER_RETIRED_RATE = 0.015
CARD_FAULT_RATE = 0.004

# ---------------------------------------------------------------------------------------- prices

STANDARD_PRICE_LIST = {
    "code": "suanli-standard-2026",
    "name": "Suanli standard 2026 算力标准价",
    "currency": "CNY",
    "prices_include_tax": True,
    "is_default": True,
    "valid_from": datetime.date(2026, 1, 1),
    "notes": (
        "The default list (tax included): every model the platform leases, for every resource and term it "
        "is drafted in. A100 card and server prices are the market reference list's means (2024-08 white "
        "paper); the 8 × A100-40G server hour is the white paper's 180."
    ),
}


@dataclass(frozen=True)
class ModelPrices:
    card_hourly: Decimal
    server_monthly: Decimal
    server_yearly_discount: Decimal  # term discount %, server/yearly (list = 12 × monthly)
    p_yearly: Decimal
    p_yearly_discount: Decimal


STANDARD_PRICES = {
    # A100s: card hourly and server monthly/yearly as the market reference list (means of the
    # clouds' prices in apps/contracts/data/reference_prices.csv, their mean yearly discount), so
    # a contract drafted on either list gets the same price; P-years as the A800 (same 312 TFLOPS).
    A100_40: ModelPrices(
        Decimal("22.70"), Decimal("106000"), Decimal("17"), Decimal("200000"), Decimal("15")
    ),
    A100_80: ModelPrices(
        Decimal("40.40"), Decimal("143500"), Decimal("17"), Decimal("220000"), Decimal("15")
    ),
    A800: ModelPrices(Decimal("24.00"), Decimal("120000"), Decimal("15"), Decimal("200000"), Decimal("15")),
    H800: ModelPrices(Decimal("45.00"), Decimal("220000"), Decimal("15"), Decimal("280000"), Decimal("15")),
    H20: ModelPrices(Decimal("14.00"), Decimal("65000"), Decimal("12"), Decimal("450000"), Decimal("10")),
    L40S: ModelPrices(Decimal("12.00"), Decimal("55000"), Decimal("12"), Decimal("200000"), Decimal("10")),
    RTX4090: ModelPrices(Decimal("6.50"), Decimal("28000"), Decimal("10"), Decimal("220000"), Decimal("10")),
    ASCEND: ModelPrices(Decimal("18.00"), Decimal("90000"), Decimal("15"), Decimal("190000"), Decimal("15")),
}

# Further items of the standard list: (model, resource, term, list price, term discount %, tax
# category). The terms the demo's contracts are drafted in, at the prices those contracts carry,
# and the A100s by the server-hour (white paper: 180 for 8 × A100-40G NVLink) and the P-month.
# A contract line drafted without an item took the it_service tax category; these keep it, so
# no demo line changes its tax when its item appears.
STANDARD_EXTRA_ITEMS = [
    (A100_40, "server", "hourly", Decimal("180.00"), Decimal("0"), "it_service"),
    (A100_80, "server", "hourly", Decimal("260.00"), Decimal("0"), "it_service"),
    (A100_40, "p_unit", "monthly", Decimal("19000.00"), Decimal("0"), "it_service"),
    (A100_80, "p_unit", "monthly", Decimal("21000.00"), Decimal("0"), "it_service"),
    (A800, "server", "daily", Decimal("4300.00"), Decimal("0"), "it_service"),
    (L40S, "card", "daily", Decimal("260.00"), Decimal("0"), "it_service"),
    (RTX4090, "card", "monthly", Decimal("4200.00"), Decimal("0"), "it_service"),
    (ASCEND, "card", "yearly", Decimal("120000.00"), Decimal("10"), "it_service"),
    (H20, "p_unit", "hourly", Decimal("95.00"), Decimal("0"), "it_service"),
    (RTX4090, "p_unit", "daily", Decimal("650.00"), Decimal("0"), "it_service"),
    (ASCEND, "p_unit", "monthly", Decimal("17500.00"), Decimal("0"), "it_service"),
]

# What the platform pays before the provider's cost factor, per (resource, term).
SUPPLY_COSTS = {
    A100_40: {
        ("card", "hourly"): Decimal("12.00"),
        # Hosting the platform's own servers: their annual cash cost by the hour (240,000 / 8,760 h).
        ("server", "hourly"): Decimal("27.40"),
        ("server", "monthly"): Decimal("72000"),
        ("server", "yearly"): Decimal("780000"),
        ("p_unit", "monthly"): Decimal("13000"),
        ("p_unit", "yearly"): Decimal("140000"),
    },
    A100_80: {
        ("card", "hourly"): Decimal("22.00"),
        ("server", "monthly"): Decimal("98000"),
        ("server", "yearly"): Decimal("1050000"),
        ("p_unit", "monthly"): Decimal("14000"),
        ("p_unit", "yearly"): Decimal("150000"),
    },
    A800: {
        ("card", "hourly"): Decimal("13.50"),
        ("server", "monthly"): Decimal("82000"),
        ("server", "yearly"): Decimal("900000"),
        ("p_unit", "yearly"): Decimal("150000"),
    },
    H800: {
        ("card", "hourly"): Decimal("26.00"),
        ("server", "monthly"): Decimal("155000"),
        ("server", "yearly"): Decimal("1700000"),
        ("p_unit", "yearly"): Decimal("200000"),  # the white paper's light-asset supply cost
    },
    H20: {
        ("card", "hourly"): Decimal("8.00"),
        ("server", "monthly"): Decimal("45000"),
        ("server", "yearly"): Decimal("560000"),
        ("p_unit", "yearly"): Decimal("350000"),
    },
    L40S: {
        ("card", "hourly"): Decimal("6.80"),
        ("server", "monthly"): Decimal("38000"),
        ("server", "yearly"): Decimal("420000"),
        ("p_unit", "yearly"): Decimal("150000"),
    },
    RTX4090: {
        ("card", "hourly"): Decimal("3.60"),
        ("server", "monthly"): Decimal("19000"),
        ("server", "yearly"): Decimal("220000"),
        ("p_unit", "yearly"): Decimal("160000"),
        ("card", "monthly"): Decimal("2375"),  # a server-month over its 8 cards
        ("p_unit", "daily"): Decimal("438.36"),  # the P-year over 365 days
    },
    ASCEND: {
        ("card", "hourly"): Decimal("10.00"),
        ("card", "yearly"): Decimal("87500"),  # a server-year over its 8 cards
        ("p_unit", "monthly"): Decimal("11250"),  # the P-year over 12 months
        ("server", "monthly"): Decimal("62000"),
        ("server", "yearly"): Decimal("700000"),
        ("p_unit", "yearly"): Decimal("135000"),
    },
}

# Which (resource, term) each kind of provider sells to the platform.
SUPPLY_TERMS_BY_PROVIDER_TYPE = {
    "telecom_operator": (("p_unit", "yearly"), ("server", "monthly")),
    "idc": (("card", "hourly"), ("server", "monthly")),
    "cloud_vendor": (("card", "hourly"), ("server", "monthly")),
    "ai_company": (("card", "hourly"),),
    "ict_integrator": (("server", "monthly"), ("server", "yearly")),
    "ai_infra": (("card", "hourly"), ("p_unit", "yearly")),
    "cross_industry": (("server", "yearly"), ("p_unit", "yearly")),
}
# (model, resource, term) a provider sells beyond its type's terms: the A100 hosts also sell A100
# P-units, so a P-unit A100 line has a supply cost of its own; and each provider sells the terms the
# demo's contracts lease its hardware in, so every month's settlement statement can be confirmed.
SUPPLY_EXTRA_BY_PROVIDER = {
    "bj-idc": (
        (A100_40, "server", "hourly"),
        (L40S, "server", "yearly"),
        (A100_40, "p_unit", "monthly"),
        (A100_40, "p_unit", "yearly"),
        (A100_80, "p_unit", "monthly"),
        (A100_80, "p_unit", "yearly"),
    ),
    "yunqiong-cloud": ((A100_40, "p_unit", "yearly"), (A100_80, "p_unit", "yearly")),
    "guian-infra": ((H20, "server", "monthly"), (H20, "server", "yearly")),
    "huaxin-ict": ((A800, "p_unit", "yearly"), (ASCEND, "card", "yearly"), (ASCEND, "p_unit", "monthly")),
    "shapotou-energy": (
        (RTX4090, "card", "hourly"),
        (RTX4090, "card", "monthly"),
        (RTX4090, "p_unit", "daily"),
        (RTX4090, "server", "monthly"),
    ),
}
SUPPLY_VALID_FROM = datetime.date(2025, 1, 1)

# ---------------------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class City:
    region_code: str  # administrative division code, places 3–8 of the credit code
    district: str
    streets: tuple[str, ...]
    area_code: str


CITIES = {
    "beijing-haidian": City("110108", "北京市海淀区", ("中关村大街", "知春路", "上地十街", "学院路"), "010"),
    "beijing-chaoyang": City("110105", "北京市朝阳区", ("望京街", "酒仙桥路", "建国路"), "010"),
    "shanghai-pudong": City("310115", "上海市浦东新区", ("张江路", "碧波路", "世纪大道"), "021"),
    "shanghai-xuhui": City("310104", "上海市徐汇区", ("龙腾大道", "漕溪北路"), "021"),
    "shenzhen-nanshan": City(
        "440305", "广东省深圳市南山区", ("科技南十二路", "深南大道", "高新南一道"), "0755"
    ),
    "guangzhou-tianhe": City("440106", "广东省广州市天河区", ("天河北路", "珠江东路"), "020"),
    "hangzhou-xihu": City("330106", "浙江省杭州市西湖区", ("文三路", "西溪路", "紫金港路"), "0571"),
    "hangzhou-yuhang": City("330110", "浙江省杭州市余杭区", ("文一西路", "良睦路"), "0571"),
    "chengdu-wuhou": City("510107", "四川省成都市武侯区", ("天府大道", "科华北路"), "028"),
    "wuhan-hongshan": City("420111", "湖北省武汉市洪山区", ("光谷大道", "珞喻路"), "027"),
    "suzhou-gusu": City("320508", "江苏省苏州市姑苏区", ("金鸡湖大道", "星湖街"), "0512"),
    "hefei-shushan": City("340104", "安徽省合肥市蜀山区", ("望江西路", "黄山路"), "0551"),
    "qingdao-laoshan": City("370212", "山东省青岛市崂山区", ("海尔路", "株洲路"), "0532"),
}

BANKS = ("中国工商银行", "中国建设银行", "招商银行", "中国银行", "交通银行", "浦发银行")


@dataclass(frozen=True)
class CustomerSpec:
    code: str
    name: str
    city: str
    invoice_type: str = "vat_special"
    payment_terms_days: int = 30
    auto_issue: bool = False


CUSTOMERS = [
    CustomerSpec(
        "acme", "艾可米智能科技(北京)有限公司", "beijing-haidian", payment_terms_days=15, auto_issue=True
    ),
    CustomerSpec("moyan", "墨言大模型科技有限公司", "beijing-haidian"),
    CustomerSpec("qiming", "启明星图人工智能有限公司", "shanghai-xuhui", payment_terms_days=45),
    CustomerSpec("yunjing", "云鲸数智科技有限公司", "hangzhou-yuhang"),
    CustomerSpec("lingxi", "灵犀语义科技(深圳)有限公司", "shenzhen-nanshan", auto_issue=True),
    CustomerSpec("tianyan", "天衍生物计算有限公司", "suzhou-gusu", payment_terms_days=60),
    CustomerSpec("jiuzhou", "九州自动驾驶技术有限公司", "wuhan-hongshan"),
    CustomerSpec("fengchi", "风驰机器人科技有限公司", "shenzhen-nanshan"),
    CustomerSpec("baize", "白泽多模态科技有限公司", "hangzhou-xihu"),
    CustomerSpec("xuanji", "璇玑量化投资管理有限公司", "shanghai-pudong", payment_terms_days=15),
    CustomerSpec("haina", "海纳医疗影像科技有限公司", "chengdu-wuhou"),
    CustomerSpec("zhiyuan", "知远教育科技有限公司", "beijing-chaoyang", invoice_type="vat_general"),
    CustomerSpec("qingluan", "青鸾视觉科技有限公司", "chengdu-wuhou"),
    CustomerSpec("chuyun", "楚云智造科技有限公司", "wuhan-hongshan", auto_issue=True),
    CustomerSpec("mingjing", "明镜安全科技有限公司", "beijing-haidian"),
    CustomerSpec("xingyao", "星耀互娱网络科技有限公司", "shanghai-pudong", invoice_type="vat_general"),
    CustomerSpec("shanhai", "山海经纬遥感科技有限公司", "beijing-haidian", payment_terms_days=45),
    CustomerSpec("zhuque", "朱雀芯算科技有限公司", "shenzhen-nanshan"),
    CustomerSpec("yufeng", "禹风气象科技有限公司", "hangzhou-xihu"),
    CustomerSpec("wenlan", "文澜法律智能科技有限公司", "beijing-chaoyang", invoice_type="vat_general"),
    CustomerSpec("jinghong", "惊鸿数字人科技有限公司", "hangzhou-xihu"),
    CustomerSpec("tuoyu", "拓宇电商智能有限公司", "guangzhou-tianhe", auto_issue=True),
    CustomerSpec("yanshu", "研数材料科学计算有限公司", "suzhou-gusu", payment_terms_days=60),
    CustomerSpec("hongtu", "鸿途物流智能科技有限公司", "chengdu-wuhou"),
    CustomerSpec("yunshan", "云杉语音科技有限公司", "hefei-shushan"),
    CustomerSpec("shenlan", "深蓝海洋智能科技有限公司", "qingdao-laoshan", invoice_type="vat_general"),
    CustomerSpec("beichen", "北辰金融科技有限公司", "beijing-chaoyang", payment_terms_days=15),
    CustomerSpec("linglong", "玲珑芯片设计有限公司", "shanghai-pudong"),
    CustomerSpec("guanlan", "观澜影视特效有限公司", "beijing-chaoyang", invoice_type="vat_general"),
    CustomerSpec("qizhi", "启智药物研发有限公司", "shanghai-pudong", payment_terms_days=45),
]
ACCOUNT_MANAGERS = ("am1", "am2")  # customers alternate between them, in list order
