"""A real headless browser for page tests: Debian's chromium driven by Selenium through Debian's chromedriver.

`make setup` installs both (apt-get, once); Selenium is pointed at them, so its own driver manager (which would
download a browser) never runs. The flags are the ones that work on this kind of machine, as root, with no network
but loopback: no sandbox (root), no /dev/shm (small in containers), no GPU, and none of Chromium's background
connections (refused here, many at a time).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1200",
)


class NoBrowser(RuntimeError):
    pass


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile directory; quits on exit."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        raise NoBrowser(
            f"no browser for the page tests ({', '.join(missing)} missing): `make setup` installs Debian's "
            "chromium and chromium-driver (apt-get install -y chromium chromium-driver, as root)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rgb(css_colour: str) -> tuple[int, int, int]:
    """'rgba(198, 40, 40, 1)' or 'rgb(198, 40, 40)' as (198, 40, 40)."""
    red, green, blue = (int(n) for n in re.findall(r"\d+", css_colour)[:3])
    return red, green, blue
