"""The console's line splitter and editor (camera/console_lines.py), against a reference model.

The model below takes one byte at a time and says what a terminal's cooked
mode would do with it; the splitter works on runs of bytes (a script's
whole command at C speed). Hypothesis checks they agree, however the bytes
are chunked, with and without echo.
"""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from camera.console_lines import Echo, Item, LineSplitter

CR, LF, BS, DEL, CTRL_C, CTRL_U, TAB = 0x0D, 0x0A, 0x08, 0x7F, 0x03, 0x15, 0x09


def shown(byte: int) -> bytes:
    """How the model's terminal shows a typed byte."""
    if byte == TAB:
        return b" "
    if 0x20 <= byte < 0x7F:
        return bytes([byte])
    if byte < 0x20:
        return f"^{chr(byte + 64)}".encode()
    return b"?"


def model(data: bytes, max_line: int, echo: bool) -> list[Item]:
    """The reference: one byte at a time, the simplest way to say what each byte does."""
    out: list[Item] = []
    shows = bytearray()
    line = bytearray()
    discarding = after_cr = False

    def emit(item: bytes | None) -> None:
        if shows:
            out.append(Echo(bytes(shows)))
            shows.clear()
        out.append(item)

    for byte in data:
        was_cr, after_cr = after_cr, byte == CR
        if byte in (CR, LF):
            if byte == LF and was_cr:
                continue
            if discarding:
                discarding = False
                continue
            shows.extend(b"\r\n")
            if bytes(line).strip():
                emit(bytes(line))
            line.clear()
        elif byte in (BS, DEL):
            if line and not discarding:
                shows.extend(b"\b \b" * len(shown(line.pop())))
        elif byte in (CTRL_C, CTRL_U):
            line.clear()
            discarding = False
            shows.extend(b"^C\r\n" if byte == CTRL_C else b"^U\r\n")
        elif discarding:
            pass
        elif len(line) == max_line:
            line.clear()
            discarding = True
            shows.extend(b"\r\n")
            emit(None)
        else:
            line.append(byte)
            shows.extend(shown(byte))
    if shows:
        out.append(Echo(bytes(shows)))
    return out if echo else [item for item in out if not isinstance(item, Echo)]


def joined(items: list[Item]) -> list[Item]:
    """Adjacent echoes as one: how the bytes were chunked must not matter beyond that."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, Echo) and out and isinstance(out[-1], Echo):
            out[-1] = Echo(out[-1].data + item.data)
        else:
            out.append(item)
    return out


def fed(data: bytes, max_line: int, echo: bool, cuts: list[int]) -> list[Item]:
    splitter = LineSplitter(max_line)
    items: list[Item] = []
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    for a, b in itertools.pairwise(bounds):
        items += splitter.feed(data[a:b], echo)
    return joined(items)


TOKENS = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\x08",
    b"\x7f",
    b"\x03",
    b"\x15",
    b" ",
    b"\t",
    b"\x1b",
    b"\x00",
    b"\xff",
    b"\x1b[A",
    b"ab",
    b"STATUS",
    b"x" * 7,
]
#: Editing keys twice as likely as any other token: they are what is under test.
KEYS = [b"\x08", b"\x7f", b"\x03", b"\x15"]
typed = st.lists(
    st.sampled_from(TOKENS + KEYS) | st.binary(max_size=4), min_size=1, max_size=60
).map(b"".join)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=8)
limits = st.integers(min_value=1, max_value=20)


@settings(max_examples=400)
@given(data=typed, cuts=cuts, max_line=limits, echo=st.booleans())
def test_the_splitter_does_what_the_reference_model_does(
    data: bytes, cuts: list[int], max_line: int, echo: bool
) -> None:
    assert fed(data, max_line, echo, cuts) == joined(model(data, max_line, echo))


@settings(max_examples=200)
@given(data=typed, cuts=cuts, max_line=limits)
def test_lines_are_bounded_clean_and_the_same_with_echo(
    data: bytes, cuts: list[int], max_line: int
) -> None:
    plain = fed(data, max_line, False, cuts)
    echoed = fed(data, max_line, True, cuts)
    assert plain == [item for item in echoed if not isinstance(item, Echo)]
    for line in plain:
        assert line is None or (0 < len(line) <= max_line and line.strip())
        assert line is None or not re.search(rb"[\r\n\x03\x08\x15\x7f]", line)
    # What goes back to a terminal never holds a control byte it would act on,
    # other than the three that draw the line: CR, LF and backspace.
    for item in echoed:
        if isinstance(item, Echo):
            assert not re.search(rb"[^\x20-\x7e\r\n\x08]", item.data), item


script = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\x00", b"\xff", b"ab", b"x" * 7]), max_size=60
).map(b"".join)


@settings(max_examples=200)
@given(data=script, cuts=cuts)
def test_a_script_sees_plain_line_splitting(data: bytes, cuts: list[int]) -> None:
    """Without editing bytes: CR, LF, CR LF end a line, blank lines go, long lines give one None."""
    lines = fed(data, 16, False, cuts)
    pieces = re.split(rb"[\r\n]", data)
    expected: list[bytes | None] = []
    for piece in pieces[:-1]:
        if len(piece) > 16:
            expected.append(None)
        elif piece.strip():
            expected.append(piece)
    expected += [None] if len(pieces[-1]) > 16 else []
    assert lines == expected


def test_enter_from_picocom_and_from_miniterm_is_one_line_and_one_line_end() -> None:
    for enter in (b"\r", b"\r\n", b"\n"):
        items = LineSplitter(256).feed(b"STATUS" + enter + b"VERSION" + enter, echo=True)
        assert items == [
            Echo(b"STATUS\r\n"),
            b"STATUS",
            Echo(b"VERSION\r\n"),
            b"VERSION",
        ], enter
    # CR, then CR LF, then LF: three Enters, three line ends (and no line: blank).
    assert LineSplitter(256).feed(b"\r\r\n\n", echo=True) == [Echo(b"\r\n" * 3)]
    assert LineSplitter(256).feed(b"\n\r", echo=True) == [Echo(b"\r\n" * 2)]


def test_editing() -> None:
    splitter = LineSplitter(256)
    assert splitter.feed(b"\x08\x7f", echo=True) == []  # nothing to delete: nothing happens
    assert splitter.feed(b"STAX\x08TUS\r", echo=True) == [Echo(b"STAX\b \bTUS\r\n"), b"STATUS"]
    # A control byte shows as two columns, and backspace erases both.
    assert splitter.feed(b"\x1b\x7f", echo=True) == [Echo(b"^[\b \b\b \b")]
    assert splitter.feed(b"STOP now\x03VERSION\r", echo=True) == [
        Echo(b"STOP now^C\r\nVERSION\r\n"),
        b"VERSION",
    ]
    assert splitter.feed(b"junk\x15MARK\n") == [b"MARK"]
    assert splitter.feed(b"\x1b[A\r") == [b"\x1b[A"]  # other control bytes stay, for the ERR


def test_an_over_long_line_ends_at_once_and_ctrl_c_clears_it() -> None:
    splitter = LineSplitter(4)
    assert splitter.feed(b"ABCDEFGH", echo=True) == [Echo(b"ABCD\r\n"), None]
    assert splitter.feed(b"more\x08\r\nSTOP\r", echo=True) == [Echo(b"STOP\r\n"), b"STOP"]
    assert splitter.feed(b"ABCDE\x03STOP\r") == [None, b"STOP"]
