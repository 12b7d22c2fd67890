"""Master data: formats, shares, determinism, contract prices (scalar == vectorised), export, speed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.masterdata import (
    ContractPrices,
    MasterData,
    generate,
    salesforce_id,
    to_frames,
    write,
)
from sim.rng import Streams
from sim.scenario import MasterDataSizes

SIZES = MasterDataSizes(customers=300, skus=400, suppliers=12, warehouses=2, sales_reps=10)


@pytest.fixture(scope="module")
def md() -> MasterData:
    return generate(SIZES, Streams(42))


def test_counts_and_ids(md: MasterData) -> None:
    assert len(md.customers) == 300 and len(md.skus) == 400
    assert len(md.suppliers) == 12 and len(md.warehouses) == 2 and len(md.sales_reps) == 10
    assert md.customers[0].customer_no == "C000001" and md.customers[122].customer_no == "C000123"
    assert md.skus[0].sku == "SKU-00001" and md.skus[-1].sku == "SKU-00400"
    assert [w.code for w in md.warehouses] == ["WH01", "WH02"]
    assert md.suppliers[0].supplier_id == "SUP-0001"
    ids = [c.crm_account_id for c in md.customers]
    assert len(set(ids)) == len(ids)
    for i in ids:
        assert re.fullmatch(r"001[0-9A-Za-z]{15}", i), i
    assert set(md.by_customer_no) == {c.customer_no for c in md.customers}
    assert md.by_account_id[ids[5]] is md.customers[5]


def test_salesforce_id_checksum() -> None:
    # Checksum per 5-char chunk: bit i set when char i is upper case -> "ABC...Z012345".
    sid = salesforce_id("801", 12345, "5g")
    assert len(sid) == 18 and sid.startswith("8015g0")
    assert sid == "8015g00000003D7AAI"  # chunks '8015g', '00000' have no capitals; '003D7' has bit 3 -> 'I'
    assert salesforce_id("001", 1, "Dn") == "001Dn0000000001IAA"


def test_customers_fields(md: MasterData) -> None:
    cs = md.customers
    assert all(1 <= len(c.ship_to) <= 3 for c in cs)
    assert {len(c.ship_to) for c in cs} == {1, 2, 3}
    assert all(c.ship_to[0] == c.sold_to for c in cs)
    assert {c.terms for c in cs} == {"NET30", "NET45", "NET60"}
    assert {c.tier for c in cs} == {"A", "B", "C"}
    assert all(c.credit_limit >= 1000 for c in cs)
    a = np.median([c.credit_limit for c in cs if c.tier == "A"])
    c_ = np.median([c.credit_limit for c in cs if c.tier == "C"])
    assert a > 3 * c_
    assert sum(c.credit_hold for c in cs) == round(SIZES.credit_hold_share * 300)
    assert all(c.open_balance >= c.credit_limit for c in cs if c.credit_hold)
    assert len({c.territory for c in cs}) >= 3
    reps = {r.rep_id: r for r in md.sales_reps}
    assert all(c.sales_rep in reps for c in cs)
    for c in cs:
        for a_ in (c.sold_to, c.bill_to, *c.ship_to):
            assert a_.name and a_.line1 and a_.city and re.fullmatch(r"[A-Z]{2}", a_.region)
            assert re.fullmatch(r"\d{5}", a_.postal_code) and a_.country == "US"


def test_skus_fields(md: MasterData) -> None:
    sk = md.skus
    assert {s.case_pack for s in sk} <= {6, 12, 24, 48}
    assert {s.sales_uom for s in sk} == {"EA", "CS"}
    assert all(s.list_price >= 0.5 and round(s.list_price, 2) == s.list_price for s in sk)
    assert all(s.weight_kg > 0 and s.description for s in sk)
    assert {s.supplier_id for s in sk} <= {x.supplier_id for x in md.suppliers}
    pop = np.array([s.popularity for s in sk])
    assert abs(pop.sum() - 1) < 1e-9 and (pop > 0).all()
    top = np.sort(pop)[::-1]
    assert top[: len(top) // 5].sum() > 0.6  # Zipf-like: the top fifth carries most of the volume


def test_contract_prices_share_and_discounts(md: MasterData) -> None:
    cp = md.contract_prices
    assert isinstance(cp, ContractPrices)
    n_pairs = 300 * 400
    share = len(cp) / n_pairs
    sd = np.sqrt(0.3 * 0.7 / n_pairs)
    assert abs(share - SIZES.contract_price_share) < 4 * sd
    for (cust, sku), price in list(cp.items())[:2000]:
        lp = md.by_sku[sku].list_price
        assert 0.85 * lp - 0.006 <= price <= 0.97 * lp + 0.006
        assert md.price(cust, sku) == price
        assert (cust, sku) in cp


def test_price_falls_back_to_list(md: MasterData) -> None:
    cp = md.contract_prices
    cust = md.customers[0].customer_no
    no_contract = [s for s in md.skus if (cust, s.sku) not in cp]
    assert no_contract
    s = no_contract[0]
    assert md.price(cust, s.sku) == s.list_price
    assert cp.get((cust, s.sku)) is None
    assert cp.get(("C999999", s.sku)) is None and ("nonsense",) not in cp
    cs_sku = next(x for x in md.skus if x.sales_uom == "CS")
    assert md.price_per_uom(cust, cs_sku.sku, "CS") == round(md.price(cust, cs_sku.sku) * cs_sku.case_pack, 2)


def test_scalar_and_vectorised_contract_lookup_agree(md: MasterData) -> None:
    cp = md.contract_prices
    assert isinstance(cp, ContractPrices)
    ci = np.repeat(np.arange(40), 400)
    si = np.tile(np.arange(400), 40)
    has, cents = cp.lookup(ci, si)
    for c, s, h, p in zip(ci, si, has, cents, strict=True):
        key = (md.customers[c].customer_no, md.skus[s].sku)
        assert (key in cp) == bool(h)
        if h:
            assert cp[key] == p / 100


def test_share_extremes() -> None:
    none = generate(MasterDataSizes(customers=5, skus=5, contract_price_share=0), Streams(1))
    assert len(none.contract_prices) == 0
    full = generate(MasterDataSizes(customers=5, skus=5, contract_price_share=1), Streams(1))
    assert len(full.contract_prices) == 25


def test_same_seed_identical_different_seed_differs() -> None:
    small = MasterDataSizes(customers=50, skus=60)
    a, b, c = (to_frames(generate(small, Streams(s))) for s in (9, 9, 10))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["customers"].equals(c["customers"])
    assert not a["skus"].equals(c["skus"])


def test_generate_twice_from_one_streams_is_identical() -> None:
    st = Streams(4)
    small = MasterDataSizes(customers=20, skus=30)
    a, b = to_frames(generate(small, st)), to_frames(generate(small, st))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_faker_not_global() -> None:
    from faker import Faker

    Faker.seed(123)
    x = generate(MasterDataSizes(customers=5, skus=5), Streams(1)).customers[0].name
    Faker.seed(456)
    y = generate(MasterDataSizes(customers=5, skus=5), Streams(1)).customers[0].name
    assert x == y


def test_plain_dict_contract_prices_still_work() -> None:
    base = generate(MasterDataSizes(customers=2, skus=2, contract_price_share=0), Streams(1))
    c, s = base.customers[0].customer_no, base.skus[0].sku
    md = MasterData(base.customers, base.skus, {(c, s): 1.23}, base.suppliers, base.warehouses)
    assert md.price(c, s) == 1.23
    assert md.price(c, base.skus[1].sku) == base.skus[1].list_price
    assert len(to_frames(md)["contract_prices"]) == 1


def test_frames_and_write(md: MasterData, tmp_path: Path) -> None:
    frames = to_frames(md)
    assert set(frames) == {"customers", "ship_tos", "skus", "contract_prices", "suppliers", "warehouses", "sales_reps"}
    assert len(frames["customers"]) == 300
    assert len(frames["ship_tos"]) == sum(len(c.ship_to) for c in md.customers)
    assert len(frames["contract_prices"]) == len(md.contract_prices)
    assert {"sold_to_city", "bill_to_postal_code", "crm_account_id"} <= set(frames["customers"].columns)
    for fmt in ("csv", "parquet"):
        paths = write(md, tmp_path / fmt, fmt)  # type: ignore[arg-type]
        assert len(paths) == 7
        back = pd.read_csv(paths[2]) if fmt == "csv" else pd.read_parquet(paths[2])
        assert list(back["sku"]) == [s.sku for s in md.skus]
    with pytest.raises(ValueError):
        write(md, tmp_path, "xlsx")  # type: ignore[arg-type]


def test_large_catalogue_is_fast() -> None:
    t0 = time.perf_counter()
    md = generate(MasterDataSizes(customers=10_000, skus=5_000), Streams(1))
    elapsed = time.perf_counter() - t0
    assert len(md.customers) == 10_000 and len(md.skus) == 5_000
    assert elapsed < 4.0, f"{elapsed:.2f} s"
    # lookups stay cheap on 15 million implicit contract prices
    assert md.price("C010000", "SKU-05000") > 0
