"""The docs site checked in a real browser: build it (``mkdocs build --strict``), serve it on
localhost, open every page in headless Chromium, and fail on a missing image, a link to a page or
anchor that does not exist, a JavaScript error, or an empty search for "SyN". Saves a screenshot of
the home page and of the tutorial, and a report, into ``benchmarks/results/docs_site/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``selenium`` (the ``docs`` extra). Not a test: it needs a browser CI does not have.

    python benchmarks/site_in_browser.py
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "docs_site"
#: what the search box must find
SEARCH = "SyN"


def build(site: Path) -> None:
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT, check=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The site on a free localhost port, in a thread."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser(chromium: str, driver: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def pages(site: Path, base: str) -> list[str]:
    """Every page of the built site, as URLs."""
    found = sorted(site.rglob("*.html"))
    return [urljoin(base, path.relative_to(site).as_posix()) for path in found if path.name != "404.html"]


def check_page(driver, url: str, base: str, ids: dict[str, set[str]]) -> list[str]:
    """Problems of one open page: JavaScript errors, images that did not load, links to a page or an
    anchor of this site that does not exist."""
    driver.get(url)
    time.sleep(0.2)
    problems = [
        f"JavaScript: {entry['message']}" for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"
    ]
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    problems += [f"image not shown: {source}" for source in broken]
    for href in driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
        target, anchor = urldefrag(href)
        if not target.startswith(base) or urlparse(target).path.endswith((".png", ".json", ".md", ".csv", ".svg")):
            continue
        page = target if target.endswith(".html") else target.rstrip("/") + "/index.html"
        if page not in ids:
            ids[page] = _ids(driver, page)
        if ids[page] is None:
            problems.append(f"link to a missing page: {href}")
        elif anchor and anchor not in ids[page]:
            problems.append(f"link to a missing anchor: {href}")
    return problems


def _ids(driver, page: str) -> set[str] | None:
    """The element ids of ``page`` (None when it does not load), read in a second tab."""
    main = driver.current_window_handle
    driver.switch_to.new_window("tab")
    try:
        driver.get(page)
        if "404" in driver.title and "Not found" in driver.page_source:
            return None
        return set(driver.execute_script("return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    finally:
        driver.close()
        driver.switch_to.window(main)


def search_results(driver, base: str) -> int:
    """How many results the site's search box lists for :data:`SEARCH`."""
    from selenium.webdriver.common.by import By

    driver.get(base)
    driver.find_element(By.CSS_SELECTOR, "label.md-search__icon, .md-search__input").click()
    box = driver.find_element(By.CSS_SELECTOR, ".md-search__input")
    box.send_keys(SEARCH)
    for _ in range(50):  # the index loads in a worker
        found = driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
        if found:
            return len(found)
        time.sleep(0.2)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--driver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        site = Path(temporary) / "site"
        build(site)
        server, base = serve(site)
        driver = browser(args.chromium, args.driver)
        try:
            ids: dict[str, set[str] | None] = {}
            report = {url[len(base) :] or "index.html": check_page(driver, url, base, ids) for url in pages(site, base)}
            results = search_results(driver, base)
            for name, path in (("home", ""), ("tutorial", "tutorial/")):
                driver.get(base + path)
                time.sleep(0.3)
                driver.save_screenshot(str(OUT / f"{name}.png"))
        finally:
            driver.quit()
            server.shutdown()
    problems = {page: found for page, found in report.items() if found}
    if not results:
        problems["search"] = [f"no result for {SEARCH!r}"]
    summary = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/site_in_browser.py",
        "browser": subprocess.run([args.chromium, "--version"], capture_output=True, text=True).stdout.strip(),
        "pages": len(report),
        "search_results": {SEARCH: results},
        "problems": problems,
    }
    (OUT / "report.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
