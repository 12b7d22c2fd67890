"""Load-test pieces that need no sockets: payloads, content checks, pacing, ledger counts, verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # ``loadtest`` is not installed

from loadtest.shape import Schedule, Step  # noqa: E402
from loadtest.workload import (  # noqa: E402
    LoadConfig,
    OrderLog,
    OrderSource,
    Pacer,
    check_atp,
    check_order,
    check_submit,
    check_token,
    read_order_ids,
    read_pacing,
    transport_error,
    write_pacing,
)
from sim.loadrun import (  # noqa: E402
    LoadOptions,
    LoadResult,
    OrderCounts,
    RequestStats,
    count_orders,
    format_summary,
    judge,
    read_locust_stats,
)
from sim.scenario import Scenario  # noqa: E402


def test_config_from_env() -> None:
    c = LoadConfig.from_env(
        {
            "TWIN_LOAD_DURATION": "2m",
            "TWIN_PEAK_RPS": "12.5",
            "TWIN_LOAD_USERS": "40",
            "TWIN_ERP_URL": "http://127.0.0.1:8702",
            "TWIN_SCENARIO_SET": "seed=7\ndemand.orders=100",
        }
    )
    assert c.duration_s == 120 and c.peak_rps == 12.5 and c.users == 40
    assert c.overrides == ("seed=7", "demand.orders=100")
    assert LoadConfig.from_env({}).duration_s == 30 and LoadConfig.from_env({}).erp_url is None
    with pytest.raises(ValueError, match="TWIN_PEAK_RPS"):
        LoadConfig.from_env({"TWIN_PEAK_RPS": "fast"})


def test_payloads_use_the_scenarios_master_data_and_prices() -> None:
    scenario = Scenario(name="payloads")
    src = OrderSource(scenario, "test")
    md = src.md
    for i in range(20):
        p = src.payload(f"LT-{i}")
        customer = md.by_account_id[p["AccountId"]]  # a real CRM account of the twin
        assert p["PoNumber"] == f"LT-{i}" and p["OrderItems"]
        for item in p["OrderItems"]:
            sku = md.by_sku[item["ProductCode"]]
            assert item["UnitOfMeasure__c"] == sku.sales_uom
            assert item["Quantity"] >= 1
            want = md.price_per_uom(customer.customer_no, sku.sku, sku.sales_uom)
            assert item["UnitPrice"] == pytest.approx(want, abs=0.011)  # ERP rejects > 1 % off
    # each worker draws its own sequence, reproducibly
    first = [OrderSource(scenario, "w1").payload("x") for _ in range(2)]
    assert first[0] == first[1]
    assert OrderSource(scenario, "w2").payload("x") != first[0]


def test_content_checks_mark_wrong_answers() -> None:
    assert check_submit(201, json.dumps({"id": "801x", "success": True})) is None
    assert "HTTP 500" in (check_submit(500, "{}") or "")
    assert "without an id" in (check_submit(201, json.dumps({"success": True})) or "")
    assert "success" in (check_submit(201, json.dumps({"id": "1", "success": False})) or "")
    assert "not JSON" in (check_submit(201, "<html>") or "")
    assert check_order(200, json.dumps({"Id": "801a", "Status": "Booked"}), "801a") is None
    assert "asked for 801a" in (check_order(200, json.dumps({"Id": "801b", "Status": "Booked"}), "801a") or "")
    assert "Status" in (check_order(200, json.dumps({"Id": "801a", "Status": "Teleported"}), "801a") or "")
    atp = {"Plant": "WH01", "Items": [{"ItemNo": "SKU-1", "Available": 3}, {"ItemNo": "SKU-2", "Available": 0}]}
    assert check_atp(200, json.dumps(atp), ["SKU-1", "SKU-2"]) is None
    assert "SKU-3" in (check_atp(200, json.dumps(atp), ["SKU-1", "SKU-3"]) or "")
    assert check_token(200, json.dumps({"access_token": "t"})) is None
    assert check_token(401, "{}") is not None
    assert transport_error(0, ConnectionRefusedError("refused")) == "no response: ConnectionRefusedError: refused"
    assert transport_error(201, None) is None


def _run_pacer(p: Pacer, costs: list[float]) -> list[float]:
    """Drive a pacer like Locust would: wait, run an iteration costing ``cost``; return start times."""
    now = 0.0
    starts = []
    now += p.wait(now)
    for cost in costs:
        starts.append(now)
        now += cost
        now += p.wait(now)
    return starts


def test_pacer_starts_iterations_on_schedule_whatever_they_cost() -> None:
    sch = Schedule(steps=(Step(0, 100, 2.0),), budget_s=2.0)  # 4 users, one start each 2 s
    p = Pacer(sch, t0=0.0, phase=0.25)
    starts = _run_pacer(p, [0.1, 1.9, 0.5, 0.0, 1.2])
    assert starts == pytest.approx([0.5, 2.5, 4.5, 6.5, 8.5])
    assert p.stats() == {"late": 0, "missed": 0}


def test_pacer_counts_late_starts_and_missed_slots() -> None:
    sch = Schedule(steps=(Step(0, 100, 2.0),), budget_s=2.0)
    p = Pacer(sch, t0=0.0, phase=0.0)
    starts = _run_pacer(p, [2.5, 0.1, 7.0, 0.1])
    # 2.5 s iteration: slot 2 starts late at 2.5. 7 s iteration from slot 4 ends at 11: slots 6 and 8
    # are missed (counted, not queued) and slot 10 starts late at once, with no catch-up burst.
    assert starts == pytest.approx([0.0, 2.5, 4.0, 11.0])
    assert p.stats() == {"late": 2, "missed": 2}


def test_pacer_idles_through_a_quiet_step() -> None:
    sch = Schedule(steps=(Step(0, 5, 0.0), Step(5, 5, 1.0)), budget_s=2.0)
    p = Pacer(sch, t0=0.0, phase=0.5)
    assert p.wait(1.0) == pytest.approx(4.0)  # sleeps to the start of the next step
    assert p.wait(5.0) == pytest.approx(1.0)  # then half an interval of phase (2 s interval)


def test_order_log_and_pacing_files(tmp_path: Path) -> None:
    log = OrderLog(str(tmp_path), "w1")
    log.record("801a", "LT-1", 1.0)
    log.record("801b", "LT-2", 2.0)
    log.close()
    OrderLog(str(tmp_path), "w2").record("801c", "LT-3", 3.0)
    assert sorted(read_order_ids(tmp_path)) == ["801a", "801b", "801c"]
    write_pacing(str(tmp_path), "w1", {"late": 2, "missed": 1})
    write_pacing(str(tmp_path), "w2", {"late": 1, "missed": 0})
    assert read_pacing(tmp_path) == {"late": 3, "missed": 1}
    OrderLog(None, "w3").record("ignored", "x", 0.0)  # no out dir: nothing written, no error


def _e(system: str, kind: str, ref: str, key: str | None = None) -> dict[str, object]:
    return {"system": system, "kind": kind, "ref": ref, "entity": ref, "data": {"key": key} if key else {}}


def test_count_orders_joins_this_runs_orders_across_ledgers() -> None:
    ledgers = {
        "crm": [
            _e("crm", "order.submitted", "801a", "LTX-1"),
            _e("crm", "order.submitted", "801b", "LTX-2"),
            _e("crm", "order.submitted", "801c", "LTX-3"),
            _e("crm", "order.submitted", "801z", "D0000001"),  # the twin's own demand: not ours
        ],
        "erp": [
            _e("erp", "sales_order.created", "801a"),
            _e("erp", "sales_order.created", "801b"),
            _e("erp", "sales_order.created", "801b"),  # created twice
            _e("erp", "sales_order.created", "801z"),
        ],
        "wms": [_e("wms", "fulfilment.created", "801a")],
    }
    c = count_orders(ledgers, "LTX", ["801a", "801b", "801q"])
    assert (c.submitted, c.in_erp, c.duplicated, c.lost_or_stuck) == (3, 2, 1, 1)
    assert c.acknowledged == 3 and c.unacknowledged == 1 and c.missing_in_crm == 1


def _stats(requests: int, failures: int, p50: float) -> RequestStats:
    return RequestStats("Aggregated", "", requests, failures, p50, p50 * 2, p50 * 3, requests / 10)


def test_judge_names_every_breached_limit() -> None:
    scenario = Scenario.model_validate({"name": "slo", "slo": {"failure_ratio": 0.01, "duplicates": 0}})
    opts = LoadOptions(scenario=Path("x.yaml"), max_p50_s=0.0001)
    counts = OrderCounts(
        submitted=10, acknowledged=10, in_erp=10, duplicated=1, lost_or_stuck=0, unacknowledged=0, missing_in_crm=0
    )
    submits = RequestStats("crm:submit_order", "POST", 5, 0, 0.01, 0.01, 0.01, 0.5)
    v = judge(scenario, opts, _stats(100, 5, 0.002), submits, counts, offered=10)
    text = "\n".join(v.breaches)
    assert "slo.failure_ratio" in text and "request latency p50" in text and "slo.duplicates" in text
    assert not v.ok
    assert any("offered rate not achieved" in w for w in v.warnings)  # 5 of 10 offered
    fine = judge(Scenario(name="ok"), LoadOptions(scenario=Path("x")), _stats(100, 0, 0.002), submits, counts, 5)
    assert fine.ok and not fine.warnings
    nothing = judge(Scenario(name="ok"), LoadOptions(scenario=Path("x")), None, None, None, 5)
    assert not nothing.ok and "no requests" in nothing.breaches[0]


def test_read_locust_stats_and_summary(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    rows = [
        "POST,crm:submit_order,12,1,3,4,1,20,50,2.0,0.1,3,4,5,6,8,12,20,20,20,20,20",
        ",Aggregated,30,1,2,3,1,20,40,5.0,0.1,2,3,4,5,7,10,20,20,20,20,20",
    ]
    p = tmp_path / "locust_stats.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    reqs, total = read_locust_stats(p)
    assert [r.name for r in reqs] == ["crm:submit_order"]
    assert reqs[0].requests == 12 and reqs[0].failures == 1 and reqs[0].p95_s == pytest.approx(0.012)
    assert total is not None and total.requests == 30 and total.p50_s == pytest.approx(0.002)
    counts = OrderCounts(12, 11, 11, 0, 1, 1, 0)
    from sim.loadrun import Verdict

    r = LoadResult(
        tmp_path, 1, Verdict(["slo.lost: 1 orders > limit 0"], []), reqs, total, counts, 12.0, {"late": 0, "missed": 0}
    )
    text = format_summary(r)
    assert "crm:submit_order" in text and "in ERP 11" in text and "SLO breached: slo.lost" in text


def test_reconciled_outcomes_judge_fallout_but_not_stuck_orders() -> None:
    from sim.loadrun import reconcile_orders

    def crm(i: str) -> dict[str, object]:
        data = {"po_number": f"LTA-{i}", "customer_no": "C000001", "lines": [["SKU-00001", 2]], "requested_t": 3e5}
        return {"seq": 1, "t": 0.0, "system": "crm", "kind": "order.submitted", "entity": i, "ref": i, "data": data}

    def so(i: str, t: float) -> dict[str, object]:
        data = {"lines": [["SKU-00001", 2, 10.0]], "order_no": f"SO-{i}"}
        return {
            "seq": 1,
            "t": t,
            "system": "erp",
            "kind": "sales_order.created",
            "entity": f"SO-{i}",
            "ref": i,
            "data": data,
        }

    ledgers = {"crm": [crm("a"), crm("b"), crm("c")], "erp": [so("a", 3600.0), so("b", 7200.0), so("b", 7300.0)]}
    ids = ["a", "b", "c"]
    counts = count_orders(ledgers, "LTA", ids)
    exceptions = [{"crm_id": "c", "category": "technical", "reason": "invalid_token"}]
    reconcile_orders(ledgers, counts, "LTA", ids, compression=3600.0, exceptions=exceptions)
    assert counts.outcomes["stuck"] == 1 and counts.outcomes["duplicate"] == 1
    assert counts.outcomes["dead_lettered_technical"] == 1 and counts.outcomes["lost"] == 0
    # submit -> ERP in wall seconds: 3600 and 7200 simulated seconds at 3600 per wall second
    assert counts.kpis["latency_s"]["erp_accepted"]["max"] == pytest.approx(2.0)
    slo = {"stuck": 0, "dlq": 0, "duplicates": 0, "lost": 0, "latency": {"erp_accepted": {"p50": 1.2}}}
    scenario = Scenario.model_validate({"name": "slo", "slo": slo})
    v = judge(scenario, LoadOptions(scenario=Path("x")), _stats(10, 0, 0.01), None, counts, 0)
    text = "\n".join(v.breaches)
    assert "slo.duplicates" in text and "slo.dlq" in text and "slo.latency_s.erp_accepted.p50" in text
    assert "stuck" not in text and "slo.lost" not in text
