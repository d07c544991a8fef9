"""Hardened, streamed XML reading for scanner reports (ZAP, Burp, Nikto, Wapiti).

Hardened: defusedxml's expat reader refuses every entity declaration (so no billion laughs and no
external entity, which is how an XML report would read /etc/passwd or call a URL), and it is set to
never read an external DTD (Nikto names one on its DOCTYPE line; it is not needed). An internal DTD
with only element and attribute declarations, as Burp writes, is fine. Documents nested deeper than
MAX_DEPTH elements are refused at the first element too deep, and so are documents that would have
more than MAX_KEPT elements held at once (say, millions of them inside one ZAP alert).

Streamed: the reader is fed the report chunk by chunk and `iter_xml` keeps only what the caller still
needs. The caller names the elements it reads (`ends`: a ZAP <alertitem>, an <instance> inside it, a
bulky <requestresponse> it wants gone); each is handed over whole at its end and then detached from
the tree, and every element outside them is detached as soon as it ends. So memory holds one such
element at a time (without those nested in it, already handed over), whatever the report's size.

Why not ElementTree's iterparse: it parses with namespaces on, and Wapiti writes `xsi:nil` without
declaring `xsi` (an "unbound prefix" error there); none of these reports uses namespaces. And its
16 KB reads meet an expat (before 2.6) that re-scans an unfinished token (an attribute, a comment) from
its start on every read: a 200 MB attribute would take hours. Here the chunks double while no
element starts or ends, which keeps that linear.

Errors are `ReportError`s that say where: line and column of malformed XML, "truncated?" when the
document stops before its end.
"""

from collections.abc import Iterator
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat
from xml.sax import SAXParseException

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.expatreader import DefusedExpatParser

from services.parsers.base import ReportError

MAX_DEPTH = 64  # real reports nest 6 levels at most
MAX_KEPT = 500_000  # elements held at once (a real alert, issue or entry has tens): about 100 MB
CHUNK = 1 << 16
MAX_CHUNK = 1 << 23
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def is_xml(head: bytes) -> bool:
    """Whether a report's first bytes are XML (after a byte-order mark and whitespace)."""
    if head.startswith(UTF16_BOMS):
        head = head[2:].replace(b"\x00", b"")
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1] == b"<"


def text(element: Element | None, child: str | None = None) -> str | None:
    """The stripped text of `element` (or of its first `child`); None when absent or blank."""
    if element is not None and child is not None:
        element = element.find(child)
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None


def child_texts(element: Element) -> dict[str, str | None]:
    """{name: text} of an element's children (the last one of a name wins)."""
    return {node.tag: node.text for node in element}


class _ReportReader(DefusedExpatParser):
    """defusedxml's expat reader (no namespaces) that never reads an external DTD. It builds the elements
    with ElementTree's TreeBuilder, keeps or detaches them as `iter_xml` says, and notes in `handed` the
    ("start" | "end", element, parent) to hand over.

    Expat calls `start` and `end` (set up in `reset`) directly, past the SAX layer (ContentHandler,
    AttributesImpl), and TreeBuilder's own `data` for text: an element inside one being kept costs one
    Python call at its start and one at its end, and nothing else.
    """

    def __init__(self, roots: tuple[str, ...], ends: frozenset[str], starts: frozenset[str], what: str):
        super().__init__(forbid_dtd=False, forbid_entities=True, forbid_external=True)
        self.roots, self.ends, self.starts, self.what = roots, ends, starts, what
        self.handed: list[tuple[str, Element, Element | None]] = []
        self.started = 0  # elements started so far
        self.held = 0  # elements kept and not detached yet

    def reset(self):
        super().reset()  # a new expat parser with defusedxml's handlers
        parser = self._parser
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        builder = TreeBuilder()
        roots, ends, starts, what, handed = self.roots, self.ends, self.starts, self.what, self.handed
        stack: list[Element] = []
        kept = 0  # how many open elements are `ends`, whose subtree is kept until they end

        def start(name, attrs):
            nonlocal kept
            if len(stack) >= MAX_DEPTH:
                raise ReportError(f"{what} nests elements more than {MAX_DEPTH} deep")
            if not stack and name not in roots:
                expected = " or ".join(f"<{root}>" for root in roots)
                raise ReportError(f"{what} must be a {expected} document, found <{name[:40]}>")
            element = builder.start(name, attrs)
            stack.append(element)
            self.started += 1
            if kept or name in ends:
                self.held += 1
                if self.held > MAX_KEPT:
                    part = next(node.tag for node in stack if node.tag in ends)
                    raise ReportError(f"{what} has more than {MAX_KEPT:,} elements in one <{part}>")
            if name in ends:
                kept += 1
            if name in starts:
                handed.append(("start", element, None))

        def end(name):
            nonlocal kept
            element = builder.end(name)
            stack.pop()
            if name in ends:
                kept -= 1
                handed.append(("end", element, stack[-1] if stack else None))
            elif not kept and stack:
                stack[-1].remove(element)  # nobody reads it: gone (the one child attached, constant time)

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = builder.data
        parser.buffer_text = True


def iter_xml(
    stream,
    *,
    roots: tuple[str, ...],
    ends: frozenset[str],
    starts: frozenset[str] = frozenset(),
    what: str = "the report",
) -> Iterator[tuple[str, Element]]:
    """Yield ("start", element) for `starts` (attributes complete, children not yet read) and
    ("end", element) for `ends`, in document order. The root must be one of `roots`.
    An element handed over at its end is detached and cleared when the caller asks for the next one.
    """
    reader = _ReportReader(roots, ends, starts, what)
    size = CHUNK
    done = False
    while not done:
        data = stream.read(size)
        done = not data
        started = reader.started
        _feed(reader, data, what)
        size = CHUNK if reader.started > started else min(size * 2, MAX_CHUNK)
        for event, element, parent in reader.handed:
            yield event, element
            if parent is not None:
                reader.held -= sum(1 for _ in element.iter())
                parent.remove(element)
                element.clear()
        reader.handed.clear()


def _feed(reader: _ReportReader, data: bytes, what: str) -> None:
    """Parse the next chunk (or, given b"", finish the document); ReportError for anything wrong."""
    try:
        if data:
            reader.feed(data)
        else:
            reader.close()
    except ReportError:
        raise  # the reader's own: nested too deep, not the expected document
    except SAXParseException as exc:
        where = f"at line {exc.getLineNumber()} column {exc.getColumnNumber() + 1}"
        if not data:
            raise ReportError(f"{what} ends too early (truncated?): {exc.getMessage()} {where}") from None
        raise ReportError(f"{what} is not valid XML: {exc.getMessage()} {where}") from None
    except EntitiesForbidden:
        raise ReportError(
            f"{what} declares XML entities (<!ENTITY ...>), which cloudeye refuses: no scanner writes them"
        ) from None
    except (ExternalReferenceForbidden, DTDForbidden):
        raise ReportError(f"{what} refers to an external entity or DTD, which cloudeye refuses") from None
    except DefusedXmlException as exc:
        raise ReportError(f"{what} uses an XML feature cloudeye refuses: {exc}") from None
    except (UnicodeError, ValueError) as exc:
        raise ReportError(f"{what} cannot be read as XML: {exc}") from None
