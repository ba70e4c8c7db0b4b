"""Re-rendering a completion for a teacher with another renderer or tokenizer,
and putting its logprobs back on the student's tokens."""

from __future__ import annotations

import pytest

from cookbook_cli.conversations import Conversation
from cookbook_cli.distill.align import Aligner, AlignmentError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.types import TrainOnWhat

PROMPT = Conversation([{"role": "user", "content": "say hello there"}])


@pytest.fixture(scope="module")
def toy():
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path

    return get_tokenizer(toy_tokenizer_path())


def completion(renderer, text):
    """What the student samples for `text`: its reply's tokens after the generation
    prompt, ending with the stop sequence when that is a string (role_colon's "\n\nUser:")."""
    head = renderer.build_generation_tokens(PROMPT.messages)
    full, _ = renderer.build_supervised_tokens([*PROMPT.messages, {"role": "assistant", "content": text}], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    tokens = full[len(head):]
    stop = renderer.get_stop_sequences()
    if stop and isinstance(stop[0], str):
        body = renderer.tokenizer.decode(tokens).removesuffix("\n\n")
        tokens = renderer.tokenizer.encode(body + stop[0])
    return tokens


def test_same_tokenizer_other_renderer_puts_each_teacher_logprob_on_the_same_word():
    llama = get_tokenizer("llama3")
    student, teacher = get_renderer("llama3", llama), get_renderer("role_colon", llama)
    aligner = Aligner(student, teacher)
    tokens = completion(student, "hello there")  # "hello", " there", <|eot_id|>
    assert [llama.decode([t]) for t in tokens] == ["hello", " there", "<|eot_id|>"]
    rerendered, content = aligner.rerender(PROMPT, tokens)
    teacher_tokens = rerendered.tokens[rerendered.start:]
    assert llama.decode(teacher_tokens) == " hello there\n\n" and content == "hello there"
    pieces = [llama.decode([t]) for t in teacher_tokens]  # " hello", " there", "\n\n"
    assert pieces == [" hello", " there", "\n\n"]
    got = aligner.align(tokens, rerendered, [-1.0, -2.0, -0.25], content)
    # " hello" (framing space + content) <-> "hello"; " there" <-> " there"; "\n\n" <-> <|eot_id|>
    assert got.tolist() == [-1.0, -2.0, -0.25]


def test_other_tokenizer_shares_a_words_teacher_logprob_among_its_student_tokens(toy):
    llama = get_tokenizer("llama3")
    student, teacher = get_renderer("role_colon", toy), get_renderer("role_colon", llama)
    aligner = Aligner(student, teacher)
    tokens = completion(student, "hello there")  # one token per character: " hello there\n\nUser:"
    assert len(tokens) == len(" hello there\n\nUser:")
    rerendered, content = aligner.rerender(PROMPT, tokens)
    got = aligner.align(tokens, rerendered, [-1.0, -2.0, -0.5], content)
    # " hello": 6 characters share -1.0; " there": 6 share -2.0; the stop "\n\nUser:" (7) shares the end marker's -0.5
    assert got.tolist() == pytest.approx([-1 / 6] * 6 + [-2 / 6] * 6 + [-0.5 / 7] * 7)
    assert got.sum() == pytest.approx(-3.5)  # the whole reply's logprob is the teacher's


def test_a_completion_cut_at_max_tokens_is_scored_without_the_teachers_end_marker(toy):
    llama = get_tokenizer("llama3")
    student, teacher = get_renderer("role_colon", toy), get_renderer("role_colon", llama)
    aligner = Aligner(student, teacher)
    tokens = completion(student, "hello there")[:9]  # " hello th": no stop sequence
    rerendered, content = aligner.rerender(PROMPT, tokens)
    assert content == "hello th"
    n = len(rerendered.tokens) - rerendered.start
    got = aligner.align(tokens, rerendered, [-1.0] * n, content)
    assert len(got) == 9 and got.sum() == pytest.approx(-(n - 1))  # the end marker's logprob is left out


def test_a_teacher_tokenizer_that_cannot_spell_the_reply(toy):
    llama = get_tokenizer("llama3")
    student, teacher = get_renderer("llama3", llama), get_renderer("role_colon", toy)
    aligner = Aligner(student, teacher)
    tokens = completion(student, "Hello 42")
    rerendered, content = aligner.rerender(PROMPT, tokens)
    n = len(rerendered.tokens) - rerendered.start
    with pytest.raises(AlignmentError, match="not in the teacher's tokens"):
        aligner.align(tokens, rerendered, [0.0] * n, content)


def test_a_teacher_token_running_from_the_text_into_the_end_marker_counts_as_text(toy):
    llama = get_tokenizer("llama3")
    student, teacher = get_renderer("role_colon", toy), get_renderer("role_colon", llama)
    aligner = Aligner(student, teacher)
    tokens = toy.encode("ys vm\n")  # cut at max_tokens right after a newline
    rerendered, content = aligner.rerender(PROMPT, tokens)
    pieces = [llama.decode([t]) for t in rerendered.tokens[rerendered.start:]]
    assert content == "ys vm\n" and pieces[-1] == "\n\n\n"  # the text's newline and the end marker in one token
    got = aligner.align(tokens, rerendered, [-1.0] * len(pieces), content)
    assert len(got) == 6 and got.sum() == pytest.approx(-len(pieces))
