"""The console's input: a byte stream cut into command lines, with a terminal's line editing.

A script sends whole lines and never the editing bytes, so for a script this
is a plain line splitter and the protocol is exactly what it always was. A
person at picocom or miniterm makes typing mistakes and presses keys that
send control bytes, so the splitter also does what a terminal's cooked mode
does (Linux ``n_tty``, a router's console), in the same place:

- CR, LF and CR LF end a line (picocom sends CR for Enter, miniterm CR LF):
  an LF right after a CR is part of the same Enter, never a second one.
- Backspace (0x08) and DEL (0x7F) delete the last byte of the pending line;
  with nothing to delete, nothing happens.
- Ctrl-C (0x03) and Ctrl-U (0x15) cancel the pending line, an over-long one
  included, without a reply: the next line starts clean.
- Every other byte is kept, so a stray control byte or an arrow key's escape
  sequence still gets its ``ERR`` when the line is sent.

With echo on, what the person typed comes back as it arrives (printable
bytes as they are, a tab as a space, other control bytes in caret notation
such as ``^[``, bytes above 0x7F as ``?``), a deleted byte as ``"\\b \\b"``
per column it took, a cancelled line as ``^C`` or ``^U`` and CR LF, and each
Enter as CR LF, in order with the lines: the CR LF that ends a line always
comes before that line (so before its reply).

Memory is bounded whatever arrives: the pending line never holds more than
``max_line`` bytes. A line that would pass that gives one ``None`` at once
(the caller's ``ERR``, on its own line when echoing) and the rest of it, up to
its terminator (or a Ctrl-C), is discarded without echo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Echo", "Item", "LineSplitter", "echo_of"]

CR, LF, BS, DEL, CTRL_C, CTRL_U = 0x0D, 0x0A, 0x08, 0x7F, 0x03, 0x15
#: Bytes the splitter acts on; every other byte is text of the pending line.
SPECIAL = re.compile(rb"[\r\n\x03\x08\x15\x7f]")
ERASE = b"\b \b"
CANCEL_ECHO = {CTRL_C: b"^C\r\n", CTRL_U: b"^U\r\n"}


def echo_of(byte: int) -> bytes:
    """What a terminal shows for a text byte: one or two printable columns, never a control."""
    if byte == 0x09:
        return b" "  # a tab's width depends on the column: a space is erasable
    if 0x20 <= byte < 0x7F:
        return bytes([byte])
    if byte < 0x20:
        return b"^" + bytes([byte + 0x40])  # ESC shows as ^[, as the tty's ECHOCTL does
    return b"?"


ECHO = [echo_of(b) for b in range(256)]


@dataclass(frozen=True, slots=True)
class Echo:
    """Bytes to send back to the terminal, in their place among the lines."""

    data: bytes


#: What :meth:`LineSplitter.feed` gives: a line, echo, or ``None`` for an over-long line.
Item = bytes | Echo | None


class LineSplitter:
    """Cuts a byte stream into edited lines in bounded memory, however the bytes are chunked.

    Blank lines (whitespace only) are dropped. Feeding the same bytes in any
    chunks gives the same items, once adjacent echoes are joined.
    """

    def __init__(self, max_line: int) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False  # an over-long line, until its terminator
        self._after_cr = False  # the last byte was a CR: an LF now is the same Enter
        self._echo = bytearray()  # echo of this feed not yet placed among its items

    def feed(self, data: bytes, echo: bool = False) -> list[Item]:
        """The items ``data`` completes, in order; echo items only when ``echo``."""
        out: list[Item] = []
        pos = 0
        for match in SPECIAL.finditer(data):
            self._text(data[pos : match.start()], echo, out)
            self._control(data[match.start()], echo, out)
            pos = match.end()
        self._text(data[pos:], echo, out)
        self._flush(out)
        return out

    def _emit(self, out: list[Item], item: bytes | None) -> None:
        """A line (or None) after the echo that came before it."""
        self._flush(out)
        out.append(item)

    def _flush(self, out: list[Item]) -> None:
        if self._echo:
            out.append(Echo(bytes(self._echo)))
            self._echo.clear()

    def _text(self, run: bytes, echo: bool, out: list[Item]) -> None:
        """Bytes without any special byte: appended in one go (a script's whole command)."""
        if not run:
            return
        self._after_cr = False
        if self._discarding:
            return
        room = self.max_line - len(self._buf)
        kept = run[:room]
        self._buf += kept
        if echo:
            self._echo += b"".join(ECHO[b] for b in kept)
        if len(run) > room:
            self._buf.clear()
            self._discarding = True
            if echo:
                self._echo += b"\r\n"
            self._emit(out, None)

    def _control(self, byte: int, echo: bool, out: list[Item]) -> None:
        after_cr, self._after_cr = self._after_cr, byte == CR
        if byte in (CR, LF):
            if byte == LF and after_cr:
                return  # CR LF: one Enter
            if self._discarding:
                self._discarding = False  # its ERR and line end went out when it overflowed
                return
            line = bytes(self._buf)
            self._buf.clear()
            if echo:
                self._echo += b"\r\n"
            if line.strip():
                self._emit(out, line)
        elif byte in (BS, DEL):
            if self._buf and not self._discarding:
                erased = self._buf.pop()
                if echo:
                    self._echo += ERASE * len(ECHO[erased])
        else:  # Ctrl-C, Ctrl-U
            self._buf.clear()
            self._discarding = False
            if echo:
                self._echo += CANCEL_ECHO[byte]
