"""Bad input to the plugin system and to the commands that list and inspect
what plugins registered: each case runs the real CLI in a subprocess and checks
the exit status, that no traceback is printed, and that the message names the
culprit (the distribution, the hook, the name, the file)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

HOOK = "from cookbook_cli import hookimpl\n"


@dataclass
class PluginCase:
    """A plugin module's source; `cookbook ARGS` must still work (exit `code`)
    and stderr must hold every string in `err` (and stdout those in `out`)."""

    id: str
    source: str
    args: tuple[str, ...]
    err: tuple[str, ...]
    out: tuple[str, ...] = ()
    code: int = 0
    entry_point: str | None = None
    not_out: tuple[str, ...] = ()
    stderr_lines: int | None = 1  # the whole report is this many lines
    extra: dict[str, str] = field(default_factory=dict)  # more fake distributions: name -> source


GOOD_RENDERER = HOOK + """
@hookimpl
def register_renderers(register):
    register("good_format", lambda tok: None, "from a good plugin")
"""

GOOD_COMMAND = HOOK + """
import typer

@hookimpl
def register_commands(app):
    @app.command("hello")
    def hello():
        print("hello from a plugin")
"""

PLUGIN_CASES = [
    # -- a plugin that exits or raises at import or in a hook: isolated, named ------
    PluginCase("sys-exit-at-import", "import sys\nsys.exit()\n", ("--help",),
               ("plugin 'cookbook-bad' (entry point 'cookbook_bad_mod') failed to load and was skipped: it called sys.exit()",),
               out=("renderers",)),
    PluginCase("sys-exit-code-at-import", "import sys\nsys.exit(3)\n", ("renderers", "list", "--json"),
               ("'cookbook-bad'", "it called sys.exit(3)"), out=('"llama3"', '"good_format"'), extra={"cookbook-good": GOOD_RENDERER}),
    PluginCase("sys-exit-message-at-import", "raise SystemExit('no GPU, bye')\n", ("models", "list", "--json"),
               ("'cookbook-bad'", "sys.exit('no GPU, bye')"), out=('"llama3"',)),
    PluginCase("base-exception-at-import", "class Boom(BaseException):\n    pass\nraise Boom('custom')\n", ("--help",),
               ("'cookbook-bad'", "Boom: custom"), out=("Usage",)),
    PluginCase("import-error", "import frobnicate_not_installed\n", ("renderers", "list"),
               ("'cookbook-bad'", "ModuleNotFoundError: No module named 'frobnicate_not_installed'"), out=("llama3",)),
    PluginCase("syntax-error", "def broken(:\n", ("renderers", "list"), ("'cookbook-bad'", "SyntaxError"), out=("llama3",)),
    PluginCase("missing-entry-point-attribute", HOOK, ("renderers", "list"),
               ("'cookbook-bad'", "AttributeError"), out=("llama3",), entry_point="cookbook_bad_mod:no_such_object"),
    PluginCase("sys-exit-in-a-hook", HOOK + "import sys\n@hookimpl\ndef register_renderers(register):\n    sys.exit(2)\n",
               ("renderers", "list", "--json"),
               ("plugin 'cookbook-bad' failed in hook 'register_renderers', whose registrations were skipped: it called sys.exit(2)",),
               out=('"llama3"',)),
    PluginCase("sys-exit-in-register-commands", HOOK + "import sys\n@hookimpl\ndef register_commands(app):\n    sys.exit(1)\n",
               ("--help",), ("'cookbook-bad'", "'register_commands'", "sys.exit(1)"), out=("renderers",)),
    PluginCase("register-commands-raises", HOOK + "@hookimpl\ndef register_commands(app):\n    raise RuntimeError('no typer here')\n",
               ("hello",), ("'cookbook-bad'", "'register_commands'", "RuntimeError: no typer here"),
               out=("hello from a plugin",), extra={"cookbook-good": GOOD_COMMAND}),
    PluginCase("register-commands-fails-halfway",
               HOOK + "@hookimpl\ndef register_commands(app):\n    @app.command('half')\n    def half():\n        pass\n"
               "    raise RuntimeError('second command broke')\n",
               ("half",), ("'cookbook-bad'", "second command broke", "No such command 'half'"), code=2, stderr_lines=None),
    PluginCase("register-commands-replaces-a-core-command",
               HOOK + "@hookimpl\ndef register_commands(app):\n    @app.command('train')\n    def train():\n        print('hijacked')\n",
               ("train", "--help"), ("'cookbook-bad'", "adds command(s) train, which already exist"),
               out=("Train models",), not_out=("hijacked",)),
    PluginCase("register-commands-replaces-a-core-group",
               HOOK + "import typer\n@hookimpl\ndef register_commands(app):\n    app.add_typer(typer.Typer(), name='models')\n",
               ("models", "list", "--json"), ("'cookbook-bad'", "adds command(s) models, which already exist"), out=('"llama3"',)),
    PluginCase("entry-point-names-a-module-without-hooks", "VALUE = 3\n", ("renderers", "list"),
               ("plugin 'cookbook-bad' (entry point 'cookbook_bad_mod') implements no cookbook hook",), out=("llama3",)),
    # -- what a hook registers -----------------------------------------------------
    PluginCase("non-callable-renderer", HOOK + "@hookimpl\ndef register_renderers(register):\n    register('fmt', 42, 'not a factory')\n",
               ("renderers", "list", "--json"), ("'cookbook-bad'", "renderer 'fmt' is registered with 42, which is not callable"),
               out=('"llama3"',), not_out=('"fmt"',)),
    PluginCase("name-with-spaces", HOOK + "@hookimpl\ndef register_envs(register):\n    register('my env', dict)\n",
               ("envs", "list", "--json"), ("'cookbook-bad'", "environment name 'my env' is not a name", "no spaces"),
               out=('"arithmetic"',)),
    PluginCase("name-not-a-string", HOOK + "@hookimpl\ndef register_engines(register):\n    register(None, dict)\n",
               ("engines", "list", "--json"), ("'cookbook-bad'", "engine name None is not a name"), out=('"local"',)),
    PluginCase("name-like-an-option", HOOK + "@hookimpl\ndef register_loss_functions(register):\n    register('--ppo', print)\n",
               ("losses", "list", "--json"), ("'cookbook-bad'", "loss function name '--ppo' is not a name"), out=('"ppo"',)),
    PluginCase("description-not-a-string", HOOK + "@hookimpl\ndef register_renderers(register):\n    register('fmt', print, 3)\n",
               ("renderers", "list"), ("'cookbook-bad'", "renderer 'fmt': the description must be a string, got 3"), out=("llama3",)),
    PluginCase("model-family-not-a-family", HOOK + "@hookimpl\ndef register_models(register):\n    register('mine', {'renderer': 'llama3'})\n",
               ("models", "info", "meta-llama/Llama-3.2-1B-Instruct"),
               ("'cookbook-bad'", "model family 'mine' is registered with", "register a cookbook_cli.models.ModelFamily"),
               out=("family:     llama3",)),
    PluginCase("env-not-a-builder", HOOK + "@hookimpl\ndef register_envs(register):\n    register('plainfn', print, 'a function')\n",
               ("envs", "list", "--json"),
               ("'cookbook-bad'", "environment 'plainfn' is registered with <built-in function print>, which has no local_defaults",
                "register a chz subclass of cookbook_cli.rl.types.RLDatasetBuilder"),
               out=('"arithmetic"',), not_out=('"plainfn"',)),
    PluginCase("kind-not-a-word", HOOK + "@hookimpl\ndef register_dataset_builders(register):\n    register('odd', print, 'x', kind=123)\n",
               ("datasets", "list", "--json"), ("'cookbook-bad'", "dataset 'odd': kind= must be a word such as 'supervised', got 123"),
               out=('"conversations"',), not_out=('"odd"',)),
    PluginCase("registers-one-name-twice", HOOK + "@hookimpl\ndef register_renderers(register):\n    register('a', print)\n    register('a', print)\n",
               ("renderers", "list"), ("'cookbook-bad'", "renderer 'a' registered twice by plugin 'cookbook-bad'"), out=("llama3",)),
    PluginCase("hook-returns-a-value", HOOK + "@hookimpl\ndef register_renderers(register):\n    register('fmt', print)\n    return ['fmt']\n",
               ("renderers", "list", "--json"),
               ("plugin 'cookbook-bad': its register_renderers returned list ['fmt'], which is ignored",), out=('"fmt"',)),
    PluginCase("impl-argument-not-in-spec", HOOK + "@hookimpl\ndef register_renderers(reg):\n    pass\n",
               ("renderers", "list"), ("'cookbook-bad'", "Argument(s) {'reg'} are declared in the hookimpl but can not be found in the hookspec"),
               out=("llama3",)),
    PluginCase("hook-wrapper", HOOK + "@hookimpl(wrapper=True)\ndef register_renderers(register):\n    yield\n",
               ("renderers", "list"), ("'cookbook-bad'", "a hook wrapper cannot register anything"), out=("llama3",)),
    PluginCase("misspelt-hook", HOOK + "@hookimpl\ndef register_enviroments(register):\n    pass\n",
               ("envs", "list"), ("plugin 'cookbook-bad' implements 'register_enviroments', which is not a cookbook hook",
                                   "did you mean 'register_envs'?"), out=("arithmetic",)),
    PluginCase("unknown-hook-far-from-any", HOOK + "@hookimpl\ndef setup(register):\n    pass\n",
               ("envs", "list"), ("'cookbook-bad' implements 'setup'", "the hooks are: register_commands, register_dataset_builders"),
               out=("arithmetic",)),
    PluginCase("prints-at-import-and-in-hook",
               HOOK + "print('hello from import')\n@hookimpl\ndef register_renderers(register):\n    print('hello from hook')\n"
               "    register('fmt', print)\n",
               ("renderers", "list", "--json"), ("hello from import", "hello from hook"), stderr_lines=2),
]


@pytest.mark.parametrize("case", PLUGIN_CASES, ids=[c.id for c in PLUGIN_CASES])
def test_a_bad_plugin_is_reported_by_distribution_and_skipped(fake_plugins, case: PluginCase) -> None:
    fake_plugins.add("cookbook-bad", case.source, entry_point=case.entry_point)
    for dist, source in case.extra.items():
        fake_plugins.add(dist, source)
    proc = fake_plugins.run(*case.args)
    assert proc.returncode == case.code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for text in case.err:
        assert text in proc.stderr, proc.stderr
    for text in case.out:
        assert text in proc.stdout, proc.stdout
    for text in case.not_out:
        assert text not in proc.stdout, proc.stdout
    if case.stderr_lines is not None:
        assert len(proc.stderr.strip().splitlines()) == case.stderr_lines, proc.stderr
    if "--json" in case.args:
        json.loads(proc.stdout)  # nothing a plugin printed got into the JSON


def test_two_plugins_registering_one_name(fake_plugins) -> None:
    fake_plugins.add("cookbook-impostor", HOOK + "@hookimpl\ndef register_renderers(register):\n    register('llama3', print, 'mine')\n")
    proc = fake_plugins.run("renderers", "list")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "Error: renderer 'llama3' is registered by two plugins, 'cookbook-cli' and 'cookbook-impostor': "
        "uninstall one, or limit loading with COOKBOOK_LOAD_PLUGINS"
    )
    # `plugins list` still lists both, says why, and fails
    listed = fake_plugins.run("plugins", "list", "--json")
    assert listed.returncode == 1
    report = json.loads(listed.stdout)
    hooks = {p["name"]: p["hooks"].get("register_renderers", []) for p in report["plugins"]}
    assert "llama3" in hooks["cookbook-cli"] and hooks["cookbook-impostor"] == ["llama3"]
    assert report["conflicts"] == [proc.stderr.strip().removeprefix("Error: ")]
    table = fake_plugins.run("plugins", "list")
    assert table.returncode == 1 and "cookbook-impostor" in table.stdout and "two plugins" in table.stderr


def test_a_plugin_that_exits_at_import_is_listed_as_an_error(fake_plugins) -> None:
    fake_plugins.add("cookbook-bad", "import sys\nsys.exit(4)\n")
    listed = json.loads(fake_plugins.run("plugins", "list", "--json").stdout)
    assert [e["distribution"] for e in listed["errors"]] == ["cookbook-bad"]
    assert "cookbook-bad" not in {p["name"] for p in listed["plugins"]}


# -- COOKBOOK_LOAD_PLUGINS ------------------------------------------------------------
LOAD_CASES = [
    # (value, loaded good plugin?, a warning naming)
    ("cookbook-good", True, None),
    ("COOKBOOK_GOOD", True, None),  # case and _ / - / . do not matter
    ("cookbook.good", True, None),
    (" cookbook-good , ", True, None),
    ("", False, None),
    (",", False, None),
    ("cookbook-godo", False, "COOKBOOK_LOAD_PLUGINS names 'cookbook-godo', which no installed distribution provides"),
    ("cookbook-good,nope", True, "'nope'"),
]


@pytest.mark.parametrize("value,loaded,warning", LOAD_CASES, ids=[repr(c[0]) for c in LOAD_CASES])
def test_cookbook_load_plugins_values(fake_plugins, value: str, loaded: bool, warning: str | None) -> None:
    fake_plugins.add("cookbook-good", GOOD_RENDERER)
    proc = fake_plugins.run("renderers", "list", "--json", load=value)
    assert proc.returncode == 0, proc.stderr
    names = {r["name"] for r in json.loads(proc.stdout)}
    assert ("good_format" in names) is loaded and "llama3" in names
    if warning is None:
        assert proc.stderr == ""
    else:
        assert warning in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# -- models info --------------------------------------------------------------------
@dataclass
class CliCase:
    id: str
    args: tuple[str, ...]
    code: int
    out: tuple[str, ...] = ()
    err: tuple[str, ...] = ()
    not_out: tuple[str, ...] = ()


MODEL_CASES = [
    CliCase("typo", ("models", "info", "meta-llama/Llama-3.1-8B-Instrct"), 0,
            out=("meta-llama/Llama-3.1-8B-Instrct: not a known model (closest: meta-llama/Llama-3.1-8B-Instruct;",
                 "the family defaults would be:", "  renderer:   llama3"),
            not_out=("model:      ",)),
    CliCase("typo-without-organisation", ("models", "info", "Llama-3.1-8B-Instrct"), 0,
            out=("not a known model (closest: meta-llama/Llama-3.1-8B-Instruct;",)),
    CliCase("new-fine-tune-still-gets-family-defaults", ("models", "info", "acme/llama-3.2-1b-instruct-support-v2"), 0,
            out=("not a known model", "matches family llama3", "renderer:   llama3", "tokenizer:  acme/llama-3.2-1b-instruct-support-v2")),
    CliCase("base-model-pattern", ("models", "info", "acme/Llama-3.2-3B"), 0, out=("renderer:   role_colon", "kind:       base")),
    CliCase("listed-model", ("models", "info", "meta-llama/Llama-3.1-8B-Instruct"), 0,
            out=("model:      meta-llama/Llama-3.1-8B-Instruct", "family:     llama3"), not_out=("not a known model",)),
    CliCase("listed-model-other-case", ("models", "info", "META-LLAMA/llama-3.1-8b-instruct"), 0, not_out=("not a known model",)),
    CliCase("family-name", ("models", "info", "llama3"), 0, out=("model:      meta-llama/Llama-3.2-1B-Instruct",)),
    CliCase("no-family-matches", ("models", "info", "mistralai/Mistral-7B-v0.1"), 1,
            err=("Error: unknown model 'mistralai/Mistral-7B-v0.1'.", "cookbook models list")),
    CliCase("empty-name", ("models", "info", ""), 1, err=("Error: unknown model ''.",)),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c.id for c in MODEL_CASES])
def test_models_info(fake_plugins, case: CliCase) -> None:
    _check(fake_plugins.run(*case.args), case)


def test_models_info_json_says_known_and_closest(fake_plugins) -> None:
    typo = json.loads(fake_plugins.run("models", "info", "meta-llama/Llama-3.1-8B-Instrct", "--json").stdout)
    assert (typo["known"], typo["closest"], typo["renderer"]) == (False, "meta-llama/Llama-3.1-8B-Instruct", "llama3")
    real = json.loads(fake_plugins.run("models", "info", "meta-llama/Llama-3.1-8B-Instruct", "--json").stdout)
    assert (real["known"], real["closest"]) == (True, None)


def test_a_model_folder_or_cached_model_is_known(fake_plugins, tmp_path) -> None:
    folder = tmp_path / "my-llama-3-finetune"
    folder.mkdir()
    assert "not a known model" not in fake_plugins.run("models", "info", str(folder)).stdout
    cache = tmp_path / "hf"
    (cache / "hub" / "models--acme--Llama-3.1-8B-Support").mkdir(parents=True)
    out = fake_plugins.run("models", "info", "acme/Llama-3.1-8B-Support", HF_HOME=str(cache)).stdout
    assert "model:      acme/Llama-3.1-8B-Support" in out and "not a known model" not in out


def _check(proc, case: CliCase) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == case.code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for text in case.out:
        assert text in proc.stdout, proc.stdout
    for text in case.err:
        assert text in proc.stderr, proc.stderr
    for text in case.not_out:
        assert text not in proc.stdout, proc.stdout
    if case.code == 1:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# -- renderers, listing commands -------------------------------------------------------
def _conversations(tmp_path, text: str) -> str:
    path = tmp_path / "c.jsonl"
    path.write_text(text, encoding="utf-8")
    return str(path)


OK_CONV = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
RENDER_CASES = [
    # (id, conversation file text or None for a missing file, extra args, expected stderr)
    ("unknown-renderer", OK_CONV, ("lama3",), "Did you mean 'llama3'?"),
    ("bad-train-on", OK_CONV, ("role_colon", "--train-on", "everything"), "unknown train_on_what value 'everything'"),
    ("missing-file", None, ("role_colon",), "does not exist"),
    ("malformed-json", '{"messages": [}\n', ("role_colon",), "c.jsonl:1: malformed JSON"),
    ("tokenizer-is-not-a-tokenizer", OK_CONV, ("role_colon", "--tokenizer", "CONV"), "it must be a Hugging Face tokenizer.json"),
    ("tokenizer-folder-without-one", OK_CONV, ("role_colon", "--tokenizer", "DIR"), "has no tokenizer.json"),
    ("tokenizer-missing", OK_CONV, ("role_colon", "--tokenizer", "./no/such/tokenizer.json"), "does not exist"),
]


@pytest.mark.parametrize("id,text,args,err", RENDER_CASES, ids=[c[0] for c in RENDER_CASES])
def test_renderers_render_bad_input(fake_plugins, tmp_path, id, text, args, err) -> None:  # type: ignore[no-untyped-def]
    conv = _conversations(tmp_path, text) if text is not None else str(tmp_path / "missing.jsonl")
    args = tuple(conv if a == "CONV" else str(tmp_path) if a == "DIR" else a for a in args)
    proc = fake_plugins.run("renderers", "render", args[0], "-c", conv, *args[1:])
    _check(proc, CliCase(id, (), 1, err=(err,)))


def test_renderers_render_piped_prints_only_the_tokens_newlines(fake_plugins, tmp_path) -> None:
    from cookbook_cli.scaffold import tiny_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    long = "word " * 60  # several times the 80 columns of a pipe
    conv = _conversations(tmp_path, json.dumps({"messages": [{"role": "user", "content": long}, {"role": "assistant", "content": "ok\nbye"}]}) + "\n")
    tok = str(tiny_tokenizer_path())
    shown = fake_plugins.run("renderers", "render", "role_colon", "-c", conv, "-t", tok)
    assert shown.returncode == 0, shown.stderr
    tokens = json.loads(fake_plugins.run("renderers", "render", "role_colon", "-c", conv, "-t", tok, "--json").stdout)["tokens"]
    body = shown.stdout.split("\n", 1)[1]  # after the rule line
    assert body == get_tokenizer(tok).decode(tokens) + "\n"


LIST_COMMANDS = ["renderers", "models", "engines", "losses", "envs", "datasets", "plugins"]


@pytest.mark.parametrize("group", LIST_COMMANDS)
def test_listings_piped_at_80_columns_never_break_a_name(fake_plugins, group: str) -> None:
    fake_plugins.add("cookbook-long-names", HOOK + """
