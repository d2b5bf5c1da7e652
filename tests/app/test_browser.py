"""The web app in a real headless Chromium (Debian package) driven by Playwright.

The app runs in this process on 127.0.0.1 (free port) with the engine's real Predictor: random
``rsam-tiny`` weights by default, or ``$RRSIS_APP_TEST_MODEL`` (a registry name or checkpoint) for
screenshots with a trained model. Set ``RRSIS_UPDATE_SCREENSHOTS=1`` to write the screenshots to docs/ (then the
shipped ``rsam-lite`` is the default: docs never show an untrained model's masks).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rrsis_app import state as S
from rrsis_app_testing import header_only_png

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if p:
            return p
    pytest.fail("Chromium is not installed: run `make system` (scripts/setup-system.sh) first.")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    import torch
    from rrsis_app.ui import build_app, launch

    from rrsis_engine.store import open_store

    tmp = tmp_path_factory.mktemp("app")
    model = os.environ.get("RRSIS_APP_TEST_MODEL")
    if not model and os.environ.get("RRSIS_UPDATE_SCREENSHOTS"):
        model = "rsam-lite"  # screenshots for docs/ show the shipped model
    if model:
        from rrsis_engine.predictor import load_predictor

        predictor = load_predictor(model, device="cpu")
    else:
        from rrsis_engine.model import build_rsam
        from rrsis_engine.predictor import Predictor

        torch.manual_seed(0)
        predictor = Predictor(build_rsam("rsam-tiny"), device="cpu", disk_cache=False)
    store = open_store(tmp / "sessions.db")
    services = S.Services(predictor, store=store, workdir=tmp / "work")
    services.samples = S.discover_samples(S.default_samples_dir(), services.workdir / "thumbs")
    assert len(services.samples) >= 2, "the bundled sample tiles (rrsis_engine/samples) are missing"
    demo = build_app(services)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = launch(demo, host="127.0.0.1", port=port, block=False, quiet=True)
    yield url, services, store
    demo.close()
    store.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"], headless=True)
        yield b
        b.close()


class AppPage:
    """A tab of the app with helpers that wait for the server's answer to each action."""

    def __init__(self, browser, url):
        self.context = browser.new_context(viewport={"width": 1440, "height": 1050})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.goto(url)
        self.page.wait_for_selector("#rrsis-status >> text=event")

    def event(self) -> int:
        m = re.search(r"event (\d+)", self.page.inner_text("#rrsis-status"))
        return int(m.group(1)) if m else -1

    def act(self, action) -> None:
        """Run ``action`` and wait until the server has handled one more event."""
        before = self.event()
        action()
        self.page.wait_for_function(
            f"() => {{ const m = document.querySelector('#rrsis-status').innerText.match(/event (\\d+)/);"
            f" return m && parseInt(m[1]) > {before}; }}")

    def status(self) -> str:
        return self.page.inner_text("#rrsis-status")

    def last_reply(self) -> str:
        bots = self.page.locator("#rrsis-chat [data-testid='bot']")
        for _ in range(100):  # the chatbot renders markdown asynchronously ("Loading content")
            text = bots.last.inner_text()
            if "Loading content" not in text:
                return text
            self.page.wait_for_timeout(100)
        return text

    def chat_text(self) -> str:
        return self.page.inner_text("#rrsis-chat")

    def image(self) -> np.ndarray:
        src = self.page.locator("#rrsis-image img").get_attribute("src")
        data = self.page.request.get(src).body() if not src.startswith("data:") else None
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def pick_sample(self, i: int) -> None:
        self.act(lambda: self.page.locator("#rrsis-gallery .thumbnail-item").nth(i).click())

    def say(self, text: str) -> None:
        box = self.page.locator("#rrsis-msg textarea")
        box.fill(text)
        self.act(lambda: box.press("Enter"))

    def click_image(self, fx: float, fy: float) -> None:
        """Click at fractions (fx, fy) of the displayed image."""
        img = self.page.locator("#rrsis-image img")
        img.scroll_into_view_if_needed()
        bb = img.bounding_box()
        nw, nh = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        r = min(bb["width"] / nw, bb["height"] / nh)  # object-fit: contain letterboxes the picture
        x0 = bb["x"] + (bb["width"] - nw * r) / 2
        y0 = bb["y"] + (bb["height"] - nh * r) / 2
        self.act(lambda: self.page.mouse.click(x0 + nw * r * fx, y0 + nh * r * fy))

    def button(self, elem_id: str) -> None:
        self.act(lambda: self.page.click(f"#{elem_id}"))

    def mode(self, label: str) -> None:
        self.page.locator("#rrsis-mode label", has_text=label).click()
        self.page.wait_for_function(
            f"() => document.querySelector('#rrsis-status').innerText.includes({label!r})")

    def upload(self, path: Path) -> None:
        self.act(lambda: self.page.locator("#rrsis-upload input[type=file], input[type=file]").first
                 .set_input_files(str(path)))

    def screenshot(self, name: str, tmp: Path) -> Path:
        out = (DOCS if os.environ.get("RRSIS_UPDATE_SCREENSHOTS") else tmp) / name
        self.page.screenshot(path=str(out), full_page=False)
        assert out.stat().st_size > 20_000
        return out

    def close(self):
        self.context.close()


