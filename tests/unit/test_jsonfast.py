"""``jsonfast.loads`` gives exactly what ``json.loads`` gives, for strict JSON and for what
only Python's json accepts (NaN, numbers beyond a float, a byte-order mark, lone surrogates)."""

import json
import math

import pytest

from canvas_aspen import jsonfast

DOCUMENTS = [
    b'{"a": 1, "b": [1.5, -0.0, null, true, "caf\\u00e9", "caf\xc3\xa9"]}',
    b"12345678901234567890123456789",
    b'{"a": 1, "a": 2}',
    b"[1.7976931348623157e308, 5e-324, 0.1, 1E2]",
    b"[NaN, Infinity, -Infinity, 1e400]",
    b"\xef\xbb\xbf[1]",
    b'"\\ud800"',
    b"  [1]  ",
]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def _outcome(loads, doc):
    try:
        return "value", loads(doc)
    except ValueError:
        return "ValueError", None


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_loads_answers_what_json_answers(doc, as_text):
    if as_text:
        doc = doc.decode("utf-8", "surrogatepass")
    (kind, got), (want_kind, want) = _outcome(jsonfast.loads, doc), _outcome(json.loads, doc)
    assert kind == want_kind and _same(got, want)


@pytest.mark.parametrize("doc", [b"", b"[1] x", b"{", b"not json", b"\xff\xfe"])
def test_loads_refuses_what_json_refuses(doc):
    with pytest.raises(ValueError):
        json.loads(doc)
    with pytest.raises(ValueError):
        jsonfast.loads(doc)