@hookimpl
def register_renderers(register):
    register("a_really_quite_long_renderer_name_for_testing", print, "short")

@hookimpl
def register_loss_functions(register):
    register("importance_sampling_with_a_long_suffix", print, "a long description " * 8)

@hookimpl
def register_models(register):
    from cookbook_cli.models import ModelFamily

    models = ("acme-research/Acme-Extremely-Long-Model-Name-70B-Instruct-2507", "acme-research/Acme-Small-1B")
    register("acme_family_with_a_long_name", ModelFamily(renderer="a_really_quite_long_renderer_name_for_testing",
             patterns=("acme-research/*",), models=models), "Acme models " * 6)
""")
    listed = fake_plugins.run(group, "list", "--json")
    table = fake_plugins.run(group, "list", COLUMNS="80")
    assert table.returncode == 0 and listed.returncode == 0, table.stderr + listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows["plugins"] if group == "plugins" else rows
    key = "family" if group == "models" else "name"
    names = [str(r[key]) for r in rows]
    if group == "models":
        names += [m for r in rows for m in r["models"]]
    # a table, or one block per row when no table fits: either way a name is one word of a line
    words = {w for line in table.stdout.splitlines() for w in re.split(r"[\s│┃]+", line)}
    for name in names:
        assert name in words, f"{name!r} is not whole in:\n{table.stdout}"
    assert max(len(line) for line in table.stdout.splitlines()) <= 80, table.stdout


def test_train_help_keeps_the_config_words_a_table(fake_plugins) -> None:
    for recipe in ("sl", "rl"):
        out = fake_plugins.run("train", recipe, "--help", COLUMNS="80").stdout
        words = out.split("Config words", 1)[1]
        assert "\\[" not in words
        assert re.search(r"^  engine_options +dict\[str, str\] = \{\}", words, re.M), words
        lines = [line for line in words.splitlines()[1:] if line.strip()]
        assert all(len(line) <= 80 for line in lines), max(lines, key=len)
        keyed = [line for line in lines if not line.startswith("   ")]
        assert len(keyed) >= 15  # one line per config word starts with its key
        column = {len(line) - len(line[2:].split(" ", 1)[1].lstrip()) for line in keyed if " " in line[2:].strip()}
        assert len(column) <= 2, column  # the text starts in one column (long keys push it to the next line)
