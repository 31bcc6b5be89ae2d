"""Numbers on the command line: a port out of range, a negative speed or count, a
size that is not a number are refused by the parser in one line (exit 2), before
anything starts; they used to end in a traceback from bind() or the simulator."""

from __future__ import annotations

import pytest

from tui.cli import build_parser

BAD = [
    (["simulate", "--port", "70000"], "--port: 70000 is not a port: 0 to 65535"),
    (["simulate", "--port", "x"], "--port: 'x' is not a port number"),
    (["simulate", "--speed", "-2"], "--speed: -2 is not a number 0 or more"),
    (["simulate", "--tasks", "-1"], "--tasks: -1 is below 0"),
    (["demo", "--speed", "nan"], "--speed: nan is not a number 0 or more"),
    (["demo", "--tasks", "2.5"], "--tasks: '2.5' is not a whole number"),
    (["collect", "--health-port", "99999"], "--health-port: 99999 is not a port"),
    (["collect", "--listen", "--port", "-1"], "--port: -1 is not a port"),
    (["listen", "--port", "65536"], "--port: 65536 is not a port"),
    (["pull", "--max-size", "inf"], "--max-size: inf is not a number 0 or more"),
    (["pull", "--max-size", "-1"], "--max-size: -1 is not a number 0 or more"),
]


@pytest.mark.parametrize("argv, said", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_number_is_refused_in_one_line(argv, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert f" {argv[0]}: error: argument " in err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, attr, value", [
    (["simulate", "--port", "0"], "port", 0),
    (["simulate", "--port", "65535"], "port", 65535),
    (["demo", "--speed", "0"], "speed", 0.0),
    (["demo", "--tasks", "0"], "tasks", 0),
    (["collect", "--health-port", "9100"], "health_port", 9100),
    (["pull", "--max-size", "20"], "max_size", 20.0),
])
def test_good_numbers_pass(argv, attr, value):
    assert getattr(build_parser().parse_args(argv), attr) == value
