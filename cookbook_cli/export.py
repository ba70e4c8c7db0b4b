"""`cookbook export`: a run's checkpoint as files other tools load.

- LoRA, `merge=True`: a full Hugging Face model folder with the adapter folded
  in, `W += (alpha / r) * B @ A` computed in float32 and cast back to the base
  model's dtype (sharded safetensors, config, tokenizer, chat template).
  Adapting a tied output embedding unties it (the merged output layer differs
  from the input embedding), and config.json says so.
- LoRA, default: a PEFT adapter folder (adapter_config.json,
  adapter_model.safetensors) that `peft.PeftModel.from_pretrained` and vLLM's
  `--lora-modules` load over the base model. A base model only the engine can
  build (the local engine's `random:...`) is written beside it, in `base/`.
- Full fine-tuning: the model folder.

The tokenizer is the one cookbook trained with (tokenizer.json and
tokenizer_config.json). The chat template is written only when it reproduces
the run's renderer token for token on cookbook's built-in conversations (the
check of `cookbook renderers check`); otherwise it is left out and export.json
and README.md say why. An existing output folder is never overwritten; the
folder is written beside its place and renamed into it when complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.engines.weights import HFWeights
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.sources import ModelSource

MERGED, PEFT, FULL = "merged", "peft", "full"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class ExportResult:
    out: Path
    kind: str  # merged, peft or full
    chat_template: bool
    notes: list[str] = field(default_factory=list)


# -- the LoRA merge --------------------------------------------------------------------------


def lora_scale(config: dict[str, Any]) -> float:
    """alpha / r (alpha / sqrt(r) for rsLoRA); adapters this merge cannot express are refused."""
    for key, what in (("use_dora", "DoRA"), ("lora_bias", "LoRA biases"), ("fan_in_fan_out", "fan-in/fan-out (Conv1D) layers")):
        if config.get(key):
            raise CookbookError(f"the adapter uses {what}, which export --merge does not fold in; export the PEFT adapter instead")
    for key in ("rank_pattern", "alpha_pattern"):
        if config.get(key):
            raise CookbookError(f"the adapter has a per-layer {key}; export --merge folds in one rank and alpha only")
    if config.get("modules_to_save") or config.get("trainable_token_indices"):
        raise CookbookError("the adapter trains whole modules or token rows besides LoRA; export the PEFT adapter instead")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def lora_pairs(tensors: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Module path -> (A, B) from a peft adapter's tensors
    (`base_model.model.<path>.lora_A.weight`, `...lora_B.weight`)."""
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        name = key.removeprefix("base_model.model.")
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in name:
                module = name.split(marker)[0]
                pairs.setdefault(module, {})[part] = tensor
                break
        else:
            raise CookbookError(f"adapter tensor {key!r} is not a LoRA A or B matrix; export the PEFT adapter instead")
    out = {}
    for module, ab in pairs.items():
        if set(ab) != {"lora_A", "lora_B"}:
            raise CookbookError(f"adapter module {module!r} lacks its lora_A or lora_B matrix")
        out[module] = (ab["lora_A"], ab["lora_B"])
    return out


def merge_lora(model: Any, adapter_folder: Path) -> list[str]:
    """Fold the adapter in `adapter_folder` into `model` (float32) in place;
    returns the merged module paths. A tied output embedding is untied first."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((adapter_folder / "adapter_config.json").read_text(encoding="utf-8"))
    scale = lora_scale(config)
    pairs = lora_pairs(load_file(str(adapter_folder / "adapter_model.safetensors")))
    output = model.get_output_embeddings()
    with torch.no_grad():
        for path, (a, b) in sorted(pairs.items()):
            try:
                module = model.get_submodule(path)
            except AttributeError:
                raise CookbookError(f"the adapter adapts {path!r}, which the base model does not have: is it another base model?") from None
            weight = module.weight
            if weight.shape != (b.shape[0], a.shape[1]):
                raise CookbookError(
                    f"adapter matrices of {path!r} are {tuple(b.shape)} x {tuple(a.shape)}, the layer is {tuple(weight.shape)}: "
                    "the checkpoint was trained on another base model"
                )
            if module is output and weight is model.get_input_embeddings().weight:
                module.weight = torch.nn.Parameter(weight.detach().clone())
                model.config.tie_word_embeddings = False
                weight = module.weight
            weight.add_(scale * (b.to(torch.float32) @ a.to(torch.float32)))
    return sorted(pairs)


# -- the chat template -----------------------------------------------------------------------


def checked_template(renderer: Renderer, template: str | None, given: bool) -> tuple[str | None, str]:
    """The template when it reproduces `renderer`'s tokens on the built-in
    conversations, and a line saying what was decided."""
    from cookbook_cli.renderers.check import MISMATCH, check_renderer
    from cookbook_cli.renderers.check_conversations import builtin_conversations

    if template is None:
        return None, (
            f"no chat template written: the tokenizer has none; pass --chat-template FILE (checked against renderer {renderer.name!r})"
        )
    names, convs = builtin_conversations()
    report = check_renderer(renderer, convs, template, names=names)
    if report.ok:
        return template, f"chat template written: it reproduces renderer {renderer.name!r} on {report.compared} comparisons"
    bad = next((r for r in report.results if r.failed), None)
    where = ""
    if bad is not None:
        c = next((c for c in bad.comparisons if c.status == MISMATCH), None)
        where = f" (first mismatch: {bad.name}, {c.kind})" if c is not None else f" ({bad.name})"
    line = f"the chat template does not reproduce renderer {renderer.name!r}'s tokens{where}"
    if given:
        raise CookbookError(f"--chat-template: {line}; give the template of this renderer's format, or leave the option out")
    return None, f"no chat template written: {line}, so it would prompt the model differently from training"


# -- writing ---------------------------------------------------------------------------------


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str, option: str) -> int:
    """Bytes of a size such as `5GB`, `500MB` or `2GiB` (more than zero)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if not m or unit not in _UNITS:
        raise CookbookError(f"{option} {text!r} is not a size: write a number and a unit, e.g. 5GB, 500MB or 2GiB")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < 1:
        raise CookbookError(f"{option} {text!r} is no size: give more than zero, e.g. 500MB")
    return size


