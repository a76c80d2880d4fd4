"""The reason a failed program gives is the line that names its error, even when forked processes
interleave their tracebacks (a fork bomb's stderr can end on another child's traceback header)."""

from grape.verification.code_tests import error_line

ONE = 'Traceback (most recent call last):\n  File "x.py", line 3, in <module>\n    solve()\nValueError: bad\n'


def test_a_single_traceback_gives_its_last_line():
    assert error_line(ONE) == "ValueError: bad"


def test_interleaved_tracebacks_give_the_last_named_error_not_a_header():
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 4, in solve\n'
        "Traceback (most recent call last):\n"
        "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
        '  File "x.py", line 4, in solve\n'
        "Traceback (most recent call last):\n\n"
    )
    assert error_line(stderr) == "BlockingIOError: [Errno 11] Resource temporarily unavailable"


def test_chained_exceptions_give_the_last_one():
    stderr = (
        ONE
        + "\nDuring handling of the above exception, another exception occurred:\n\n"
        + ONE.replace("ValueError: bad", "KeyError: 'k'")
    )
    assert error_line(stderr) == "KeyError: 'k'"


def test_only_headers_or_nothing_fall_back_to_the_last_line_or_empty():
    assert error_line("Traceback (most recent call last):\n") == "Traceback (most recent call last):"
    assert error_line("") == ""
    assert error_line("   \n") == ""


def test_a_plain_message_is_kept():
    assert error_line("Killed\n") == "Killed"
