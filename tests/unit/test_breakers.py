from media_plane.breakers import FAILURES_TO_OPEN, OPEN_SECS, Breakers, CallProviders


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_breaker_opens_after_calls_in_a_row_fail_then_half_opens_for_one_trial():
    clock = Clock()
    breakers = Breakers(clock)
    breaker = breakers.of("cartesia", "platform")
    for _ in range(FAILURES_TO_OPEN - 1):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += OPEN_SECS
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # and no other while it runs
    breaker.failed()  # the trial failed: open again, for another OPEN_SECS
    assert breaker.state == "open"
    clock.now += OPEN_SECS
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow()


def test_a_success_resets_the_count_and_a_silent_trial_gives_way():
    clock = Clock()
    breaker = Breakers(clock).of("deepgram", "t1")
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state == "closed"  # not three in a row
    for _ in range(FAILURES_TO_OPEN):
        breaker.failed()
    clock.now += OPEN_SECS
    assert breaker.allow() and not breaker.allow()
    clock.now += OPEN_SECS  # that trial's caller hung up before it could tell
    assert breaker.allow()


def test_each_key_has_its_own_breaker_and_a_call_counts_once():
    breakers = Breakers(Clock())
    call = CallProviders(breakers)
    assert call.allow("anthropic", "t1")
    for _ in range(FAILURES_TO_OPEN + 2):
        call.failed("anthropic")  # many errors, one failed call
    call.ended()
    assert breakers.of("anthropic", "t1").state == "closed"
    for _ in range(FAILURES_TO_OPEN - 1):
        other = CallProviders(breakers)
        other.allow("anthropic", "t1")
        other.failed("anthropic")
    assert breakers.of("anthropic", "t1").state == "open"
    assert breakers.of("anthropic", "platform").state == "closed"
    fine = CallProviders(breakers)
    assert fine.allow("anthropic", "platform")
    fine.ended()  # a call whose provider never failed: a success
    assert breakers.of("anthropic", "platform").state == "closed"
