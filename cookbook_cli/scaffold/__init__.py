"""`cookbook plugins new`: write a complete, installable plugin package.

    from cookbook_cli.scaffold import new_plugin
    path = new_plugin("env", "acme_guess")          # ./cookbook-acme-guess/

One kind per hook a third party most often implements: `renderer`
(`register_renderers`), `env` (`register_envs`), `dataset`
(`register_dataset_builders`), `loss` (`register_loss_functions`),
`recipe` (`register_recipes`) and `tool` (`register_tools`). Each
package has a pyproject declaring the `cookbook` entry point, a module with the
hook implementation, a README and tests that pass unmodified once the package
is installed (`pip install -e DIR && pytest DIR`), using the helpers of
`cookbook_cli.testing`.

Templates are package data under `templates/<kind>/` (and `templates/common/`;
`tiny_chatml/` is the small tokenizer a renderer plugin's tests start from):
files ending in `.tmpl` have their `{{key}}` placeholders filled in (an
unknown key is a bug, caught by the tests), every other file is copied byte
for byte. Names: NAME is the registry name, kept exactly as given; the
distribution is `cookbook-<NAME>` and the module `cookbook_<NAME>` (with `.`,
`-` and `_` mapped to the separator each allows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cookbook_cli.errors import CookbookError

KINDS = ("renderer", "env", "dataset", "loss", "recipe", "tool")

#: What each kind registers, and the command that lists it.
KIND_INFO = {
    "renderer": ("register_renderers", "cookbook renderers list"),
    "env": ("register_envs", "cookbook envs list"),
    "dataset": ("register_dataset_builders", "cookbook datasets list"),
    "loss": ("register_loss_functions", "cookbook losses list"),
    "recipe": ("register_recipes", "cookbook train --help"),
    "tool": ("register_tools", "cookbook tools list"),
}

# Per-kind values for the shared templates.
_KIND_VARS = {
    "renderer": {
        "description": "A chat format (renderer) for cookbook",
        "package_data": "[]",
        "test_requires": '"pytest>=8"',
    },
    "env": {
        "description": "An RL environment for cookbook",
        "package_data": "[]",
        "test_requires": '"pytest>=8", "{cookbook}[local]"',
    },
    "dataset": {
        "description": "A supervised dataset builder for cookbook",
        "package_data": '["*.jsonl"]',
        "test_requires": '"pytest>=8"',
    },
    "loss": {
        "description": "A custom loss function for cookbook",
        "package_data": "[]",
        "test_requires": '"pytest>=8", "{cookbook}[local]"',
    },
    "recipe": {
        "description": "A training recipe for cookbook",
        "package_data": "[]",
        "test_requires": '"pytest>=8", "{cookbook}[local]"',
    },
    "tool": {
        "description": "A tool for cookbook's tool-use agents",
        "package_data": "[]",
        "test_requires": '"pytest>=8"',
    },
}

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
_MAX_NAME = 64
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")

# (template file under templates/, or ../ for one beside it; destination) per
# kind; `{module}` and `{dist}` in destinations are filled in.
_COMMON = [
    ("common/gitignore", ".gitignore"),
    ("common/pyproject.toml.tmpl", "pyproject.toml"),
]
_FILES = {
    "renderer": [
        ("renderer/README.md.tmpl", "README.md"),
        ("renderer/plugin.py.tmpl", "{module}/__init__.py"),
        ("renderer/renderer.py.tmpl", "{module}/renderer.py"),
        ("renderer/test_plugin.py.tmpl", "tests/test_{module}.py"),
        ("../tiny_chatml/tokenizer.json", "tests/tokenizer/tokenizer.json"),
        ("../tiny_chatml/tokenizer_config.json", "tests/tokenizer/tokenizer_config.json"),
        ("../tiny_chatml/chat_template.jinja", "tests/tokenizer/chat_template.jinja"),
    ],
    "env": [
        ("env/README.md.tmpl", "README.md"),
        ("env/plugin.py.tmpl", "{module}/__init__.py"),
        ("env/env.py.tmpl", "{module}/env.py"),
        ("env/test_plugin.py.tmpl", "tests/test_{module}.py"),
    ],
    "dataset": [
        ("dataset/README.md.tmpl", "README.md"),
        ("dataset/plugin.py.tmpl", "{module}/__init__.py"),
        ("dataset/dataset.py.tmpl", "{module}/dataset.py"),
        ("dataset/conversations.jsonl", "{module}/conversations.jsonl"),
        ("dataset/test_plugin.py.tmpl", "tests/test_{module}.py"),
    ],
    "loss": [
        ("loss/README.md.tmpl", "README.md"),
        ("loss/plugin.py.tmpl", "{module}/__init__.py"),
        ("loss/loss.py.tmpl", "{module}/loss.py"),
        ("loss/test_plugin.py.tmpl", "tests/test_{module}.py"),
    ],
    "recipe": [
        ("recipe/README.md.tmpl", "README.md"),
        ("recipe/plugin.py.tmpl", "{module}/__init__.py"),
        ("recipe/recipe.py.tmpl", "{module}/recipe.py"),
        ("recipe/test_plugin.py.tmpl", "tests/test_{module}.py"),
    ],
    "tool": [
        ("tool/README.md.tmpl", "README.md"),
        ("tool/plugin.py.tmpl", "{module}/__init__.py"),
        ("tool/tool.py.tmpl", "{module}/tool.py"),
        ("tool/test_plugin.py.tmpl", "tests/test_{module}.py"),
    ],
}


@dataclass(frozen=True)
class PluginNames:
    """Every name a new plugin package uses, derived from its registry name."""

    kind: str
    name: str  # registry name, as the user gave it
    dist: str  # distribution (pip) name, also the entry point's name
    module: str  # importable package
    class_prefix: str  # CamelCase, for class names

    def variables(self) -> dict[str, str]:
        from cookbook_cli import __version__

        hook, list_command = KIND_INFO[self.kind]
        local = cookbook_requirement(__version__, extras="local")
        kind_vars = {k: v.replace("{cookbook}[local]", local) for k, v in _KIND_VARS[self.kind].items()}
        return {
            **kind_vars,
            "kind": self.kind,
            "name": self.name,
            "dist": self.dist,
            "module": self.module,
            "class_prefix": self.class_prefix,
            "hook": hook,
            "list_command": list_command,
            "cookbook_requirement": cookbook_requirement(__version__),
        }


def validate_name(name: str) -> None:
    """NAME: lowercase letters and digits, starting with a letter, in parts
    joined by `_`, `-` or `.` (e.g. `acme_chatml`, `acme.guess`)."""
    if not name or len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise CookbookError(
            f"invalid plugin name {name!r}: use lowercase letters and digits, starting with a letter, "
            f"in parts joined by '_', '-' or '.' (at most {_MAX_NAME} characters), e.g. acme_chatml"
        )


def plugin_names(kind: str, name: str) -> PluginNames:
    if kind not in KINDS:
        raise CookbookError(f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}")
    validate_name(name)
    parts = re.split(r"[._-]", name)
    return PluginNames(
        kind=kind,
        name=name,
        dist="cookbook-" + "-".join(parts),
        module="cookbook_" + "_".join(parts),
        class_prefix="".join(p[:1].upper() + p[1:] for p in parts),
    )


def cookbook_requirement(version: str, extras: str = "") -> str:
    """`cookbook-cli>=X.Y.Z,<NEXT`: the hook API may change in the next minor
    release before 1.0, and in the next major release after."""
    nums = [int(n) for n in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    major, minor = nums[0], nums[1]
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    extra = f"[{extras}]" if extras else ""
    return f"cookbook-cli{extra}>={'.'.join(str(n) for n in nums[:3])},<{upper}"


def render_template(text: str, variables: dict[str, str], source: str = "template") -> str:
    """Fill `{{key}}` placeholders; an unknown key is an error naming it."""

    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in variables:
            raise KeyError(f"{source}: unknown placeholder {{{{{key}}}}}")
        return variables[key]

    return _PLACEHOLDER.sub(fill, text)


def planned_files(names: PluginNames) -> list[tuple[str, str]]:
    """(template path, destination relative to the package root) of every file."""
    return [(src, dest.format(module=names.module, dist=names.dist)) for src, dest in _COMMON + _FILES[names.kind]]


def default_directory(names: PluginNames) -> Path:
    return Path(names.dist)


def new_plugin(kind: str, name: str, directory: str | Path | None = None) -> Path:
    """Write a new plugin package of `kind` registering `name` into `directory`
    (default: `./cookbook-<name>`), which must not exist or be empty. Returns it."""
    names = plugin_names(kind, name)
    _refuse_registered(names)
    target = Path(directory).expanduser() if directory is not None else default_directory(names)
    if target.exists():
        if not target.is_dir():
            raise CookbookError(f"{target} already exists and is a file; choose another --dir")
        if any(target.iterdir()):
            raise CookbookError(f"directory {target} already exists and is not empty; refusing to overwrite it (choose another --dir)")
    variables = names.variables()
    package = resources.files("cookbook_cli.scaffold")
    outputs: list[tuple[Path, bytes]] = []
    for src, dest in planned_files(names):
        source = package.joinpath(src[3:]) if src.startswith("../") else package.joinpath("templates", src)
        data = source.read_bytes()
        if src.endswith(".tmpl"):
            data = render_template(data.decode("utf-8"), variables, src).encode("utf-8")
        outputs.append((target / dest, data))
    try:
        for path, data in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except OSError as e:
        raise CookbookError(f"cannot write the plugin package into {target}: {e.strerror or e}") from None
    return target


def _refuse_registered(names: PluginNames) -> None:
    """A name another plugin already registers would make both clash (every
    command using that registry would fail) once the new package is installed."""
    from cookbook_cli.plugins import registry

    hook, list_command = KIND_INFO[names.kind]
    entry = registry.ALL[hook].entries().get(names.name)
    if entry is not None:
        raise CookbookError(
            f"{names.kind} {names.name!r} is already registered by {entry.plugin!r}; installed beside it, a plugin "
            f"registering it again would clash: choose another name (`{list_command}` shows those taken)"
        )


def tiny_tokenizer_path() -> Path:
    """The folder of the tiny ChatML tokenizer (tokenizer.json,
    tokenizer_config.json, chat_template.jinja) shipped with cookbook."""
    return Path(str(resources.files("cookbook_cli.scaffold").joinpath("tiny_chatml")))
