"""What counts as a backchannel: acknowledgements alone, as a recogniser writes them."""

import pytest

from media_plane.barge_in import is_backchannel


@pytest.mark.parametrize(
    "said", ["Mm-hmm.", "Uh-huh.", "Okay.", "OK, okay.", "Yeah, I see.", "All right.", "Got it."]
)
def test_acknowledgements_alone_are_a_backchannel(said):
    assert is_backchannel(said)


@pytest.mark.parametrize(
    "said",
    ["No, wait.", "Stop.", "Yes.", "Okay, but what about Tuesday?", "Hold on a second.", ""],
)
def test_anything_more_takes_the_turn(said):
    # "Yes" over a question is an answer; no words at all is not an acknowledgement.
    assert not is_backchannel(said)
