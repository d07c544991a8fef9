"""Free-text filters (`q=`) of the lists, and the trigram index that makes `q` on findings fast.

The result of `q` is always exactly `LIKE '%q%'` on the columns (title or location for findings), with the
collation's case rules. On findings (docs/domain.md, "Search"):

- the matching texts (`match_texts`): the distinct titles and locations listed under the query's rarest
  trigrams (lower-cased printable ASCII; a text with any other character is listed under gram 0 and is
  checked by every search, because the collation's rules for it are not byte rules), checked with LIKE;
- the tail: findings the index has not reached yet (id above `indexed_to`, or in a hole), checked with
  LIKE on the findings themselves.

A text that contains q contains every trigram of q, so nothing is missed. A page in severity or id order
is read off the matching texts' references, which carry the finding's site and severity
(`page_by_refs`); other lists take the references' findings as candidates and keep LIKE in the query
(`finding_ids`). When the index cannot narrow (every trigram common, a query of one or two characters
found in too many trigrams, an indexer far behind), the list is the ordered scan with LIKE, its count
stopping at paging's bound.

The index is written by `index_pending`, run by the sync worker (not by imports, whose speed is budgeted).
"""

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

from services.extensions import db
from services.paging import union_of_cut

log = logging.getLogger(__name__)

# A search uses the index when its rarest trigram lists at most this many texts...
TEXTS_MAX = 20_000
# ... and its candidates (plus the tail) are at most this many findings.
CANDIDATES_MAX = 10_000
# More unindexed findings than this: the indexer is far behind, LIKE alone answers.
TAIL_MAX = 50_000
# The query's rarest trigrams whose texts are intersected: at most this many, and only those listing at
# most GRAM_LIST_RATIO times as many texts as the rarest (reading a long list costs more than checking
# LIKE on the few extra texts a shorter intersection lets through).
GRAMS_USED = 3
GRAM_LIST_RATIO = 5
# A hole (an id the indexer passed while it was missing) is looked at again until this old.
HOLE_TTL = timedelta(hours=24)
BUCKET = 0  # the gram of texts that are not plain ASCII
INDEX_BATCH = 2000


