"""The common plain decimals take a shortcut through the value rules (`_plain_value`); for any
text at all, the answer (value, or refusal code) is the one the general rules give."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from metering import validation
from metering.validation import EventRejected, parse_event_value


def _answer(text: str):
    try:
        value = parse_event_value(text)
    except EventRejected as reject:
        return ("refused", reject.code, reject.message)
    return ("value", value, str(value))


def _general_answer(text: str):
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(validation, "_plain_value", lambda text: None)
        return _answer(text)


_decimals = st.from_regex(r"-?[0-9]{0,18}(\.[0-9]{0,15})?", fullmatch=True)


@given(text=st.one_of(_decimals, st.text(alphabet="0123456789.-eE_ +", max_size=24)))
@example(text="000000000000000000001")
@example(text="100")
@example(text="-0.000000000000")
@example(text="999999999999999.000000000000")
@example(text="1000000000000000")
@example(text="0.0000000000001")
@example(text="1E1000000")
def test_the_shortcut_answers_as_the_general_rules(text):
    assert _answer(text) == _general_answer(text)


def test_a_value_past_decimal_s_exponent_range_is_refused_as_out_of_range():
    for text in ("1E1000000", "-9e999999999"):
        assert _answer(text)[:2] == ("refused", "meter_event_invalid_value")
    assert _answer("1E-1000000")[:2] == ("refused", "meter_event_value_too_precise")
