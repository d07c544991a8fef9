"""English and Simplified Chinese: every string of the console is translated, the committed compiled
catalog is the one its .po gives (so `make run` from a fresh clone needs no compile step), and the
language follows the browser or the switch."""

import subprocess
import sys

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.console.conftest import ROOT

TRANSLATIONS = ROOT / "console" / "translations"
ZH_PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
ZH_MO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo"


def _extract(tmp_path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "console/babel.cfg", "-k", "_l",
         "--no-location", "-o", str(pot), "console"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}


def test_every_string_of_the_console_is_translated(tmp_path):
    with ZH_PO.open("rb") as handle:
        catalog = read_po(handle)
    translated = {message.id: message.string for message in catalog if message.id}
    missing = sorted(message for message in _extract(tmp_path) if not translated.get(message))
    assert missing == [], (
        f"untranslated (make translations, then fill in {ZH_PO.relative_to(ROOT)}): {missing}"
    )
    assert not any(message.fuzzy for message in catalog if message.id)


def test_the_compiled_catalog_matches_its_source():
    with ZH_PO.open("rb") as handle:
        source = {m.id: m.string for m in read_po(handle) if m.id}
    with ZH_MO.open("rb") as handle:
        compiled = {m.id: m.string for m in read_mo(handle) if m.id}
    assert compiled == source, "run make translations (pybabel compile) and commit the .mo"


def test_the_browser_language_chooses(client):
    assert "登录 cloudeye" in client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(
        as_text=True
    )
    assert "Log in to cloudeye" in client.get("/login", headers={"Accept-Language": "fr, en;q=0.5"}).get_data(
        as_text=True
    )
    assert "Log in to cloudeye" in client.get("/login").get_data(as_text=True)


def test_the_switch_wins_over_the_browser(client):
    response = client.get("/lang/zh?next=/login", headers={"Accept-Language": "en"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    cookie = response.headers["Set-Cookie"]
    assert "cloudeye_lang=zh" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "登录 cloudeye" in client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    client.get("/lang/en")
    assert "Log in to cloudeye" in client.get("/login").get_data(as_text=True)


def test_the_switch_ignores_unknown_languages_and_foreign_redirects(client):
    response = client.get("/lang/xx?next=https://evil.example/")
    assert response.headers["Location"] == "/" and "Set-Cookie" not in response.headers
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        assert client.get("/lang/en", query_string={"next": target}).headers["Location"] == "/", target