def escape_like(text: str) -> str:
    r"""`text` as a literal inside a LIKE pattern with ESCAPE '\' (so % and _ match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(columns, text: str) -> sa.ColumnElement:
    """Any of `columns` contains `text` (LIKE '%text%', the collation's case rules)."""
    pattern = f"%{escape_like(text)}%"
    return sa.or_(*(column.like(pattern, escape="\\") for column in columns))


# --- trigrams -------------------------------------------------------------------------------------------


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _run_grams(run: str) -> set[int]:
    low = run.lower()
    return {(ord(a) << 16) | (ord(b) << 8) | ord(c) for a, b, c in zip(low, low[1:], low[2:], strict=False)}


def text_grams(text: str) -> set[int]:
    """The trigrams a text is listed under: those of its lower-cased form if it is printable ASCII of at
    least 3 characters, else only the bucket (under a case-insensitive, accent-insensitive collation `é`
    matches `e`, and ignorable characters match nothing: byte trigrams would miss such matches)."""
    return _run_grams(text) if _plain(text) and len(text) >= 3 else {BUCKET}


def query_grams(q: str) -> set[int]:
    """Trigrams every plain text containing `q` contains: those of q's printable ASCII runs (a plain text
    matches any other character of q with plain characters, so only the runs are known to be there)."""
    grams: set[int] = set()
    run = []
    for char in q + "\x00":
        if _plain(char):
            run.append(char)
            continue
        grams |= _run_grams("".join(run))
        run = []
    return grams


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


# --- searching ------------------------------------------------------------------------------------------


class TextMatch(NamedTuple):
    """What the index says of a query: `texts`, the ids of the texts that contain it (LIKE already
    checked on them: exact), and the watermark, below which every finding outside the holes is indexed."""

    texts: sa.Select
    indexed_to: int
    holes: list[tuple[int, int]]

    def unindexed(self, finding_id) -> sa.ColumnElement:
        """The criterion on a finding id column of the findings the index does not cover (the tail)."""
        return sa.or_(finding_id > self.indexed_to, *(finding_id.between(lo, hi) for lo, hi in self.holes))


def match_texts(q: str) -> TextMatch | None:
    """The texts that contain `q` (a select of their ids), or None when the index would not help (a
    query whose every trigram is common, one or two characters found in too many trigrams, too many
    texts that are not plain ASCII, an indexer far behind): then LIKE alone filters."""
    from services.models import Finding, SearchGram, SearchGramCount, SearchText

    grams = query_grams(q)
    if grams:
        counts = dict(
            db.session.execute(
                sa.select(SearchGramCount.gram, SearchGramCount.texts).where(
                    SearchGramCount.gram.in_([*grams, BUCKET])
                )
            ).all()
        )
        rarest = sorted(grams, key=lambda gram: (counts.get(gram, 0), gram))[:GRAMS_USED]
        fewest = counts.get(rarest[0], 0)
        if fewest > TEXTS_MAX:
            return None
        listed = _texts_with_all([g for g in rarest if counts.get(g, 0) <= GRAM_LIST_RATIO * max(fewest, 1)])
    elif _plain(q) and len(q) < 3:
        # One or two characters: the texts of every trigram that contains them (a plain text of 3 or
        # more characters that contains q has one), when those are few.
        counts = _grams_containing(q.lower())
        if sum(counts.values()) > TEXTS_MAX:
            return None
        listed = sa.select(SearchGram.text_id).where(SearchGram.gram.in_(list(counts)))
        counts[BUCKET] = db.session.scalar(
            sa.select(SearchGramCount.texts).where(SearchGramCount.gram == BUCKET)
        )
    else:
        return None
    if (counts.get(BUCKET) or 0) > TEXTS_MAX:
        return None
    indexed_to, holes = _watermark()
    newest = db.session.scalar(sa.select(sa.func.max(Finding.id))) or 0
    if newest - indexed_to > TAIL_MAX:
        return None
    pattern = f"%{escape_like(q)}%"
    # The listed texts and the bucket (texts that are not plain ASCII: never listed under a trigram),
    # checked with LIKE. The two never share a text.
    bucket = sa.select(SearchGram.text_id).where(SearchGram.gram == BUCKET)
    texts = sa.union_all(
        *(
            sa.select(SearchText.id).where(
                SearchText.id.in_(source), SearchText.text.like(pattern, escape="\\")
            )
            for source in (listed, bucket)
        )
    )
    return TextMatch(sa.select(texts.subquery().c.id), indexed_to, holes)


def finding_ids(q: str, site_ids: list[int] | None, ranks: list[int] | None = None) -> list[int] | None:
    """Ids of findings that may contain `q` in title or location (every one that does), of `site_ids`
    (None: every site) and with a severity rank in `ranks` (None: any); None when the index would not
    help (then LIKE alone filters)."""
    from services.models import Finding, SearchRef

    if site_ids == []:
        return []
    match = match_texts(q)
    if match is None:
        return None
    refs, tail = _narrowed(
        sa.select(SearchRef.finding_id),
        sa.select(Finding.id).where(
            match.unindexed(Finding.id), contains_text((Finding.title, Finding.location), q)
        ),
        site_ids,
        ranks,
    )
    texts = db.session.scalars(match.texts).all()
    ids: set[int] = set()
    for start in range(0, len(texts), 1000):
        chunk = refs.where(SearchRef.text_id.in_(texts[start : start + 1000]))
        # A finding has at most 2 references (title, location): reading 2 x (bound + 1) of them, a cut
        # answer always holds more than the bound, never too few. (DISTINCT with a LIMIT went through a
        # temporary table: 150 ms for the 12,500 references of "redirect" at 100,000 findings.)
        ids.update(db.session.scalars(chunk.limit(2 * (CANDIDATES_MAX + 1))).all())
        if len(ids) > CANDIDATES_MAX:
            return None

    # The tail: not indexed yet, checked with LIKE (an id range of the primary key).
    ids.update(db.session.scalars(tail.limit(CANDIDATES_MAX + 1)).all())
    if len(ids) > CANDIDATES_MAX:
        return None
    return sorted(ids)


# The orders a search's page is read in off the references: (column, descending) of the merged rows.
REF_ORDERS = {
    "-severity": (("rank", True), ("id", True)),
    "severity": (("rank", False), ("id", False)),
    "-id": (("id", True),),
    "id": (("id", False),),
}


def page_by_refs(
    q: str,
    site_ids: list[int] | None,
    ranks: list[int] | None,
    sort: str,
    per_page: int,
    offset: int,
    bound: int,
) -> tuple[list[int], int, bool] | None:
    """One page of the findings of `site_ids` (None: every site) with a severity rank in `ranks` (None:
    any) that contain `q`, in a REF_ORDERS order: (the page's finding ids in order, total, whether the
    total is a bound: more than `bound` match). None when the index would not help.

    Read off the references of the matching texts, which carry each finding's site and severity, plus
    the unindexed findings with LIKE, each side cut at what the page (or the count) needs and merged by
    the database: a common word's first page no longer walks every finding of a higher severity than its
    matches (1.6 s for `redirect` at 1M findings)."""
    from services.models import Finding, SearchRef

    if site_ids == []:
        return [], 0, False
    match = match_texts(q)
    if match is None:
        return None
    # Indexed findings by their references, the others (the tail) by LIKE: the two never overlap, and
    # a finding has at most two references (its title and its location may both contain q).
    refs, tail = _narrowed(
        sa.select(SearchRef.finding_id.label("id"), ref_rank().label("rank")).where(
            SearchRef.text_id.in_(_texts_once(match.texts)), sa.not_(match.unindexed(SearchRef.finding_id))
        ),
        sa.select(Finding.id.label("id"), Finding.severity_rank.label("rank")).where(
            match.unindexed(Finding.id), contains_text((Finding.title, Finding.location), q)
        ),
        site_ids,
        ranks,
    )
    columns = {"refs": {"id": SearchRef.finding_id, "rank": ref_rank()},
               "tail": {"id": Finding.id, "rank": Finding.severity_rank}}  # fmt: skip

    # The count: the first 2 x (bound + 1) rows, in any order; if that many came, more than `bound`
    # findings match.
    cut = 2 * (bound + 1)
    found = set(
        db.session.scalars(sa.select(union_of_cut((refs.limit(cut), tail.limit(cut))).c.id).limit(cut))
    )
    total = min(len(found), bound)
    estimate = len(found) > bound
    if offset >= total and not estimate:
        return [], total, False

    # The page: each side's first rows in the order (twice the rows the page needs: a finding may come
    # twice), merged.
    need = 2 * (offset + per_page)
    order = REF_ORDERS[sort]

    def first_rows(part, side):
        cols = columns[side]
        return part.order_by(
            *(cols[name].desc() if desc else cols[name].asc() for name, desc in order)
        ).limit(need)

    merged = union_of_cut((first_rows(refs, "refs"), first_rows(tail, "tail")))
    rows = db.session.scalars(
        sa.select(merged.c.id)
        .order_by(*(merged.c[name].desc() if desc else merged.c[name].asc() for name, desc in order))
        .limit(need)
    ).all()
    ids = list(dict.fromkeys(rows))  # in order, each once
    return ids[offset : offset + per_page], total, estimate


def _narrowed(refs: sa.Select, tail: sa.Select, site_ids, ranks) -> tuple[sa.Select, sa.Select]:
    """A search's references and its tail (unindexed findings), both kept to `site_ids` and `ranks`
    (None: any)."""
    from services.models import Finding

    if site_ids is not None:
        refs, tail = refs.where(_site_in(site_ids)), tail.where(Finding.site_id.in_(site_ids))
    if ranks is not None:
        refs, tail = refs.where(ref_rank().in_(ranks)), tail.where(Finding.severity_rank.in_(ranks))
    return refs, tail


def ref_rank() -> sa.ColumnElement:
    """A reference's severity rank: its own, or its finding's when a worker older than the column wrote
    it (during an upgrade; the subquery runs for those references only)."""
    from services.models import Finding, SearchRef

    of_finding = sa.select(Finding.severity_rank).where(Finding.id == SearchRef.finding_id).scalar_subquery()
    return sa.func.coalesce(SearchRef.severity_rank, of_finding)


def _site_in(site_ids: list[int]) -> sa.ColumnElement:
    """References of `site_ids`, checked on each reference read by text rather than as a range of the
    (text_id, site_id, ...) key: with both lists MariaDB may take every (text, site) pair for a range of
    its own (90 texts x 55 sites for an operator's `site9801.example` at 1M findings: 50 ms, against
    16 ms checked on each reference)."""
    from services.models import SearchRef

    return (SearchRef.site_id + 0).in_(site_ids)


# Up to this many matching texts are read once and sent as a list to the statements that use them.
TEXT_LIST_MAX = 5000


def _texts_once(texts: sa.Select) -> list[int] | sa.Select:
    """The matching texts' ids as a list when they are few (the count and the page both use them: as a
    subquery, each statement intersected the trigram lists again, 20 ms each for login/42 at 1M), else
    the subquery itself."""
    ids = db.session.scalars(texts.limit(TEXT_LIST_MAX + 1)).all()
    return ids if len(ids) <= TEXT_LIST_MAX else texts


def _texts_with_all(grams: list[int]) -> sa.Select:
    """Texts listed under every one of `grams`: their (gram, text_id) index ranges read in order and
    grouped. (Probing the primary key for each text of the rarest list instead was random reads in a
    table of 2.3 GB at 1M findings: 15 to 250 ms, against 4 to 20 ms for the ranges.)"""
    from services.models import SearchGram

    listed = sa.select(SearchGram.text_id).where(SearchGram.gram.in_(grams))
    if len(grams) == 1:
        return listed
    return listed.group_by(SearchGram.text_id).having(sa.func.count() == len(grams))


def _grams_containing(chars: str) -> dict[int, int]:
    """{gram: texts} of the trigrams that contain `chars` (1 or 2 lower-cased characters)."""
    from services.models import SearchGramCount

    gram = SearchGramCount.gram
    codes = [ord(char) for char in chars]
    if len(codes) == 2:
        pair = (codes[0] << 8) | codes[1]
        where = sa.or_(gram.between(pair << 8, (pair << 8) | 0xFF), gram.op("&")(0xFFFF) == pair)
    else:
        code = codes[0]
        where = sa.or_(
            gram.between(code << 16, (code << 16) | 0xFFFF),
            gram.op("&")(0xFF00) == code << 8,
            gram.op("&")(0xFF) == code,
        )
    return dict(db.session.execute(sa.select(gram, SearchGramCount.texts).where(where, gram != BUCKET)).all())


def _watermark() -> tuple[int, list[tuple[int, int]]]:
    from services.models import SearchHole, SearchState

    indexed_to = db.session.scalar(sa.select(SearchState.value).where(SearchState.name == "indexed_to")) or 0
    holes = db.session.execute(sa.select(SearchHole.lo, SearchHole.hi).order_by(SearchHole.lo)).all()
    return indexed_to, [tuple(hole) for hole in holes]


# --- indexing (the sync worker) -------------------------------------------------------------------------


def reindex(finding_ids: list[int]) -> None:
    """Call after changing the title or location of findings (nothing does today: imports never change
    them): they are searched with LIKE until the indexer has taken their new texts, in the caller's
    transaction."""
    from services.models import SearchHole

    now = datetime.now(UTC)
    db.session.add_all(SearchHole(lo=i, hi=i, found_at=now) for i in sorted(set(finding_ids)))


def index_pending(
    batch: int = INDEX_BATCH, budget_s: float = 30.0, pause: Callable[[], bool] | None = None
) -> int:
    """Index findings the index has not reached, batch by batch (one transaction each), for at most
    `budget_s` and while `pause()` is false (checked before each batch); returns how many findings were
    indexed. Several workers may call it: on MySQL a named lock lets one at a time in, the others
    return 0."""
    engine = db.engine
    if engine.dialect.name == "mysql":
        from services.locks import lock_name, mysql_named_lock

        with mysql_named_lock(engine, lock_name("ce_search_", engine, "index")) as acquired:
            return _index_pending(batch, budget_s, pause) if acquired else 0
    return _index_pending(batch, budget_s, pause)


def _index_pending(batch: int, budget_s: float, pause: Callable[[], bool] | None) -> int:
    from services.models import Finding, SearchHole

    deadline = time.monotonic() + budget_s
    done = _recheck_holes()
    while time.monotonic() < deadline and not (pause is not None and pause()):
        indexed_to, _ = _watermark()
        rows = db.session.execute(
            sa.select(Finding.id, Finding.site_id, Finding.severity_rank, Finding.title, Finding.location)
            .where(Finding.id > indexed_to)
            .order_by(Finding.id)
            .limit(batch)
        ).all()
        if not rows:
            db.session.commit()
            break
        _index_rows(rows, fresh=True)
        # The ids missing between those read: one hole per batch at most, from the first gap to the last
        # (indexed findings inside it are checked with LIKE again, which is harmless), so that searches
        # never carry thousands of small ranges.
        ids = [row.id for row in rows]
        gaps = [(a + 1, b - 1) for a, b in zip([indexed_to, *ids], ids, strict=False) if b > a + 1]
        if gaps:
            db.session.add(SearchHole(lo=gaps[0][0], hi=gaps[-1][1], found_at=datetime.now(UTC)))
        _set_watermark(rows[-1].id)
        db.session.commit()
        done += len(rows)
        if len(rows) < batch:
            break
    if done:
        log.info("search index: %d findings indexed (up to id %d)", done, _watermark()[0])
    return done


def _set_watermark(value: int) -> None:
    from services.models import SearchState

    updated = db.session.execute(
        sa.update(SearchState).where(SearchState.name == "indexed_to").values(value=value)
    ).rowcount
    if not updated:
        db.session.add(SearchState(name="indexed_to", value=value))
        db.session.flush()


def _recheck_holes() -> int:
    """Index what appeared in holes since (findings committed late, or changed), and forget holes older
    than HOLE_TTL once looked at a last time."""
    from services.models import Finding, SearchHole

    holes = db.session.scalars(sa.select(SearchHole).order_by(SearchHole.lo)).all()
    if not holes:
        return 0
    now = datetime.now(UTC)
    found = 0
    for hole in holes:
        rows = db.session.execute(
            sa.select(
                Finding.id, Finding.site_id, Finding.severity_rank, Finding.title, Finding.location
            ).where(Finding.id.between(hole.lo, hole.hi))
        ).all()
        if rows:
            _index_rows(rows, fresh=False)
            found += len(rows)
        found_at = hole.found_at if hole.found_at.tzinfo else hole.found_at.replace(tzinfo=UTC)
        if now - found_at > HOLE_TTL or (hole.lo == hole.hi and rows):
            # A single changed finding is done once indexed again; a gap is kept for late commits.
            db.session.delete(hole)
    db.session.commit()
    return found


def _index_rows(rows, fresh: bool) -> None:
    """Texts, trigrams and references of `rows` (id, site_id, severity_rank, title, location). `fresh`:
    never indexed before (else their old references are replaced)."""
    from services.models import SearchRef, SearchText

    by_digest: dict[str, str] = {}
    wanted: list[tuple[str, int, int, int]] = []  # (digest, site_id, finding_id, severity_rank)
    for row in rows:
        for text in {row.title, row.location}:
            if not text:
                continue
            digest = _digest(text)
            by_digest[digest] = text
            wanted.append((digest, row.site_id, row.id, row.severity_rank))
    if not fresh:
        db.session.execute(sa.delete(SearchRef).where(SearchRef.finding_id.in_([row.id for row in rows])))
    text_ids = _text_ids(list(by_digest))
    new = {digest: text for digest, text in by_digest.items() if digest not in text_ids}
    if new:
        db.session.execute(sa.insert(SearchText), [{"digest": d, "text": t} for d, t in new.items()])
        added = _text_ids(list(new))
        text_ids.update(added)
        gram_rows = []
        counts: Counter = Counter()
        for digest, text in new.items():
            grams = text_grams(text)
            counts.update(grams)
            gram_rows += [{"gram": gram, "text_id": added[digest]} for gram in grams]
        _insert_ignore("search_grams", gram_rows)
        _add_counts(counts)
    _insert_ignore(
        "search_refs",
        [
            {"text_id": text_ids[d], "site_id": site, "finding_id": finding, "severity_rank": rank}
            for d, site, finding, rank in wanted
        ],
    )


def _text_ids(digests: list[str]) -> dict[str, int]:
    from services.models import SearchText

    found = {}
    for start in range(0, len(digests), 1000):
        found.update(
            db.session.execute(
                sa.select(SearchText.digest, SearchText.id).where(
                    SearchText.digest.in_(digests[start : start + 1000])
                )
            ).all()
        )
    return found


def _insert_ignore(table_name: str, rows: list[dict]) -> None:
    if not rows:
        return
    table = db.metadata.tables[table_name]
    statement = sa.insert(table).prefix_with("IGNORE" if db.engine.dialect.name == "mysql" else "OR IGNORE")
    for start in range(0, len(rows), 5000):
        db.session.execute(statement, rows[start : start + 5000])


def _add_counts(counts: Counter) -> None:
    table = db.metadata.tables["search_gram_counts"]
    rows = [{"gram": gram, "texts": number} for gram, number in counts.items()]
    if db.engine.dialect.name == "mysql":
        statement = mysql.insert(table)
        statement = statement.on_duplicate_key_update(texts=table.c.texts + statement.inserted.texts)
    else:
        statement = sqlite.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["gram"], set_={"texts": table.c.texts + statement.excluded.texts}
        )
    for start in range(0, len(rows), 5000):
        db.session.execute(statement, rows[start : start + 5000])