def mask_area(reply: str) -> int:
    m = re.search(r"Mask: ([\d,]+) px", reply)
    assert m, reply
    return int(m.group(1).replace(",", ""))


def cyan_pixels(img: np.ndarray) -> int:
    r, g, b = (img[..., c].astype(int) for c in range(3))
    return int(((r < 90) & (g > 170) & (b > 200)).sum())


def test_label_one_object_end_to_end(app_server, browser, tmp_path):
    url, services, store = app_server
    tab = AppPage(browser, url)
    page = tab.page
    assert "No image loaded" in tab.status()
    tab.pick_sample(0)
    assert services.samples[0].path.name in tab.status()
    before = tab.image()
    tab.say("the large lake in the north")
    first_reply = tab.last_reply()
    area1 = mask_area(first_reply)
    img1 = tab.image()
    assert area1 > 0 and cyan_pixels(img1) > cyan_pixels(before) + 50, "no mask drawn"
    tab.screenshot("app-first-mask.png", tmp_path)

    tab.mode("negative")
    tab.click_image(0.5, 0.5)
    reply2 = tab.last_reply()
    assert "Negative (−) click" in tab.chat_text()
    img2 = tab.image()
    assert not np.array_equal(img1, img2)
    assert mask_area(reply2) != area1 or "1 negative" in reply2
    assert "turns: 2" in tab.status()

    tab.button("rrsis-undo")
    assert "Undone" in tab.last_reply() and mask_area(tab.last_reply()) == area1
    assert "turns: 1" in tab.status()
    assert np.abs(tab.image().astype(int) - img1.astype(int)).mean() < 1.0  # same overlay again

    tab.button("rrsis-accept")
    assert "Accepted object 1" in tab.last_reply()
    page.wait_for_selector("#rrsis-files a")
    assert page.locator("#rrsis-files a").count() >= 3
    recs = [r for r in store.list_annotations(status="accepted") if "the large lake in the north" in r.expressions]
    assert len(recs) == 1 and int(recs[0].mask.sum()) == area1

    # a second browser context is a different user: nothing of the first is visible there
    other = AppPage(browser, url)
    assert "No image loaded" in other.status()
    assert "the large lake" not in other.chat_text()
    other.pick_sample(1)
    other.say("the field")
    assert "turns: 1" in other.status() and services.samples[1].path.name in other.status()
    tab.page.reload()
    tab.page.wait_for_selector("#rrsis-status >> text=event")
    other.say("undo")
    assert "turns: 0" in other.status()
    other.close()
    tab.close()


def test_ambiguity_and_uncertainty_screenshots(app_server, browser, tmp_path):
    url, services, _ = app_server
    tab = AppPage(browser, url)
    tab.pick_sample(1)
    for i, expression in enumerate(("a lake", "a field", "the water", "a pond next to the road", "a small lake")):
        if i:
            tab.button("rrsis-clear")  # the previous expression was not flagged: start over
        tab.say(expression)
        if "Ambiguous" in tab.last_reply():
            break
    reply = tab.last_reply()
    if "Ambiguous" in reply:
        assert re.search(r"could mean \d+ different regions", reply)
        tab.screenshot("app-ambiguous.png", tmp_path)
    tab.act(lambda: tab.page.locator("#rrsis-uncertainty input").check())
    heat = tab.image()
    tab.act(lambda: tab.page.locator("#rrsis-uncertainty input").uncheck())
    plain = tab.image()
    if tab.page.locator("#rrsis-chat", has_text="gives no uncertainty map").count() == 0:
        assert np.abs(heat.astype(int) - plain.astype(int)).mean() > 0.5
        tab.act(lambda: tab.page.locator("#rrsis-uncertainty input").check())
        tab.screenshot("app-uncertainty.png", tmp_path)
    if "Ambiguous" in reply:
        # the reply's own suggestion, typed: a follow-up that picks one of the look-alikes
        if tab.page.locator("#rrsis-uncertainty input").is_checked():
            tab.act(lambda: tab.page.locator("#rrsis-uncertainty input").uncheck())
        tab.say("the one on the left")
        follow = tab.last_reply()
        assert mask_area(follow) != mask_area(reply) and "turns: 2" in tab.status(), follow
        tab.screenshot("app-followup.png", tmp_path)
    tab.close()
    if "Ambiguous" not in reply:
        pytest.skip("this model flagged none of the expressions as ambiguous; no ambiguity screenshot")


