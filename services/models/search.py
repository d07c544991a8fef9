"""The substring index of findings' titles and locations (services/search.py; docs/domain.md, "Search").

Texts are stored once however many findings carry them; each plain (printable ASCII) text is listed under
every trigram of its lower-cased form; the findings point at their texts. None of it is written by the
import: the sync worker indexes findings after they are written (`indexed_to`, `search_holes`)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.extensions import db
from services.models.base import BigId, UTCDateTime, utcnow


class SearchText(db.Model):
    """One distinct title or location."""

    __tablename__ = "search_texts"
    __table_args__ = (sa.UniqueConstraint("digest", name="uq_search_texts_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(sa.String(40))  # sha1 of the exact text
    # The type of findings.location (the longer of the two), so LIKE compares the same way.
    text: Mapped[str] = mapped_column(sa.String(2048))


class SearchGram(db.Model):
    """A trigram (three lower-cased ASCII bytes as an integer) and a text that contains it; gram 0 lists
    the texts that are not plain ASCII, which every search checks.

    The primary key is (text_id, gram): new texts have the highest ids, so the indexer appends to it;
    searches read (gram, text_id), a secondary index whose random inserts InnoDB buffers. Keyed by gram
    first, every batch wrote into pages all over a table bigger than the buffer pool (220 findings/s
    once it passed 300 MB, against about 1,200 at the start)."""

    __tablename__ = "search_grams"
    __table_args__ = (sa.Index("ix_search_grams_gram", "gram", "text_id"),)

    text_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    gram: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)


class SearchGramCount(db.Model):
    """How many texts each trigram lists: a search starts from its query's rarest trigrams."""

    __tablename__ = "search_gram_counts"

    gram: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    texts: Mapped[int] = mapped_column(sa.Integer, default=0)


class SearchRef(db.Model):
    """A finding whose title or location is the text, with the finding's severity rank. Goes with its
    finding (ON DELETE CASCADE)."""

    __tablename__ = "search_refs"
    __table_args__ = (sa.Index("ix_search_refs_finding", "finding_id"),)

    text_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    finding_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # The finding's, which never changes: a search's page in severity order is read off the references.
    # NULL on references a worker older than the column wrote during an upgrade (search.ref_rank).
    severity_rank: Mapped[int | None] = mapped_column(sa.SmallInteger)


class SearchState(db.Model):
    """`indexed_to`: every finding with an id up to it was indexed (but those in `search_holes`)."""

    __tablename__ = "search_state"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class SearchHole(db.Model):
    """Ids at or below `indexed_to` that were missing when the indexer passed them: a transaction still
    open may yet commit findings there (or a finding was changed: `search.reindex`). Searches scan them
    with LIKE; the indexer looks at them again until they are `HOLE_TTL` old."""

    __tablename__ = "search_holes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lo: Mapped[int] = mapped_column(sa.BigInteger)
    hi: Mapped[int] = mapped_column(sa.BigInteger)
    found_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
