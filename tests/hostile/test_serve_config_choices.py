"""A config key with a fixed set of values, given any other string: one line naming the key and
the values a user can write, in words (it printed the Python tuple
"use one of: ('', 'ssd-postprocess', ...)", the empty string first)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.stream.config import from_dict
from edgekit.stream.config_rules import CHOICES


@pytest.mark.parametrize("section, key", sorted(CHOICES))
@given(value=st.text(max_size=20))
def test_unknown_choice_lists_the_values_in_words(section, key, value):
    choices = CHOICES[(section, key)]
    if value in choices:
        return
    with pytest.raises(EdgekitError) as e:
        from_dict({section: {key: value}}, where="edgekit.toml")
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"edgekit.toml: {section}.{key} = ")
    listed = text.split("use one of: ", 1)[1]
    assert "(" not in listed.split(" (or leave it out)")[0] and "'" not in listed
    assert listed.split(" (or")[0].split(", ") == [c for c in choices if c]
    assert ("leave it out" in listed) == ("" in choices)
