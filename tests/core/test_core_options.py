"""The option table: ranges, checks, and the command lines and the worker built from it."""

from __future__ import annotations

import pytest

from core import options
from core.cli import main as tinct
from core.worker.engine import EngineHandler, RequestError


def test_every_numeric_option_has_a_usable_range_and_dialog_increments():
    for option in options.OPTIONS.values():
        if option.kind in ("float", "int"):
            assert option.minimum <= option.default <= option.maximum, option.name
            assert option.step < option.page < option.maximum - option.minimum, option.name  # GIMP's spin checks
            assert option.check(option.minimum) == option.minimum and option.check(option.maximum) == option.maximum
            with pytest.raises(options.OptionError, match=option.name):
                option.check(option.maximum + 1)
        if option.kind in ("choice", "steps"):
            assert len({c.value for c in option.choices}) == len(option.choices)


def test_checks_convert_and_refuse_in_one_line():
    assert options.check("render_size", "64") == 64
    assert options.check("post", "tv, crf") == ("crf", "tv")  # the order the steps run in
    assert options.check("post", "none") == ()
    for name, value, words in (("temperature", 0, "temperature must be in [0.01, 1], got 0"),
                               ("render_size", 64.5, "whole number"), ("post_strength", float("nan"), "post_strength"),
                               ("post", "crf,blur", "unknown post-processing step 'blur'"),
                               ("decode", "median", "one of annealed, mode, mean"), ("temporal", "yes", "true or false")):
        with pytest.raises(options.OptionError, match=words.replace("[", r"\[").replace("]", r"\]")):
            options.check(name, value)


@pytest.mark.parametrize("argv, words", [(["--temperature", "2"], "--temperature must be in [0.01, 1], got 2"),
                                         (["--post-strength", "1.5"], "--post-strength must be in [0, 1], got 1.5"),
                                         (["--post", "crf,blur"], "--post: unknown post-processing step 'blur'; choose from crf, segments, tv"),
                                         (["--render-size", "16"], "--render-size must be in [32, 512], got 16"),
                                         (["--reference-strength", "11"],
                                          "--reference-strength must be in [0, 10], got 11")])
def test_the_command_line_refuses_values_outside_the_table_in_one_line(argv, words, capsys, tmp_path):
    assert tinct(["colorize", str(tmp_path / "x.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"tinct colorize: error: {words}"


def test_the_worker_takes_defaults_and_refuses_the_same_values():
    model, opts = EngineHandler._options({"options": {}})
    assert model == "default"
    assert opts == {"temperature": options.TEMPERATURE, "decode": "annealed", "render_size": options.RENDER_SIZE,
                    "content": "auto"}
    _, opts = EngineHandler._options({"options": {"post": ["tv", "crf"], "post_strength": 1.0}})
    assert opts["post"] == ("crf", "tv") and opts["post_strength"] == 1.0
    with pytest.raises(RequestError, match=r"post_strength must be in \[0, 1\], got 2"):
        EngineHandler._options({"options": {"post": ["crf"], "post_strength": 2}})


def test_content_and_palette_choices_are_the_engines():
    from core.content import CONTENT_CHOICES
    from core.reference import PALETTE_DIR, PALETTES, load_palette

    assert CONTENT_CHOICES == tuple(c.value for c in options.OPTIONS["content"].choices) == ("auto", "photo", "document")
    assert options.OPTIONS["content"].default == "auto"
    assert PALETTES == ("parchment", "aged-paper", "white-paper")
    assert [c.value for c in options.OPTIONS["palette"].choices] == [options.NO_PALETTE, *PALETTES]
    for name in PALETTES:
        assert (PALETTE_DIR / f"{name}.json").is_file() and float(load_palette(name).sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("argv, words", [(["--palette", "sepia"], "invalid choice: 'sepia' (choose from none, "),
                                         (["--content", "poster"], "invalid choice: 'poster' (choose from auto, ")])
def test_the_command_line_offers_the_tables_choices(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit):
        tinct(["colorize", str(tmp_path / "x.png"), *argv])
    assert words in capsys.readouterr().err.replace("'none'", "none").replace("'auto'", "auto")
