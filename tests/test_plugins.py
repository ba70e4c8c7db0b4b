"""The plugin system: in-process plugins, entry-point plugins, broken plugins,
duplicate names, COOKBOOK_LOAD_PLUGINS, laziness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli import hookimpl
from cookbook_cli.cli.main import app
from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins import manager, registry
from cookbook_cli.plugins.spec import hookspec
from cookbook_cli.renderers.role_colon import RoleColonRenderer

runner = CliRunner()


class ShoutPlugin:
    __name__ = "shout-plugin"

    @hookimpl
    def register_renderers(self, register):
        register("shout", lambda tok: RoleColonRenderer(tok), "Role colon, but loud")


class BrokenHookPlugin:
    @hookimpl
    def register_renderers(self, register):
        raise RuntimeError("boom in registration")


class DuplicatePlugin:
    @hookimpl
    def register_renderers(self, register):
        register("llama3", lambda tok: None, "impostor")


def test_builtins_come_through_the_hooks():
    entries = registry.renderers.entries()
    assert entries["llama3"].plugin == manager.BUILTIN_PLUGIN_NAME
    assert {"llama3", "role_colon"} <= set(entries)


def test_in_process_plugin_appears_in_renderers_list():
    name = manager.register_plugin(ShoutPlugin(), name="shout-plugin")
    try:
        result = runner.invoke(app, ["renderers", "list", "--json"])
        assert result.exit_code == 0, result.output
        rows = {r["name"]: r for r in json.loads(result.output)}
        assert rows["shout"]["plugin"] == "shout-plugin"
        assert rows["shout"]["description"] == "Role colon, but loud"
        plugins = json.loads(runner.invoke(app, ["plugins", "list", "--json"]).output)["plugins"]
        assert {"name": "shout-plugin", "hooks": {"register_renderers": ["shout"]}}.items() <= {
            k: v for k, v in next(p for p in plugins if p["name"] == "shout-plugin").items()
        }.items()
    finally:
        manager.unregister_plugin(name)
    assert "shout" not in registry.renderers.names()


def test_plugin_fixture_registers_for_one_test(cookbook_plugin):
    cookbook_plugin(ShoutPlugin(), name="shout-plugin")
    assert "shout" in registry.renderers


def test_broken_hook_is_reported_and_skipped(capsys):
    name = manager.register_plugin(BrokenHookPlugin(), name="broken-hook")
    try:
        result = runner.invoke(app, ["renderers", "list", "--json"])
        assert result.exit_code == 0
        assert "llama3" in {r["name"] for r in json.loads(result.stdout)}
        errors = manager.load_errors()
        assert any(e.distribution == "broken-hook" and "boom in registration" in e.error for e in errors)
    finally:
        manager.unregister_plugin(name)


def test_duplicate_name_names_both_plugins():
    name = manager.register_plugin(DuplicatePlugin(), name="impostor-plugin")
    try:
        with pytest.raises(CookbookError, match=r"registered by two plugins, 'cookbook-cli' and 'impostor-plugin'"):
            registry.renderers.entries()
        result = runner.invoke(app, ["renderers", "list"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "impostor-plugin" in result.output
    finally:
        manager.unregister_plugin(name)


def test_unknown_renderer_suggests():
    result = runner.invoke(app, ["renderers", "render", "lama3", "-c", "examples/conversations.jsonl"])
    assert result.exit_code == 1
    assert "Did you mean 'llama3'?" in result.output and "Valid renderers: hf_template, llama3, role_colon" in result.output


@pytest.fixture
def fake_distributions(fake_plugins):
    """Two installed distributions on sys.path: one good, one that fails to import."""
    fake_plugins.add("good-plugin", """
        from cookbook_cli import hookimpl
        from cookbook_cli.renderers.role_colon import RoleColonRenderer

        @hookimpl
        def register_renderers(register):
            register("good_format", RoleColonRenderer, "from an installed package")
    """, module="good_plugin_mod")
    fake_plugins.add("broken-plugin", "raise ImportError('missing dependency frobnicate')\n", module="broken_plugin_mod")
    return fake_plugins


def test_entry_point_plugins_load_and_broken_ones_are_skipped(fake_distributions, load_only, capsys):
    load_only("good-plugin", "broken-plugin")
    assert registry.renderers.get("good_format").plugin == "good-plugin"
    errors = manager.load_errors()
    assert len(errors) == 1 and errors[0].distribution == "broken-plugin"
    assert "missing dependency frobnicate" in errors[0].line()
    assert "broken-plugin" in capsys.readouterr().err
    assert manager.plugin_infos()["good-plugin"].version == "1.2.3"


def test_load_plugins_filter(fake_distributions, load_only):
    load_only("good-plugin")
    assert "good_format" in registry.renderers and not manager.load_errors()
    load_only()
    assert "good_format" not in registry.renderers
    assert {"llama3", "role_colon"} <= set(registry.renderers.names())


def test_cli_with_broken_plugin_still_works(fake_distributions):
    proc = fake_distributions.run("renderers", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "good_format" in proc.stdout
    assert "broken-plugin" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_nothing_is_loaded_until_asked():
    code = (
        "import sys\n"
        "import cookbook_cli, cookbook_cli.cli.main\n"
        "from cookbook_cli.plugins import manager\n"
        "assert not manager._state.loaded\n"
        "heavy = [m for m in ('torch', 'tinker', 'transformers', 'datasets', 'tokenizers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- built-ins are plugin modules; plugins/ imports no feature package -------------------
PLUGINS_DIR = Path(manager.__file__).parent
# What plugins/ may import of cookbook itself: the package root (hookimpl,
# __version__), its errors, and its own modules.
ALLOWED_INTERNAL = ("cookbook_cli", "cookbook_cli.errors", "cookbook_cli.plugins")


def _imports(path):
    import ast

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_plugins_package_imports_no_feature_package():
    files = sorted(PLUGINS_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"manager.py", "registry.py", "spec.py"}
    bad = [
        f"{f.name}: {m}"
        for f in files
        for m in _imports(f)
        if m.startswith("cookbook_cli") and m not in ALLOWED_INTERNAL and not m.startswith("cookbook_cli.plugins.")
    ]
    assert not bad, bad


def test_loading_plugins_imports_only_the_listed_builtin_modules():
    code = (
        "import sys\n"
        "from cookbook_cli.plugins import manager\n"
        "before = {m for m in sys.modules if m.startswith('cookbook_cli.')}\n"
        "assert not any(m in before for m in manager.DEFAULT_PLUGINS), before\n"
        "manager.load()\n"
        "new = {m for m in sys.modules if m.startswith('cookbook_cli.')} - before\n"
        "print(sorted(new))\n"
        "heavy = [m for m in ('torch', 'tinker', 'transformers', 'datasets', 'tokenizers', 'chz') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    new = set(eval(out))
    assert set(manager.DEFAULT_PLUGINS) <= new
    # beside the listed modules, only their packages and the engine protocol (types only)
    extra = new - set(manager.DEFAULT_PLUGINS) - {m.rpartition(".")[0] for m in manager.DEFAULT_PLUGINS}
    assert extra <= {"cookbook_cli.engines.protocol"}, extra


def test_each_builtin_module_carries_its_own_hookimpls():
    pm = manager.load()
    for module in manager.DEFAULT_PLUGINS:
        plugin = pm.get_plugin(module)
        assert plugin is not None and plugin.__name__ == module
        assert pm.get_hookcallers(plugin), f"{module} implements no hook"
        assert manager.owner(module) == manager.BUILTIN_PLUGIN_NAME


def test_plugins_list_shows_the_builtins_as_one_distribution_with_its_modules():
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    plugins = json.loads(result.stdout)["plugins"]
    builtin = [p for p in plugins if p["builtin"]]
    assert len(builtin) == 1 and builtin[0]["name"] == "cookbook-cli"
    assert builtin[0]["modules"] == list(manager.DEFAULT_PLUGINS)
    assert set(builtin[0]["hooks"]) == {
        "register_renderers", "register_models", "register_envs", "register_dataset_builders",
        "register_loss_functions", "register_engines", "register_loggers", "register_evaluators", "register_recipes",
        "register_tools",
    }
    table = runner.invoke(app, ["plugins", "list"]).stdout
    assert "cookbook-cli (built-in)" in table and "cookbook_cli.default_plugins.models" in table


# -- hook implementations are called by argument name ---------------------------------
class GadgetSpec:
    """A hook with an argument beside `register`, as a spec that grew one."""

    @hookspec
    def register_gadgets(self, register, options):
        """Register gadgets."""


class OldGadgetPlugin:  # written before `options` existed
    @hookimpl
    def register_gadgets(self, register):
        register("old", dict, "knows only register")


class NewGadgetPlugin:  # declares both, in its own order
    @hookimpl
    def register_gadgets(self, options, register):
        register("new", dict, f"size {options['size']}")


def test_hook_impls_get_only_the_arguments_they_declare(capsys):
    manager.load().add_hookspecs(GadgetSpec)
    gadgets = registry.Registry("register_gadgets", "gadget", hook_args={"options": {"size": 3}})
    try:
        manager.register_plugin(OldGadgetPlugin(), name="old-gadgets")
        manager.register_plugin(NewGadgetPlugin(), name="new-gadgets")
        entries = gadgets.entries()
        assert entries["old"].plugin == "old-gadgets" and entries["new"].description == "size 3"
        assert not manager.load_errors() and "Warning" not in capsys.readouterr().err
    finally:
        manager.reset()


class NoArgsPlugin:
    @hookimpl
    def register_renderers(self):
        pass


def test_an_impl_declaring_no_argument_is_called_without_any(cookbook_plugin):
    cookbook_plugin(NoArgsPlugin(), name="no-args")
    assert "llama3" in registry.renderers and not manager.load_errors()


# -- check_pending: a misspelt hook --------------------------------------------------
class MisspeltPlugin:
    @hookimpl
    def register_renderer(self, register):  # singular: not a hook
        register("never", lambda tok: None)


def test_a_misspelt_hook_is_one_warning_naming_plugin_hook_and_the_real_one(capsys):
    name = manager.register_plugin(MisspeltPlugin(), name="typo-plugin")
    try:
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            "Warning: plugin 'typo-plugin' implements 'register_renderer', which is not a cookbook hook and is "
            "never called; did you mean 'register_renderers'?"
        ]
        assert manager.check_pending() == [err[0].removeprefix("Warning: ")]
        assert capsys.readouterr().err == ""  # warned once
        assert "never" not in registry.renderers
    finally:
        manager.unregister_plugin(name)


def test_a_misspelt_hook_in_an_installed_plugin_is_warned_by_distribution(fake_plugins):
    fake_plugins.add("cookbook-typo", """
        from cookbook_cli import hookimpl

        @hookimpl
        def register_dataset_builder(register):
            pass
    """)
    proc = fake_plugins.run("renderers", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        "Warning: plugin 'cookbook-typo' implements 'register_dataset_builder', which is not a cookbook hook and "
        "is never called; did you mean 'register_dataset_builders'?"
    )
    listed = json.loads(fake_plugins.run("plugins", "list", "--json").stdout)
    assert listed["warnings"] == [proc.stderr.strip().removeprefix("Warning: ")]


# -- kinds ---------------------------------------------------------------------------
class PreferencePlugin:
    @hookimpl
    def register_dataset_builders(self, register):
        register("acme.prefs", dict, "comparisons", kind="preference")


def test_registry_filters_by_kind_and_explains_a_wrong_kind(cookbook_plugin):
    cookbook_plugin(PreferencePlugin(), name="prefs")
    builders = registry.dataset_builders
    assert builders.names(kinds=("supervised",)) == ["conversations", "no_robots", "hf"]  # no kind= counts as supervised
    assert builders.names(kinds=("preference",)) == ["comparisons", "hh_rlhf", "ultrafeedback", "helpsteer3", "acme.prefs"]
    assert builders.get("acme.prefs", kinds=("preference",)).plugin == "prefs"
    assert builders.get("hf", kinds=("supervised", "preference")).name == "hf"
    with pytest.raises(CookbookError) as e:
        builders.get("acme.prefs", kinds=("supervised",), used_by="`train sl`")
    assert str(e.value) == (
        "dataset 'acme.prefs' is a preference dataset; `train sl` takes supervised datasets: "
        "conversations, no_robots, hf (cookbook datasets list)"
    )
    with pytest.raises(CookbookError, match=r"^dataset 'conversations' is a supervised dataset; this takes prompt datasets: prompt_file"):
        builders.get("conversations", kinds=("prompt",))
    # an unknown name suggests among the wanted kinds only
    with pytest.raises(CookbookError, match=r"unknown dataset 'hh_rlh'\. Valid datasets: conversations, hf, no_robots\."):
        builders.get("hh_rlh", kinds=("supervised",))
