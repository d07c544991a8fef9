from services.tamper_detect import compare, compress, decompress, external_script_domains, normalise

PAGE = """<html><head><script src="/app.js"></script><script src="https://cdn.example.com/lib.js"></script></head>
<body><h1>Shop</h1><p>Generated at 2026-11-23 10:00:00</p><p>Welcome to our shop</p></body></html>"""


def test_identical_pages_are_not_tampered():
    verdict = compare(PAGE, PAGE, "https://shop.test/", 0.05, [], [])
    assert not verdict.tampered and verdict.change_ratio == 0.0 and verdict.diff == ""


def test_ignore_rules_and_whitespace_are_removed_before_comparing():
    changed = PAGE.replace("2026-11-23 10:00:00", "2026-11-24 11:11:11").replace("<h1>", "<h1>   \n")
    assert compare(PAGE, changed, "https://shop.test/", 0.05, [], []).tampered
    verdict = compare(PAGE, changed, "https://shop.test/", 0.05, [r"Generated at [0-9: -]+"], [])
    assert not verdict.tampered and verdict.change_ratio == 0.0


def test_change_ratio_against_threshold():
    changed = PAGE.replace("Welcome to our shop", "Welcome to our shop!")
    low = compare(PAGE, changed, "https://shop.test/", 0.5, [], [])
    assert not low.tampered and 0 < low.change_ratio < 0.5
    high = compare(PAGE, changed, "https://shop.test/", low.change_ratio, [], [])
    assert high.tampered and "+Welcome to our shop!</p>" in high.diff


def test_forbidden_keyword_opens_a_high_event_even_below_threshold():
    changed = PAGE.replace("Welcome", "Hacked! Welcome")
    verdict = compare(PAGE, changed, "https://shop.test/", 0.99, [], ["hacked", "casino"])
    assert verdict.tampered and verdict.forbidden == ["hacked"] and verdict.severity == "high"


def test_new_external_script_domain_opens_an_event():
    changed = PAGE.replace("</body>", '<iframe src="//evil.example.net/x"></iframe></body>')
    verdict = compare(PAGE, changed, "https://shop.test/", 0.99, [], [])
    assert verdict.tampered and verdict.new_domains == ["evil.example.net"]


def test_script_domains_ignore_own_host_and_relative_sources():
    assert external_script_domains(PAGE, "https://shop.test/") == {"cdn.example.com"}


def test_compression_round_trip_and_normalise():
    assert decompress(compress(PAGE)) == PAGE
    assert "  " not in normalise(PAGE, [])
