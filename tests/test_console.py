"""The live view in a real headless browser: the page loads, its numbers follow the orders flowing through the local
system (and agree with the order table), and the queue-depth alarm turns red when it fires.

One LocalSystem (the normal stack with the flash-sale alarm profile, 0.5 s payments, 25 % declines so that failures
show, an acceptable latency of 5 s, queue metrics fed every 0.2 s) and one Chromium for the module. Set
LIVE_VIEW_SCREENSHOT=PATH to also save the screenshot taken while the expected-wait warning is red
(docs/live-view.png comes from it).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from app import alarm_catalogue, aws, contract
from bench.browser import chromium, rgb
from bench.localaws.emulators import Emulator
from bench.localaws.system import LocalArgs, LocalSystem
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_PROFILES
from tests.helpers import ORDER, wait_for

pytestmark = pytest.mark.slow

ALARM_RED = (198, 40, 40)  # console.css --alarm


@pytest.fixture(scope="module")
def local_system(
    tmp_path_factory: pytest.TempPathFactory, emulators: tuple[Emulator, Emulator]
) -> Iterator[LocalSystem]:
    args = LocalArgs(
        config={
            "paymentSeconds": 0.5,
            "paymentDeclineRate": 0.25,
            "alarmProfile": "flashsale",
            "acceptableLatencySeconds": 5,
        },
        env_overrides={contract.ENV_DRAIN_SECONDS: "0.05"},  # a task stops quickly when scaled in
        directory=tmp_path_factory.mktemp("console"),
        feed_seconds=0.2,
    )
    with pytest.MonkeyPatch.context() as monkeypatch, LocalSystem(args, emulators=emulators) as system:
        for key, value in system.env().items():
            monkeypatch.setenv(key, value)
        yield system


@pytest.fixture(scope="module")
def page(local_system: LocalSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    assert local_system.console is not None
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        driver.get(local_system.console.url)
        yield driver


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def count(driver: webdriver.Chrome, element_id: str) -> float:
    """A number as the page shows it ('1,234' or '12.5'); NaN while it shows none ('–')."""
    shown = text(driver, element_id).replace(",", "")
    try:
        return float(shown)
    except ValueError:
        return float("nan")


def live(driver: webdriver.Chrome) -> bool:
    return text(driver, "feed").startswith("live")


# The page rebuilds its tables every second: read a table's rows in one script, not element by element (stale).
ROWS = """return [...document.querySelectorAll(`#${arguments[0]} tr`)].map((tr) => ({
  cells: [...tr.cells].map((td) => td.textContent), classes: tr.className,
  background: getComputedStyle(tr).backgroundColor}));"""


def rows(driver: webdriver.Chrome, body_id: str) -> list[dict[str, Any]]:
    """Each row of a table as shown: its cells' text, its classes and its computed background colour."""
    return list(driver.execute_script(ROWS, body_id))


def table(driver: webdriver.Chrome, body_id: str) -> list[list[str]]:
    return [row["cells"] for row in rows(driver, body_id)]


def post_orders(url: str, total: int, per_second: float) -> list[str]:
    """Send `total` orders at about `per_second`; the ids of those accepted (202)."""
    accepted = []
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(total):
            response = client.post(contract.ASYNC_ORDERS_PATH, json=ORDER)
            if response.status_code == 202:
                accepted.append(response.json()["order_id"])
            time.sleep(max(0.0, started + (n + 1) / per_second - time.monotonic()))
    return accepted


def set_workers(system: LocalSystem, tasks: int) -> None:
    aws.client("ecs").update_service(
        cluster=system.outputs[output_names.CLUSTER_NAME],
        service=system.outputs[output_names.WORKER_SERVICE_NAME],
        desiredCount=tasks,
    )


def test_the_page_loads_and_shows_the_system(page: webdriver.Chrome, local_system: LocalSystem) -> None:
    wait_for(lambda: live(page), 15, "the page's first update")
    assert text(page, "stack") == "stack normal"
    services = {row[0]: row[1:] for row in table(page, "services")}
    assert services == {"receiver": ["1", "1", "1"], "worker": ["1", "1", "1"], "sync": ["2", "2", "2"]}
    alarms = table(page, "alarms")
    profile = ALARM_PROFILES["flashsale"]
    assert len(alarms) == sum(getattr(profile, spec.key) is not None for spec in alarm_catalogue.ALARMS)
    assert count(page, "queue-visible") == 0


