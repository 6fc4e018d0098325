"""Accounts in a real browser (Debian's chromium through Playwright), on the real embedded model and a test clock.

Student A logs in, takes a 3-question quiz from the course, answers it and logs out; student B logs in and sees
none of A's quizzes, answers or cards, and answers a question of their own; the clock moves a day on; A logs in
again and the Review tab holds A's three cards, and Practice my weak spots writes a quiz on A's weakest topic; the
teacher sees both students in the class chart and table and
exports the CSV. Screenshots of each step go under the test's tmp dir.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from test_app_browser import CHROMIUM_ARGS, chromium

import app
import app_serve
from tutor.progress.accounts import Login, hash_password
from tutor.progress.sqlite import SQLiteStore
from tutor.progress.tracker import Progress

PASSWORDS = {"ada": "ada-secret-1", "bob": "bob-secret-2", "tess": "tess-secret-3"}


class Clock:
    """The time the app reads: moved on by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def site(llama_model, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    executable = chromium()
    folder = tmp_path_factory.mktemp("accounts")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TA_DATA_DIR", str(folder))
        store = SQLiteStore(folder / "progress.db")
        for name, password in PASSWORDS.items():
            store.add_user(name, hash_password(password), name == "tess", datetime.now(UTC))
        clock = Clock()
        demo = app.build_app(*app_serve.make_programs(llama_model), progress=Progress(store, clock))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app_serve.launch(demo, port=port, block=False, auth=Login(store).check)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1200, "height": 1000})
            yield tab, f"http://127.0.0.1:{port}/", clock, store
            browser.close()
        demo.close()


def log_in(page, url: str, name: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#ask textarea", timeout=60_000)


def log_out(page) -> None:
    page.click("#logout")
    page.get_by_label("username").wait_for(timeout=30_000)


def answer_quiz(page, topic: str, n: int, letters: str) -> None:
    page.get_by_role("tab", name="Quiz").click()
    page.fill("#topic textarea", topic)
    page.fill("#count input[type=number]", str(n))
    page.press("#count input[type=number]", "Tab")
    page.get_by_label("easy").check()
    page.click("#generate")
    page.wait_for_selector(f"#quiz-progress :text('All {n} questions ready')", timeout=300_000)
    for i, letter in enumerate(letters):
        page.wait_for_selector(f"#quiz-question :text('Question {i + 1} of {n}')")
        page.locator("#quiz-options label").nth("ABCD".index(letter)).click()
        page.click("#check")
        page.wait_for_selector("#quiz-feedback :text-matches('Correct!|Not quite')", timeout=30_000)
        if i + 1 < n:
            page.click("#next")
    page.wait_for_selector("#quiz-score :text('Final score')", timeout=30_000)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_students_see_only_their_own_progress_and_the_teacher_sees_the_class(site, tmp_path):
    page, url, clock, store = site

    log_in(page, url, "ada")
    assert not page.get_by_role("tab", name="Class").is_visible(), "a student has no class view"
    answer_quiz(page, "dropout", 3, "ABC")
    page.screenshot(path=tmp_path / "1-ada-quiz.png")
    asked = [a.question for a in store.attempts("ada")]
    stems = [q.split('"stem":"')[1].split('","')[0] for q in asked]
    assert len(stems) == 3, "every answer is stored"
    open_tab(page, "My progress")
    page.click("#my-refresh")
    page.wait_for_selector("#my-progress :text('3 answers')")
    open_tab(page, "Review")
    page.click("#review-next")
    page.wait_for_selector("#review-status :text('Nothing to review now')")
    log_out(page)

    log_in(page, url, "bob")
    open_tab(page, "My progress")
    page.wait_for_selector("#my-progress :text('bob')")
    assert "no answers yet" in page.inner_text("#my-progress")
    open_tab(page, "Review")
    page.wait_for_selector("#review-status :text('Nothing to review now')")
    body = page.inner_text("body")
    assert not any(stem[:40] in body for stem in stems), "bob sees none of ada's questions"
    assert not page.get_by_role("tab", name="Class").is_visible()
    page.screenshot(path=tmp_path / "2-bob.png")
    answer_quiz(page, "gradient descent", 1, "B")
    log_out(page)

    clock.now += timedelta(days=1)  # every card is due
    log_in(page, url, "ada")
    open_tab(page, "Review")
    page.wait_for_selector("#review-status :text('3 cards due')", timeout=30_000)
    question = page.inner_text("#review-question")
    assert any(stem[:40] in question for stem in stems), question
    page.locator("#review-options label").nth(0).click()
    page.click("#review-check")
    page.wait_for_selector("#review-feedback :text-matches('Correct!|Not quite')", timeout=30_000)
    assert "Source:" in page.inner_text("#review-feedback"), "the same feedback as the quiz, with its source"
    page.screenshot(path=tmp_path / "3-ada-review.png")
    page.click("#review-next")
    page.wait_for_selector("#review-status :text('2 cards due')")

    weakest = Progress(store, clock).weakest("ada")[0]  # ada's least mastered topic writes her next quiz
    open_tab(page, "Quiz")
    page.fill("#count input[type=number]", "2")
    page.press("#count input[type=number]", "Tab")
    page.click("#weak")
    page.wait_for_function(f"() => document.querySelector('#topic textarea').value === {weakest!r}")
    page.wait_for_selector("#quiz-question :text('Question 1 of')", timeout=300_000)
    page.screenshot(path=tmp_path / "4-ada-weak-spots.png")
    page.wait_for_selector("#quiz-progress :text-matches('questions ready|that could be written')", timeout=300_000)
    log_out(page)

    log_in(page, url, "tess")
    open_tab(page, "Class")
    page.wait_for_selector("#class-table table", timeout=30_000)
    rows = page.locator("#class-table tbody tr").all_inner_texts()
    assert {row.split("\t")[0].strip() for row in rows} == {"ada", "bob"}, rows
    page.wait_for_selector("#class-chart img", timeout=30_000)
    page.screenshot(path=tmp_path / "5-teacher.png")
    page.click("#class-export")
    link = page.locator("#class-csv a").first
    link.wait_for(timeout=30_000)
    csv = page.request.get(link.get_attribute("href") or "").text()
    assert csv.splitlines()[0] == "student,topic,mastery,answers,correct"
    assert {line.split(",")[0] for line in csv.splitlines()[1:]} == {"ada", "bob"}
    log_out(page)
