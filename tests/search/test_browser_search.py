"""End to end in real headless Chromium: type a query, pick/drop a picture, "more like this", filters, pages.

Screenshots go to ``$SEMSEARCH_SCREENSHOTS`` when set (``docs/screenshots`` for the README), else a temp folder.
Skipped only when Chromium is missing outside CI; with ``CI=true`` a missing browser is a failure.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from images.models import Image
from tests.conftest import IN_CI
from tests.search.test_search_fixtures import toy_corpus, toy_model_use, toy_picture_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if IN_CI:
            pytest.fail(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian chromium, chromium-driver)")
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="semsearch-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEMSEARCH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def corpus(settings) -> list[Image]:
    toy_model_use(settings)
    return toy_corpus()


def _wait(driver, css: str, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _hit_titles(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, ".hit .title")]


def _hit_ids(driver) -> list[int]:
    from selenium.webdriver.common.by import By

    return [int(e.get_attribute("data-image-id")) for e in driver.find_elements(By.CSS_SELECTOR, ".hit")]


def _fresh(driver, url: str) -> None:
    driver.get(url)
    driver.execute_script("document.body.dataset.fresh = '1'")


def _navigated(driver, timeout: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return !document.body.dataset.fresh"))
    _wait(driver, "#status-line")


def test_type_a_query_and_see_ranked_results(browser, live_server, corpus, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _fresh(browser, live_server.url + "/")
    browser.save_screenshot(str(shots / "home.png"))
    box = browser.find_element(By.ID, "q")
    box.send_keys("a red circle on a white background", Keys.ENTER)
    _navigated(browser)
    _wait(browser, ".hit")
    titles = _hit_titles(browser)
    assert titles[0].startswith("a red circle")
    assert "q=a+red+circle+on" in browser.current_url  # the JS turned the search into a bookmarkable GET
    scores = [float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, ".hit .score")]
    assert scores == sorted(scores, reverse=True)
    browser.save_screenshot(str(shots / "search-results.png"))

    # negation through the box: red things that are not circles
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("red circle - circle", Keys.ENTER)
    _navigated(browser)
    _wait(browser, ".hit")
    top = _hit_titles(browser)[:3]
    assert all(" red " in f" {t} " and "circle" not in t for t in top), top


def test_pick_a_picture_and_see_similar_ones(browser, live_server, corpus, shots: Path, tmp_path: Path) -> None:
    picture = tmp_path / "blue-star.png"
    picture.write_bytes(toy_picture_bytes(kind="star", colour="blue", seed=4242))
    from selenium.webdriver.common.by import By

    _fresh(browser, live_server.url + "/")
    browser.find_element(By.ID, "image-input").send_keys(str(picture))  # the change event submits the form
    _navigated(browser)
    _wait(browser, ".hit")
    assert _hit_titles(browser)[0].startswith("a blue star")
    assert browser.find_element(By.ID, "picture-chip").is_displayed()
    browser.save_screenshot(str(shots / "search-by-image.png"))


def test_drop_a_picture_with_text(browser, live_server, corpus) -> None:
    from selenium.webdriver.common.by import By

    _fresh(browser, live_server.url + "/")
    browser.find_element(By.ID, "q").send_keys("- green + yellow")
    encoded = base64.b64encode(toy_picture_bytes(kind="square", colour="green", seed=31)).decode()
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.getElementById("dropzone").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        """,
        encoded,
    )
    _navigated(browser)
    _wait(browser, ".hit")
    # the dropped green square, minus green plus yellow: yellow shapes come first
    assert all(title.startswith("a yellow ") for title in _hit_titles(browser)[:3])
    assert browser.find_element(By.ID, "picture-chip").is_displayed()