@contextmanager
def _scratch(out: Path) -> Iterator[Path]:
    """A folder beside `out` renamed to it when complete; the parents of `out`
    that did not exist are made, and removed again if the export fails."""
    made = [p for p in reversed(out.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for parent in reversed(made):  # deepest first
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_tokenizer(folder: Path, renderer: Renderer, template: str | None) -> None:
    tok = renderer.tokenizer
    tok.hf.save(str(folder / "tokenizer.json"))
    config = {k: v for k, v in dict(tok.config).items() if k != "chat_template"}
    config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    if template is not None:
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")


def _save_model(model: Any, folder: Path, dtype: Any, max_shard_size: int) -> None:
    from cookbook_cli.engines.local.quiet import no_hf_progress_bars

    model.to(dtype)
    with no_hf_progress_bars():
        model.save_pretrained(str(folder), max_shard_size=max_shard_size)


def _readme(kind: str, source: ModelSource, template_line: str, base_dir: bool, lm_head: bool) -> str:
    lines = [
        f"# {source.describe()}",
        "",
        f"Exported by `cookbook export` ({kind}). Base model: `{source.base_model}`; renderer: `{source.renderer}`.",
        "",
        f"- {template_line}.",
    ]
    if kind == PEFT:
        base = "base" if base_dir else source.base_model
        lines += [
            "",
            "```python",
            "from transformers import AutoModelForCausalLM",
            "from peft import PeftModel",
            f"model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({base!r}), 'THIS_FOLDER')",
            "```",
            "",
            f"vLLM: `vllm serve {base} --enable-lora --lora-modules mine=THIS_FOLDER`.",
        ]
        if base_dir:
            lines.append("The base model exists only inside cookbook's engine, so it is written in `base/` (a model folder).")
        if lm_head:
            lines.append("The adapter also adapts the output embedding (lm_head); servers that cannot apply LoRA there need `cookbook export --merge`.")
    else:
        lines += ["", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "model = AutoModelForCausalLM.from_pretrained('THIS_FOLDER')", "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')", "```",
                  "", "vLLM: `vllm serve THIS_FOLDER`."]
    return "\n".join(lines) + "\n"


def _hf_weights_of(engine: str) -> Any:
    from cookbook_cli.plugins import registry

    hf_weights = registry.engines.get(engine).extra.get("hf_weights")
    if not callable(hf_weights):
        raise CookbookError(
            f"engine {engine!r} keeps its weights as a service, not as files cookbook can export; "
            "download the checkpoint with the engine's own tools"
        )
    return hf_weights


@contextmanager
def _sampler_weights(source: ModelSource) -> Iterator[HFWeights]:
    """The engine's files of the source's sampler weights; a checkpoint with
    training state only is saved for sampling into a temporary folder first."""
    from cookbook_cli.sources import create_service

    hf_weights = _hf_weights_of(source.engine)
    path = source.sampler_path()
    if path is not None:
        yield hf_weights(path)
        return
    from cookbook_cli.sources import ModelSource

    with tempfile.TemporaryDirectory(prefix="cookbook-export-") as tmp:
        # A service whose checkpoints go to the temporary folder: the run directory is not written.
        scratch_source = ModelSource(source.engine, source.base_model, source.renderer, source.engine_options, Path(tmp))
        service = create_service(scratch_source)
        try:
            tc = service.create_training_client_from_state(source.state_path() or "")
            saved = tc.save_weights_for_sampler("export").result().path
            yield hf_weights(saved)
        finally:
            if callable(getattr(service, "close", None)):
                service.close()


def export_checkpoint(
    target: str | Path,
    out: str | Path,
    merge: bool = False,
    checkpoint: str | None = None,
    renderer: str | None = None,
    chat_template: str | Path | None = None,
    max_shard_size: str = "5GB",
    model: str | None = None,
) -> ExportResult:
    """Export a run (its newest checkpoint, or `checkpoint`) or a checkpoint
    folder to `out` (see the module docstring). `model`, when given, must be
    the base model the checkpoint was trained from."""
    from cookbook_cli.models import model_spec
    from cookbook_cli.run.reader import RunReader
    from cookbook_cli.sources import renderer_for, resolve_source

    out_path = Path(out).expanduser()
    if out_path.exists():
        raise CookbookError(f"--out {str(out_path)!r} already exists; export never overwrites: remove it or choose another folder")
    shard_bytes = parse_size(max_shard_size, "--max-shard-size")
    for parent in out_path.parents:
        if parent.exists() and not parent.is_dir():
            raise CookbookError(f"cannot write --out {str(out_path)!r}: {str(parent)!r} is a file, not a folder")
    target_path = Path(target).expanduser()
    if RunReader.at(target_path) is not None:
        source = resolve_source(run=target_path, checkpoint=checkpoint, renderer=renderer, model=model)
    elif checkpoint is not None:
        raise CookbookError(f"{str(target)!r} is not a run directory; --checkpoint picks a checkpoint of a run")
    elif not target_path.exists() and "://" not in str(target):
        raise CookbookError(f"{str(target)!r} does not exist: give a run directory or a checkpoint folder of a run")
    else:
        source = resolve_source(checkpoint=str(target), renderer=renderer, model=model)
    _hf_weights_of(source.engine)
    template_text = None
    if chat_template is not None:
        tpl = Path(chat_template).expanduser()
        if not tpl.is_file():
            raise CookbookError(f"--chat-template file {str(tpl)!r} does not exist")
        template_text = tpl.read_text(encoding="utf-8")
    render = renderer_for(source)
    template, template_line = checked_template(render, template_text or render.tokenizer.chat_template, given=template_text is not None)

    with _sampler_weights(source) as weights:
        if weights.base_model != source.base_model:
            raise CookbookError(
                f"checkpoint {source.checkpoint_name!r} was trained from base model {weights.base_model!r}, but its run "
                f"{str(source.run_dir)!r} names {source.base_model!r}: a checkpoint of another base model"
            )
        kind = (MERGED if merge else PEFT) if weights.lora else FULL
        notes = [template_line]
        if merge and not weights.lora:
            notes.append("--merge: this is a full fine-tuning checkpoint, so the model folder is written as it is")
        with _scratch(out_path) as folder:
            meta: dict[str, Any] = {"kind": kind, "source": source.to_json(), "chat_template": template is not None, "notes": notes}
            lm_head = False
            base_dir = False
            if kind == MERGED:
                base, dtype = weights.load_base()
                merged = merge_lora(base, weights.folder)
                meta["merged_modules"] = len(merged)
                meta["untied_embeddings"] = not base.config.tie_word_embeddings and "lm_head" in merged
                meta["dtype"] = str(dtype).removeprefix("torch.")
                _save_model(base, folder, dtype, shard_bytes)
            elif kind == PEFT:
                adapter = json.loads((weights.folder / "adapter_config.json").read_text(encoding="utf-8"))
                base_dir = model_spec(source.base_model, source.engine) is not None
                adapter["base_model_name_or_path"] = None if base_dir else source.base_model
                (folder / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n", encoding="utf-8")
                shutil.copy2(weights.folder / "adapter_model.safetensors", folder / "adapter_model.safetensors")
                lm_head = any(str(t).split(".")[-1] == "lm_head" for t in adapter.get("target_modules") or [])
                meta["lora"] = {"r": adapter.get("r"), "lora_alpha": adapter.get("lora_alpha"), "target_modules": adapter.get("target_modules")}
                if base_dir:
                    base, dtype = weights.load_base()
                    (folder / "base").mkdir()
                    _save_model(base, folder / "base", dtype, shard_bytes)
                    _write_tokenizer(folder / "base", render, template)
                    meta["base_folder"] = "base"
            else:
                for f in weights.folder.iterdir():
                    if f.name != "meta.json" and f.is_file():
                        shutil.copy2(f, folder / f.name)
            _write_tokenizer(folder, render, template)
            (folder / "export.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            (folder / "README.md").write_text(_readme(kind, source, template_line, base_dir, lm_head), encoding="utf-8")
    return ExportResult(out_path, kind, template is not None, notes)
