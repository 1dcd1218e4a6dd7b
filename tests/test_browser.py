"""The web page in a real browser: headless Chromium (Debian's chromium + chromium-driver) via Selenium,
against a real `odqa serve` process on the demo index with the shipped reader."""

import os
import shutil
from urllib.parse import quote

import pytest

import odqa
from odqa.api.demo import demo_file
from tests.serving import ServerProcess

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server process, started first: it loads the reader while the browser starts."""
    root = tmp_path_factory.mktemp("browser") / "indexes"
    odqa.build_index(demo_file("demo_corpus.jsonl"), "demo", None, index_dir=root, quiet=True)
    with ServerProcess("--index", "demo", "--index-dir", root, "--reader", "ko-reader") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server):
    if not CHROMIUM or not os.path.exists(CHROMEDRIVER):
        pytest.skip("browser test skipped: Chromium or chromedriver is not installed "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="browser test skipped: selenium is not installed")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    server.wait_ready()
    yield driver
    driver.quit()


def _answer(driver, timeout=60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.ID, "result").is_displayed()
                                         and not d.find_element(By.ID, "status").text)
    return driver.find_element(By.ID, "answer-text").text


def test_typing_a_question_and_enter_shows_the_answer_in_its_passage(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    browser.get(server.url + "/")
    question = "한라산 꼭대기에 있는 분화구 호수의 이름은 무엇인가?"
    browser.find_element(By.ID, "q").send_keys(question, Keys.ENTER)
    assert _answer(browser) == "백록담"
    assert browser.find_element(By.CSS_SELECTOR, "#answer-passage mark").text == "백록담"
    assert "한라산" in browser.find_element(By.ID, "answer-source").text
    passages = browser.find_elements(By.CSS_SELECTOR, "#passages li")
    assert passages and "sparse" in passages[0].text and "score" in passages[0].text
    assert browser.find_elements(By.CSS_SELECTOR, "#alternatives li")
    assert "read" in browser.find_element(By.ID, "timings").text
    assert quote(question) in browser.current_url            # the address asks it again when shared
    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("ODQA_SCREENSHOT"):                      # to refresh docs/serve.png
        shutil.copy(shot, os.environ["ODQA_SCREENSHOT"])


def test_a_shared_address_asks_its_question(browser, server):
    browser.get(server.url + "/?q=" + quote("낙동강이 처음 시작되는 연못의 이름은 무엇인가?"))
    assert _answer(browser) == "황지연못"


def test_errors_are_shown_in_plain_words(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(server.url + "/?q=" + "가" * 1001)
    err = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: err.is_displayed())
    assert "at most 1000 characters" in err.text and "{" not in err.text
