"""The smollm2 renderer against SmolLM2's chat template, on the tiny GGUF's
tokenizer (which has SmolLM2's special tokens), so it is checked without the
real package too; tests/models/test_smollm2.py checks it on the real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cookbook_cli.models import tokenizer_source
from cookbook_cli.renderers import get_renderer
from cookbook_cli.types import TrainOnWhat

# SmolLM2-135M-Instruct's chat template, as its GGUF carries it
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_renderers_check_smollm2_matches_its_template(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    template = tmp_path / "smollm2.jinja"
    template.write_text(SMOLLM2_TEMPLATE)
    gguf_file = write_gguf(tmp_path / "tiny.gguf")
    proc = subprocess.run(
        [sys.executable, "-m", "cookbook_cli", "renderers", "check", "smollm2", "--tokenizer", str(gguf_file), "--template", str(template)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 mismatch(es)" in proc.stdout


def test_the_default_system_prompt_is_written_but_not_trained(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    renderer = get_renderer("smollm2", tokenizer_source(str(write_gguf(tmp_path / "tiny.gguf"))))
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    tokens, weights = renderer.build_supervised_example(messages, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    ids = tokens.to_ints()
    text = renderer.tokenizer.decode(ids)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
    )
    trained = renderer.tokenizer.decode([t for t, w in zip(ids, list(weights), strict=True) if w > 0])
    assert trained == "Hello<|im_end|>"
    own = [{"role": "system", "content": "Be brief."}, *messages]
    assert "SmolLM" not in renderer.tokenizer.decode(renderer.build_generation_prompt(own).to_ints())
    assert renderer.get_stop_sequences() == [renderer.tokenizer.token_to_id("<|im_end|>")]