def test_the_brush_adds_to_and_removes_from_the_mask(app_server, browser, tmp_path):
    """Where clicks plateau (Dubai's per-pixel class masks: 68 of 120 real held-out records never reach IoU 0.85 in
    20 clicks), the labeller paints: blue strokes add to the mask, pink ones remove from it; the result is a turn that
    undo takes back, and the accepted mask in the store is what was painted. While the panel is open its canvas
    follows the other turns (a click, undo) instead of showing the mask it was opened with."""
    url, services, store = app_server
    tab = AppPage(browser, url)
    page = tab.page
    tab.pick_sample(0)
    tab.button("rrsis-clear")  # start from an empty mask: every blue pixel painted is new
    page.get_by_text("Brush: touch up the mask by hand").click()  # opening the panel loads the current mask
    canvas = page.locator("#rrsis-brush canvas").first
    canvas.wait_for()
    page.locator("#rrsis-brush").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # the editor draws the loaded background
    editor = page.locator("#rrsis-brush")

    def stroke(fx0: float, fx1: float, fy: float) -> None:
        bb = canvas.bounding_box()
        y = bb["y"] + bb["height"] * fy
        page.mouse.move(bb["x"] + bb["width"] * fx0, y)
        page.mouse.down()
        for i in range(1, 21):
            page.mouse.move(bb["x"] + bb["width"] * (fx0 + (fx1 - fx0) * i / 20), y)
        page.mouse.up()

    editor.get_by_label("Brush").first.click()
    stroke(0.35, 0.65, 0.5)
    tab.button("rrsis-brush-apply")
    added = re.search(r"Brush: \+([\d,]+) px, −0 px", tab.chat_text())
    assert added and int(added.group(1).replace(",", "")) > 200, tab.chat_text()
    area = mask_area(tab.last_reply())
    assert area == int(added.group(1).replace(",", "")) and "turns: 1" in tab.status()  # the first since clear

    editor.get_by_label("Color").first.click()
    editor.locator(".swatch .color").nth(1).click()  # pink
    editor.get_by_label("Brush").first.click()
    stroke(0.45, 0.55, 0.5)
    tab.button("rrsis-brush-apply")
    removed = re.search(r"Brush: \+0 px, −([\d,]+) px", tab.chat_text())
    assert removed and 0 < int(removed.group(1).replace(",", "")) < area, tab.chat_text()
    assert mask_area(tab.last_reply()) == area - int(removed.group(1).replace(",", ""))
    page.locator("#rrsis-brush").scroll_into_view_if_needed()
    tab.screenshot("app-brush.png", tmp_path)

    def canvas_pixels() -> np.ndarray:
        page.wait_for_timeout(1000)  # the editor draws a reloaded background
        return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), np.int16)

    painted = canvas_pixels()
    tab.click_image(0.15, 0.15)  # a turn elsewhere: the open panel's canvas shows its mask
    assert "turns: 3" in tab.status(), tab.status()
    changed = (np.abs(canvas_pixels() - painted).max(axis=2) > 40).mean()
    assert changed > 0.005, changed  # stale, the canvas differs by a cursor's worth (0.08 % of its pixels)
    tab.button("rrsis-undo")
    back = (np.abs(canvas_pixels() - painted).max(axis=2) > 40).mean()
    assert back < 0.005, back  # undo: the painted mask again (up to the brush cursor)
    tab.button("rrsis-undo")
    assert mask_area(tab.last_reply()) == area
    tab.button("rrsis-accept")
    assert "Accepted object" in tab.last_reply()
    last = max(store.list_annotations(status="accepted"), key=lambda r: r.id)
    assert int(last.mask.sum()) == area
    tab.close()


def test_bad_input_gets_chat_messages(app_server, browser, tmp_path):
    url, services, _ = app_server
    tab = AppPage(browser, url)
    tab.click_image(0.5, 0.5)  # the placeholder picture
    assert "No image yet" in tab.last_reply()
    tab.act(lambda: tab.page.locator("#rrsis-msg textarea").press("Enter"))
    assert "Type what to segment" in tab.last_reply()

    txt = tmp_path / "readme.txt"
    txt.write_text("not an image")
    tab.upload(txt)
    assert "Cannot read readme.txt as an image" in tab.last_reply()
    tab.upload(header_only_png(tmp_path / "huge.png", 20000, 20000))
    assert "20000×20000" in tab.last_reply() and "limit" in tab.last_reply()
    assert "Traceback" not in tab.chat_text()

    # a large upload is downsampled for display; a click maps back to full resolution
    big = np.zeros((1200, 2400, 3), np.uint8)
    big[:, :, 1] = np.linspace(0, 255, 2400, dtype=np.uint8)[None, :]
    Image.fromarray(big).save(tmp_path / "wide.png")
    tab.upload(tmp_path / "wide.png")
    assert "shown at 1024×512" in tab.last_reply()
    assert tab.image().shape == (512, 1024, 3)
    tab.click_image(0.75, 0.25)
    m = re.search(r"Positive \(\+\) click at \((\d+), (\d+)\)", tab.chat_text())
    x, y = int(m.group(1)), int(m.group(2))
    assert abs(x - 0.75 * 2400) <= 2400 / 1024 * 1.5 and abs(y - 0.25 * 1200) <= 1200 / 512 * 1.5
    assert "Mask" in tab.last_reply()  # the app kept working
    tab.close()