def test_the_numbers_follow_the_orders_and_agree_with_the_order_table(
    page: webdriver.Chrome, local_system: LocalSystem
) -> None:
    wait_for(lambda: live(page), 15, "the page's first update")
    before = {name: count(page, f"total-{name}") for name in ("accepted", "paid", "failed")}
    url = local_system.outputs[output_names.ASYNC_URL]
    sent: list[str] = []
    sender = threading.Thread(target=lambda: sent.extend(post_orders(url, 120, 30)))
    sender.start()
    seen: dict[str, float] = {"rate-accepted": 0, "rate-paid": 0, "rate-failed": 0, "payments": 0}

    def shown() -> bool:  # a quarter of the payments are declined: failures show too
        return seen["rate-accepted"] > 10 and seen["rate-paid"] > 5 and seen["payments"] > 0 and seen["rate-failed"] > 0

    # The page shows the stream when its next update comes, which on a loaded machine can be after the last order
    # was sent (the view averages its rates over console.RATE_WINDOW_SECONDS): watch until it does, not only while
    # sending.
    deadline = time.monotonic() + 30
    while not shown() and time.monotonic() < deadline:
        for element_id in seen:
            value = count(page, element_id)
            if value == value:  # not NaN
                seen[element_id] = max(seen[element_id], value)
        time.sleep(0.2)
    sender.join()
    assert len(sent) == 120
    assert shown(), seen

    table_name = local_system.outputs[output_names.ORDERS_TABLE]

    def final() -> dict[str, int] | None:
        items = aws.client("dynamodb").scan(TableName=table_name)["Items"]
        statuses = [item["status"]["S"] for item in items if item[contract.ORDER_KEY]["S"] in set(sent)]
        done = {status: statuses.count(status) for status in ("completed", "failed")}
        return done if sum(done.values()) == len(sent) else None

    done = wait_for(final, 30, "every order paid or declined in the order table")

    def agrees() -> bool:
        return (
            count(page, "total-accepted") - before["accepted"] == len(sent)
            and count(page, "total-paid") - before["paid"] == done["completed"]
            and count(page, "total-failed") - before["failed"] == done["failed"]
        )

    wait_for(agrees, 10, "the page's totals to equal the order table's")


def test_the_expected_wait_alarm_turns_red_when_it_fires(page: webdriver.Chrome, local_system: LocalSystem) -> None:
    warning = alarm_catalogue.alarm_name(str(local_system.outputs[output_names.ALARM_PREFIX]), "expected_wait_warning")

    def warning_row() -> dict[str, Any]:
        return next(row for row in rows(page, "alarms") if row["cells"][0] == warning)

    def workers_running() -> str:
        return {row[0]: row[2] for row in table(page, "services")}["worker"]

    wait_for(lambda: live(page), 15, "the page's first update")
    assert rgb(warning_row()["background"]) != ALARM_RED
    set_workers(local_system, 0)
    try:
        wait_for(lambda: workers_running() == "0", 40, "the page to show no running worker task")
        assert text(page, "wait") == "∞" and text(page, "wait-detail") == "no worker task running"
        set_workers(local_system, 1)
        wait_for(lambda: workers_running() == "1", 40, "the page to show the worker task again")
        # One task of 20 workers pays 40 orders/s at 0.5 s: a burst of 600 waits ~15 s at first, over the 5 s target.
        with (
            httpx.Client(base_url=local_system.outputs[output_names.ASYNC_URL], timeout=10) as client,
            ThreadPoolExecutor(8) as pool,
        ):
            answers = list(
                pool.map(lambda _: client.post(contract.ASYNC_ORDERS_PATH, json=ORDER).status_code, range(600))
            )
        assert answers.count(202) >= 500
        wait_for(lambda: warning_row()["cells"][1] == "ALARM", 30, "the expected-wait warning to fire on the page")
        assert rgb(warning_row()["background"]) == ALARM_RED
        wait_for(lambda: warning in text(page, "notifications"), 30, "its notification on the page")
        if screenshot := os.environ.get("LIVE_VIEW_SCREENSHOT"):
            page.save_screenshot(screenshot)
    finally:
        set_workers(local_system, 1)
        aws.client("sqs").purge_queue(QueueUrl=local_system.outputs[output_names.QUEUE_URL])
