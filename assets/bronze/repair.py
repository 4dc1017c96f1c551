"""Well-defined repairs of malformed JSON documents, applied only when the strict parse fails.

Each repair has one unambiguous reading, so a repaired file means exactly what its sender meant:
- `bom`: a UTF-8 byte-order mark before the document;
- `trailing_commas`: a comma right before `]` or `}` (outside strings);
- `concatenated_values`: several top-level values back to back (`{..}{..}`, `[..][..]`);
- `json_lines`: one value per line in a `.json` file.
Anything else (truncation, unbalanced brackets, NaN/Infinity, invalid UTF-8) is not guessed at: the caller
quarantines the file with the parser's message.
"""

from __future__ import annotations

import codecs
import json
import math

import orjson


class JsonRepairError(ValueError):
    pass


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # The strict parse refuses a number beyond a double (1e400); the repair parse must not turn it into
    # infinity, which would be written out again as null.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is beyond a double")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json_document(data: bytes) -> tuple[list, list[str]]:
    """The top-level values of `data` and the repairs applied (empty when it was valid JSON)."""
    repairs: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        repairs.append("bom")
    try:
        return [orjson.loads(data)], repairs
    except orjson.JSONDecodeError as exc:
        strict_error = str(exc)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRepairError(f"not UTF-8: {exc}") from exc

    values = _values(text)
    if values is None:
        without_commas = _strip_trailing_commas(text)
        if without_commas != text:
            values = _values(without_commas)
            if values is not None:
                repairs.append("trailing_commas")
                text = without_commas
    if values is None:
        raise JsonRepairError(strict_error)
    if len(values) > 1:
        lines = [line for line in text.splitlines() if line.strip()]
        repairs.append("json_lines" if len(lines) == len(values) else "concatenated_values")
    elif not repairs:
        raise JsonRepairError(strict_error)
    return values, repairs


def _values(text: str) -> list | None:
    """All top-level values of `text` read back to back, or None if any part fails to parse."""
    values = []
    position = 0
    end = len(text)
    try:
        while True:
            while position < end and text[position].isspace():
                position += 1
            if position == end:
                return values or None
            value, position = _DECODER.raw_decode(text, position)
            values.append(value)
    except (ValueError, RecursionError):
        return None


def _strip_trailing_commas(text: str) -> str:
    out: list[str] = []
    in_string = False
    escaped = False
    pending_comma: int | None = None
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == ",":
            pending_comma = len(out)
        elif char in "]}" and pending_comma is not None:
            del out[pending_comma]
            pending_comma = None
        elif not char.isspace():
            pending_comma = None
        if char == '"':
            in_string = True
        out.append(char)
    return "".join(out)
