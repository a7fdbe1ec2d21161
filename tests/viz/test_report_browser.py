"""The report as a person sees it: opened in a real headless Chromium (Debian's chromium,
driven by selenium through Debian's chromium-driver; nothing is downloaded), a
screenshot taken, no console errors, every image loaded, every video playable.

Skips with a reason when the browser is missing, except under VIDSEG_FULL_CHECK=1
(`make check` installs it), where a missing browser fails the test."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.viz.report_files import make_outputs
from vidseg_cli.viz.report import write_report

FULL = os.environ.get("VIDSEG_FULL_CHECK") == "1"


def _browser():
    missing = [b for b in ("chromium", "chromedriver") if shutil.which(b) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = f"{' and '.join(missing)} not installed (make check installs them)"
        if FULL:
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def open_report(index, shot):
    """(images and videos as the page sees them, SEVERE console entries) once every image
    has loaded or failed and every video has its metadata or an error; a screenshot."""
    driver = _browser()
    try:
        driver.get(index.resolve().as_uri())
        deadline = time.time() + 60
        state = None
        while time.time() < deadline:
            state = driver.execute_script("""
                const imgs = [...document.images].map(i => ({src: i.src,
                    done: i.complete, ok: i.complete && i.naturalWidth > 0}));
                const vids = [...document.querySelectorAll('video')].map(v => ({src: v.src,
                    ready: v.readyState, duration: v.duration, error: v.error && v.error.code}));
                return {imgs, vids};""")
            if all(i["done"] for i in state["imgs"]) and all(
                    v["ready"] >= 1 or v["error"] for v in state["vids"]):
                break
            time.sleep(0.25)
        assert driver.save_screenshot(str(shot))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    return state, errors


def test_the_report_opens_with_every_picture_and_video_showing(tmp_path):
    folder = make_outputs(tmp_path / "outputs")
    result = write_report(folder, tmp_path / "report")
    assert result.counts["videos"] >= 1 and result.counts["timelines"] >= 2
    assert result.counts["metrics"] >= 1 and result.counts["runs"] == 1
    state, errors = open_report(result.index, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert len(state["imgs"]) >= 6 and len(state["vids"]) == result.counts["videos"]
    assert [i["src"] for i in state["imgs"] if not i["ok"]] == []
    for v in state["vids"]:
        assert v["error"] is None and v["duration"] > 0, v
    assert errors == []


def test_the_check_sees_a_missing_picture_and_a_broken_video(tmp_path):
    folder = make_outputs(tmp_path / "outputs")
    result = write_report(folder, tmp_path / "report")
    svg = next(f for f in result.written if f.endswith(".timeline.svg"))
    webm = next(f for f in result.written if f.endswith(".webm"))
    os.remove(svg)
    with open(webm, "r+b") as f:  # a video that is not one
        f.write(b"not a webm" * 100)
    state, errors = open_report(result.index, tmp_path / "report.png")
    bad = [i["src"] for i in state["imgs"] if not i["ok"]]
    assert len(bad) == 1 and bad[0].endswith(os.path.basename(svg))
    assert [v["error"] for v in state["vids"]] != [None] * len(state["vids"])
    assert errors  # the missing file is a console error