def test_more_like_this_and_detail_page(browser, live_server, corpus, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _fresh(browser, live_server.url + "/?q=a+green+triangle")
    _wait(browser, ".hit")
    second = browser.find_elements(By.CSS_SELECTOR, ".hit")[1]
    wanted = int(second.get_attribute("data-image-id"))
    browser.execute_script("document.body.dataset.fresh = '1'")
    second.find_element(By.CSS_SELECTOR, "a.more").click()
    _navigated(browser)
    _wait(browser, ".hit")
    assert f"q=image:{wanted}" in browser.current_url
    assert _hit_ids(browser)[0] == wanted
    browser.execute_script("document.body.dataset.fresh = '1'")
    browser.find_element(By.CSS_SELECTOR, ".hit a.title").click()
    _navigated(browser)
    _wait(browser, ".detail")
    assert browser.find_element(By.CSS_SELECTOR, ".detail h1").text == Image.objects.get(pk=wanted).title
    assert wanted not in _hit_ids(browser)  # "most similar" leaves the image itself out
    browser.save_screenshot(str(shots / "image-detail.png"))


def test_apply_a_filter_and_page_through(browser, live_server, corpus, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _fresh(browser, live_server.url + "/?q=a+shape&limit=4")
    _wait(browser, ".hit")
    browser.find_element(By.CSS_SELECTOR, "details.filters summary").click()
    browser.find_element(By.NAME, "tags").send_keys("blue")
    browser.execute_script("document.body.dataset.fresh = '1'")
    browser.find_element(By.CSS_SELECTOR, "details.filters button[type=submit]").click()
    _navigated(browser)
    _wait(browser, ".hit")
    assert "tags=blue" in browser.current_url
    first_page = _hit_titles(browser)
    assert len(first_page) == 4
    assert all(" blue " in f" {t} " for t in first_page)
    browser.save_screenshot(str(shots / "filters.png"))
    browser.execute_script("document.body.dataset.fresh = '1'")
    browser.find_element(By.ID, "next-page").click()
    _navigated(browser)
    _wait(browser, ".hit")
    second_page = _hit_titles(browser)
    assert second_page
    assert all(" blue " in f" {t} " for t in second_page)
    assert not set(first_page) & set(second_page)


def test_phone_layout_and_empty_index(browser, live_server, shots: Path, settings) -> None:
    from selenium.webdriver.common.by import By

    toy_model_use(settings)
    browser.set_window_size(390, 844)
    try:
        _fresh(browser, live_server.url + "/")
        assert browser.find_element(By.ID, "empty-index").is_displayed()
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390  # nothing overflows sideways on a phone
        browser.save_screenshot(str(shots / "empty-phone.png"))
    finally:
        browser.set_window_size(1280, 900)


def test_a_query_only_the_words_can_answer_puts_the_right_picture_first(browser, live_server, corpus, shots) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # given one picture whose photographer and file name only its words know
    target = corpus[5]
    Image.objects.filter(pk=target.pk).update(attribution="Michelle Spencer", original_filename="IMG_2041.JPG")
    _fresh(browser, live_server.url + "/")
    browser.find_element(By.ID, "q").send_keys("Michelle Spencer", Keys.ENTER)
    _navigated(browser)
    _wait(browser, ".hit")
    # then it comes first (words + pictures is the default mode) and says which field matched, words marked
    assert _hit_ids(browser)[0] == target.pk
    first = browser.find_element(By.CSS_SELECTOR, ".hit")
    matched = first.find_element(By.CSS_SELECTOR, ".matched li[data-field='attribution']")
    assert "photographer" in matched.text
    assert [m.text for m in matched.find_elements(By.TAG_NAME, "mark")] == ["Michelle", "Spencer"]
    browser.save_screenshot(str(shots / "search-hybrid.png"))
    # and "words only" finds it by its file name alone
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("file:IMG_2041")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "mode")).select_by_value("keyword")
    box.send_keys(Keys.ENTER)
    _navigated(browser)
    _wait(browser, ".hit")
    assert _hit_ids(browser) == [target.pk]
    assert "mode=keyword" in browser.current_url
