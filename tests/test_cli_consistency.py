"""Every command of ``imstats`` and ``agreement`` documents itself the same way.

Walks both click groups, subgroups included: every option and argument that is not
hidden has a description, every command's help has an "Examples" block, an option name
means one thing across both tools, and the renamed spellings still work.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from cli._pairs import format_value, parse_value
from cli.agreement_cli import main as agreement_main
from cli.imstats_cli import main as imstats_main

ROOTS = {"imstats": imstats_main, "agreement": agreement_main}


def _walk(cmd: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, f"{path} {name}")


COMMANDS = [pc for name, root in ROOTS.items() for pc in _walk(root, name)]
LEAVES = [(p, c) for p, c in COMMANDS if not isinstance(c, click.Group)]


def _help(path: str) -> str:
    root, *rest = path.split()
    r = CliRunner().invoke(ROOTS[root], [*rest, "--help"])
    assert r.exit_code == 0, r.output
    return r.output


def test_the_walk_finds_the_subgroups():
    paths = [p for p, _ in COMMANDS]
    assert "agreement experiment curriculum" in paths and "imstats stats" in paths
    assert len(LEAVES) >= 12


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_visible_parameter_has_a_description(path, cmd):
    ctx = click.Context(cmd, info_name=path)
    missing = []
    for p in cmd.get_params(ctx):
        if getattr(p, "hidden", False) or p.name == "help":
            continue
        text = (p.help if isinstance(p, click.Option) else _argument_help(cmd, p)) or ""
        if not text.strip():
            missing.append("/".join(p.opts))
    assert not missing, f"{path}: no description for {', '.join(missing)}"


def _argument_help(cmd: click.Command, arg: click.Parameter) -> str:
    """Arguments have no help= in click: the command's docstring must name them."""
    doc = cmd.help or ""
    return arg.human_readable_name if arg.human_readable_name in doc else ""


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_examples_shown_line_by_line(path, cmd):
    text = _help(path)
    assert "Examples:" in text, f"`{path} --help` has no Examples block"
    # click's \b keeps the lines: each example is a line of its own that starts with the tool
    tail = text.split("Examples:", 1)[1]
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    assert lines and lines[0].startswith(path.split()[0] + " "), (path, lines[:2])


def test_display_rule_is_explained_where_its_options_appear():
    for path, cmd in LEAVES:
        names = {p.name for p in cmd.params}
        if names & {"min_agreement", "min_epoch", "all_epochs"}:
            assert "display rule" in _help(path).lower(), path


def test_one_meaning_per_option_name():
    """--stats is a list of statistic names wherever it is visible; tables are --stats-table."""
    seen: dict[str, set[str]] = {}
    for _path, cmd in LEAVES:
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                for opt in p.opts:
                    seen.setdefault(opt, set()).add(type(p.type).__name__)
    assert seen["--stats"] == {"StringParamType"}
    assert seen["--stats-table"] == {"Path"}
    assert seen["--workers"] == {"IntRange"}
    assert "--progress" not in seen and "-q" in seen and "--quiet" in seen


def test_the_old_stats_spelling_of_correlate_still_works_and_warns(tmp_path):
    missing = tmp_path / "nope.parquet"
    r = CliRunner().invoke(agreement_main, ["correlate", str(tmp_path), "--stats", str(missing)])
    assert r.exit_code == 1 and f"stats table {str(missing)!r} does not exist" in r.output
    assert "--stats is deprecated here; use --stats-table" in r.stderr
    r = CliRunner().invoke(
        agreement_main,
        ["correlate", str(tmp_path), "--stats", str(missing), "--stats-table", str(missing)],
    )
    assert r.exit_code == 2 and "give --stats-table only" in r.output
    assert "--stats-table" in _help("agreement correlate")


def test_imstats_stats_lists_parameters_defaults_and_descriptions():
    from imstats import registry

    text = _help("imstats stats")
    assert "Examples:" in text
    r = CliRunner().invoke(imstats_main, ["stats"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    params = {  # "entropy.window" -> "--param entropy.window=10  Side of the square window ..."
        ln.split()[1].split("=", 1)[0]: ln.strip()
        for ln in lines
        if ln.strip().startswith("--param ")
    }
    for name in registry.available():
        st = registry.get(name)
        first = (st.func.__doc__ or "").strip().splitlines()[0]
        assert f"{name}: {first}" in lines
        for key, default in st.defaults.items():
            line = params[f"{name}.{key}"]
            value = line.split()[1].split("=", 1)[1]
            # copy-pasteable: --param reads it back (a tuple as a JSON list)
            assert parse_value(value) == (list(default) if isinstance(default, tuple) else default)
            if not name.startswith("test_"):  # the test suite's own statistics have none
                assert len(line.split(maxsplit=2)) == 3, f"no description: {line}"
    assert "  --param entropy.window=10 " in r.output
    assert "--param entropy.footprint=null " in r.output  # not None, which would be a string
    # "As :func:`edge_map`." is followed to edge_map's own description
    assert "As :func:" not in r.output and "Seed of the pair sampling" in r.output


def test_format_value_round_trips_through_parse_value():
    for v in (10, 0.5, 500.0, None, True, "paper", "10", "null", [1, 2], {"a": 1}):
        assert parse_value(format_value(v)) == v, v
