"""Incremental JSON reading: walk a big array (or the members of an object) one item at a time.

`json.load` of a 100 MB report builds every item at once; this reader keeps only the text of the item
being decoded, so a nuclei JSON array or a generic report of any size is parsed in constant memory.
Each item is decoded by the standard library's `JSONDecoder.raw_decode`; the reader only finds the
commas and brackets between items. Errors are `ReportError`s that say where (line and column).
"""

import codecs
import json
from collections.abc import Iterator

from services.parsers.base import ReportError

WHITESPACE = " \t\r\n"
CHUNK = 1 << 16
COMPACT_AT = 1 << 16  # drop the consumed text once this much has piled up


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n")[0][:200]


def loads(data: bytes | str, where: str = "the report"):
    """`json.loads` whose every failure is a ReportError saying where."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{where} is not valid UTF-8 (byte {exc.start + 1})") from None
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"{where} is not valid JSON: {_reason(exc)}") from None


class JsonReader:
    def __init__(self, stream, chunk_size: int = CHUNK):
        self._stream = stream
        self._chunk = chunk_size
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._bytes_read = 0
        self._line_base = 1  # line number of self._buf[0]
        self._col_base = 0  # column of self._buf[0] on that line (0-based)
        self._started = False

    # -- reading -------------------------------------------------------------------------------------

    def _fill(self, at_least: int | None = None) -> bool:
        """Append more decoded text; False at the end of the stream."""
        if self._eof:
            return False
        data = self._stream.read(max(self._chunk, at_least or 0))
        try:
            text = self._utf8.decode(data or b"", final=not data)
        except UnicodeDecodeError as exc:
            raise ReportError(
                f"the report is not valid UTF-8 (byte {self._bytes_read + exc.start + 1})"
            ) from None
        self._bytes_read += len(data or b"")
        if not data:
            self._eof = True
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buf += text
        return bool(data) or bool(text)

    def _compact(self) -> None:
        if self._pos < COMPACT_AT:
            return
        dropped = self._buf[: self._pos]
        newlines = dropped.count("\n")
        if newlines:
            self._line_base += newlines
            self._col_base = len(dropped) - dropped.rfind("\n") - 1
        else:
            self._col_base += len(dropped)
        self._buf = self._buf[self._pos :]
        self._pos = 0

    def where(self, pos: int | None = None) -> str:
        pos = self._pos if pos is None else pos
        before = self._buf[:pos]
        newlines = before.count("\n")
        column = pos - before.rfind("\n") if newlines else self._col_base + pos + 1
        return f"line {self._line_base + newlines} column {column}"

    def peek(self) -> str:
        """The next non-whitespace character, without consuming it; '' at the end."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return ""

    def expect(self, char: str, what: str) -> None:
        found = self.peek()
        if found != char:
            if not found:
                raise ReportError(f"the report ends too early (truncated?): expected {what}")
            raise ReportError(f"invalid JSON at {self.where()}: expected {what}, found {found!r}")
        self._pos += 1

    def value(self):
        """Decode one complete JSON value at the current position."""
        if not self.peek():
            raise ReportError("the report ends too early (truncated?): expected a value")
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated string")
                # An error at the very end of the text read so far may only mean "read more".
                if not self._eof and (unterminated or exc.pos >= len(self._buf) - 8):
                    self._fill(len(self._buf) - self._pos)
                    continue
                if unterminated or exc.pos >= len(self._buf.rstrip()):
                    raise ReportError(
                        f"the report ends too early (truncated?) inside the value at {self.where()}"
                    ) from None
                raise ReportError(f"invalid JSON at {self.where(exc.pos)}: {exc.msg}") from None
            except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
                raise ReportError(f"invalid JSON at {self.where()}: {_reason(exc)}") from None
            if end >= len(self._buf) and not self._eof and self._fill():
                continue  # a number could go on in the next chunk
            self._pos = end
            self._compact()
            return obj

    def iter_array(self, what: str = "an array"):
        """Yield each item of the array at the current position."""
        self.expect("[", what)
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            char = self.peek()
            if char == ",":
                self._pos += 1
                if self.peek() == "]":
                    raise ReportError(f"invalid JSON at {self.where()}: trailing comma in {what}")
                continue
            if char == "]":
                self._pos += 1
                return
            if not char:
                raise ReportError(f"the report ends too early (truncated?): {what} is not closed")
            raise ReportError(f"invalid JSON at {self.where()}: expected ',' or ']' in {what}")

    def iter_object(self, what: str = "an object"):
        """Yield each key of the object at the current position; the caller consumes its value."""
        self.expect("{", what)
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                if not self.peek():
                    raise ReportError(f"the report ends too early (truncated?): {what} is not closed")
                raise ReportError(f"invalid JSON at {self.where()}: expected a property name in {what}")
            key = self.value()
            self.expect(":", "':' after a property name")
            yield key
            char = self.peek()
            if char == ",":
                self._pos += 1
                continue
            if char == "}":
                self._pos += 1
                return
            if not char:
                raise ReportError(f"the report ends too early (truncated?): {what} is not closed")
            raise ReportError(f"invalid JSON at {self.where()}: expected ',' or '}}' in {what}")

    def end(self) -> None:
        """Only whitespace may follow the document."""
        if self.peek():
            raise ReportError(f"unexpected data after the end of the JSON document at {self.where()}")


def iter_records(stream, what: str) -> Iterator[tuple[str, dict]]:
    """(where, object) for each object of a JSON-lines report or of a JSON array of objects (nuclei's
    `-jsonl` and `-json-export`, xray's `--json-output`). Blank lines are skipped; nothing at all is
    an empty report."""
    first = stream.readline().removeprefix(b"\xef\xbb\xbf")
    line_no = 1
    while first and not first.strip():  # skip leading blank lines
        first = stream.readline()
        line_no += 1
    if not first:
        return
    if first.lstrip().startswith(b"["):
        reader = JsonReader(Prepended(first, stream))
        for index, obj in enumerate(reader.iter_array(f"the array of {what}s"), 1):
            if not isinstance(obj, dict):
                raise ReportError(f"item {index}: a {what} must be a JSON object, found {type(obj).__name__}")
            yield f"item {index}", obj
        reader.end()
        return
    line = first
    while line:
        if line.strip():
            yield f"line {line_no}", _decode_line(line, line_no, what)
        line = stream.readline()
        line_no += 1


def _decode_line(line: bytes, line_no: int, what: str) -> dict:
    try:
        obj = json.loads(line.rstrip(b"\r\n"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"line {line_no} is not valid JSON: {exc.msg} (column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"line {line_no} is not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    except (ValueError, RecursionError):
        raise ReportError(f"line {line_no} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ReportError(f"line {line_no}: a {what} must be a JSON object, found {type(obj).__name__}")
    return obj


class Prepended:
    """A binary stream that first returns `head`, then the rest of `stream` (for a peeked prefix)."""

    def __init__(self, head: bytes, stream):
        self._head = head
        self._stream = stream

    def peek(self, size: int = 0) -> bytes:
        """The bytes not yet read of the prefix (what open_report looked at), without consuming them."""
        if self._head or not hasattr(self._stream, "peek"):
            return self._head
        return self._stream.peek(size)

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.readline(size)
        end = self._head.find(b"\n") + 1
        if end:
            line, self._head = self._head[:end], self._head[end:]
            return line
        line, self._head = self._head, b""
        return line + self._stream.readline()
