from switchboard.cli import main


def test_unreachable_platform_is_a_clear_error(capsys):
    code = main(["tenant", "list", "--url", "http://127.0.0.1:9"])
    assert code == 2
    assert "cannot reach the platform" in capsys.readouterr().err


def test_missing_files_are_reported_before_calling(capsys):
    code = main(
        ["knowledge", "add", "/nonexistent.md", "--tenant", "t", "--url", "http://127.0.0.1:9"]
    )
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = main(["call", "--to", "+15550100200", "--audio", "/nonexistent.wav"])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_barge_in_must_name_an_utterance(capsys):
    code = main(["call", "--to", "+15550100200", "--say", "hi", "--barge-in", "3"])
    assert code == 2 and "--barge-in 3" in capsys.readouterr().err
