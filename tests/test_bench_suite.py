"""The bench suite's frame: figures, goals, the two result files, bench-check and its CLI.

Timings are never asserted: these tests feed made-up figures through the
suite's reporting and check what a reader and ``make bench-check`` would see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.bench import __main__ as cli
from sim.bench import suite
from sim.bench.figure import Figure, Goal, regressions


def figure(key: str = "x.ratio", samples: list[float] | None = None, **kw: Any) -> Figure:
    return Figure(key, f"label of {key}", [1.0, 2.0, 3.0] if samples is None else samples, **kw)


def results(*figures: Figure, is_pi: bool = False) -> dict[str, Any]:
    return {
        "date": "2026-11-26T00:00:00+00:00",
        "command": "python -m sim.bench",
        "seconds": 12.0,
        "machine": {"host": "pi" if is_pi else "pc", "platform": "", "board": "", "is_pi": is_pi},
        "versions": {"python": "3.11"},
        "benchmarks": ["x"],
        "figures": [f.as_dict() for f in figures],
        "details": {},
    }


def test_goal_and_status_follow_the_median_not_the_extremes() -> None:
    f = figure(samples=[1.0, 1.4, 9.0], goal=Goal("<=", 1.5))
    assert (f.median, f.status) == (1.4, "PASS")
    assert figure(samples=[1.0, 1.6, 1.6], goal=Goal("<=", 1.5)).status == "MISS"
    assert figure(samples=[0.95, 0.89, 0.2], goal=Goal(">=", 0.9)).status == "MISS"
    assert figure(samples=[0.9], goal=Goal(">=", 0.9)).status == "PASS"
    assert figure().status == "-"
    d = figure(samples=[3.0, 1.0, 2.0]).as_dict()
    assert (d["median"], d["min"], d["max"], d["runs"]) == (2.0, 1.0, 3.0, 3)


def test_a_figure_without_samples_is_refused() -> None:
    with pytest.raises(ValueError, match=r"x\.ratio: no samples"):
        figure(samples=[])


@given(
    then=st.floats(0.01, 1e6),
    change=st.floats(-0.5, 0.5),
    better=st.sampled_from(["lower", "higher"]),
)
def test_regressions_flag_only_more_than_the_tolerance_in_the_worse_direction(
    then: float, change: float, better: str
) -> None:
    now = then * (1 + change)
    base = results(figure(samples=[then], better=better))  # type: ignore[arg-type]
    ours = results(figure(samples=[now], better=better))  # type: ignore[arg-type]
    flagged = regressions(ours, base, tolerance=0.10)
    worse = (now - then) / then
    expected = worse > 0.10 if better == "lower" else worse < -0.10
    assert bool(flagged) is expected
    if flagged:
        assert flagged[0].startswith("x.ratio: ")


def test_regressions_name_a_figure_that_stopped_being_reported() -> None:
    base = results(figure("a.x"), figure("b.x"))
    ours = results(figure("a.x"))
    assert regressions(ours, base) == ["b.x: in the baseline, not in the results"]


def test_markdown_has_a_row_per_figure_and_says_when_no_pi_run_exists() -> None:
    f = figure("flush.ratio", samples=[2.0], goal=Goal("<=", 1.5), baseline="plain", limit="fsync")
    md = suite.markdown(results(f), None)
    assert "| label of flush.ratio | 2 | 2-2 | 1 | plain | <= 1.5 | MISS |" in md
    assert "- **label of flush.ratio** (MISS): fsync" in md
    assert "Not yet run on a Raspberry Pi" in md


def test_a_pi_run_fills_its_own_section_and_keeps_the_pc_results(tmp_path: Path) -> None:
    pc = results(figure("pc.only"))
    suite.write(pc, tmp_path)
    pi = results(figure("pi.only"), is_pi=True)
    json_path, md_path = suite.write(pi, tmp_path)

    assert json_path == tmp_path / "results-pi.json"
    assert json.loads((tmp_path / "results.json").read_text()) == pc  # untouched
    main, pi_part = md_path.read_text().split("## Raspberry Pi")
    assert "pc.only" in main and "pi.only" not in main
    assert "pi.only" in pi_part and "Not yet run" not in pi_part


def test_bench_check_exits_1_on_a_regression_and_2_on_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, ours = tmp_path / "baseline.json", tmp_path / "results.json"
    base.write_text(json.dumps(results(figure(samples=[1.0]))))
    ours.write_text(json.dumps(results(figure(samples=[1.05]))))
    args = ["check", "--results", str(ours), "--baseline", str(base)]
    assert cli.main(args) == 0
    ours.write_text(json.dumps(results(figure(samples=[1.2]))))
    assert cli.main(args) == 1
    assert "WORSE x.ratio: 1.2 against the baseline's 1 (+20.0%, lower is better)" in (
        capsys.readouterr().out
    )
    ours.write_text("{not json")
    assert cli.main(args) == 2
    assert str(ours) in capsys.readouterr().err


def test_a_benchmark_run_alone_prints_its_table_and_writes_no_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "BENCH_DIR", tmp_path)
    assert cli.main(["ring", "--ring-frames", "60", "--ring-runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "| ring / deque of copied frames, same frames |" in out
    assert not (tmp_path / "results.json").exists()
    assert not (tmp_path / "results.md").exists()


def test_an_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["flsh"])
    assert exit.value.code == 2
    assert "unknown benchmark 'flsh': expected one of ring, features" in capsys.readouterr().err


def test_every_benchmark_module_has_the_suite_interface() -> None:
    for name, mod in suite.benchmarks().items():
        assert name == mod.NAME
        assert isinstance(mod.SUMMARY, str) and mod.SUMMARY
        assert callable(mod.add_arguments) and callable(mod.run)
        for key in mod.QUICK:
            assert key.startswith(name + "_") or name == "features", (name, key)
