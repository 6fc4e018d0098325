"""Program logic of the base Model, through the scripted FakeModel (real-model tests are separate)."""

from __future__ import annotations

import pytest

from tutor.errors import InputError, TutorError
from tutor.models import ConstraintViolation, FakeModel, Sampling, to_messages
from tutor.models.base import SpecialTokens, split_continuation


def test_messages_normalise_and_reject_bad_roles() -> None:
    assert to_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(ValueError, match="role"):
        to_messages([{"role": "wizard", "content": "x"}])
    with pytest.raises(ValueError, match="no messages"):
        to_messages([])


def test_invalid_scripted_output_is_retried_once_then_raises() -> None:
    fake = FakeModel(['{"a": 1', '{"a": 1}'])
    assert fake.generate("x", {"type": "object", "properties": {"a": {"type": "integer"}}}, max_tokens=10) == '{"a": 1}'
    # The retry doubled the token budget.
    assert [call[2].max_tokens for call in fake.calls] == [10, 20]
    fake = FakeModel(["nope", "still nope"])
    with pytest.raises(ConstraintViolation):
        fake.generate("x", ["yes", "no"])


def test_stream_checks_the_joined_text() -> None:
    fake = FakeModel(['{"answer": "forty two"}', "bad"])
    assert "".join(fake.stream("q", {"type": "object"})) == '{"answer": "forty two"}'
    with pytest.raises(ConstraintViolation):
        list(fake.stream("q", ["good"]))


def test_choose_reads_one_distribution_per_prompt() -> None:
    fake = FakeModel().enqueue_choice("C", "A")
    picks = fake.choose(["q1", "q2"], ["A", "B", "C", "D"])
    assert [p.answer for p in picks] == ["C", "A"]
    assert abs(sum(picks[0].probs.values()) - 1) < 1e-9
    assert picks[0].probs["C"] > 0.9


def test_choose_falls_back_to_loglikelihood_for_multi_token_choices() -> None:
    # Fake loglikelihood prefers shorter continuations; "no" is two tokens, "maybe" five.
    picks = FakeModel().choose(["q"], [["maybe", "no"]])
    assert picks[0].answer == "no"
    assert picks[0].logprobs == {"maybe": -5.0, "no": -2.0}


def test_choose_rejects_bad_choices() -> None:
    with pytest.raises(ValueError, match="distinct"):
        FakeModel().choose(["q"], ["A", "A"])
    with pytest.raises(ValueError, match="2 prompts but 1"):
        FakeModel().choose(["q", "r"], [["A", "B"]])


def test_continuation_split_moves_the_context_space_to_the_answer() -> None:
    fake = FakeModel()
    ctx, cont = split_continuation(fake, "Answer: ", "A")
    assert fake.tokenize("Answer:") == ctx
    assert cont == [ord(" "), ord("A")]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("temperature", -0.1), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5),
     ("repetition_penalty", 0.0)],
)  # fmt: skip
def test_sampling_rejects_bad_values_with_an_error_not_an_assert(field: str, value: float) -> None:
    # An explicit check survives `python -O`; the error is a ValueError and a TutorError (a user can fix it).
    with pytest.raises(InputError, match=field) as caught:
        Sampling(**{field: value})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TutorError)
    with pytest.raises(ValueError, match="max_tokens"):
        FakeModel(["x"]).generate("q", max_tokens=0)


class _Bos(FakeModel):
    """Character tokens, with "^" (94) as BOS and "$" (36) as EOS."""

    def __init__(self, add_bos: bool, bos: int | None = 94) -> None:
        super().__init__()
        self.special = SpecialTokens(bos=bos, eos=36, add_bos=add_bos)

    def special_tokens(self) -> SpecialTokens:
        return self.special


def test_the_bos_rule_adds_bos_once_where_the_tokenizer_adds_it() -> None:
    wants = _Bos(add_bos=True)
    assert wants.prompt_tokens("hi") == [94, ord("h"), ord("i")]
    assert wants.prompt_tokens("^hi") == [94, ord("h"), ord("i")], "a template that renders BOS gets no second"
    assert _Bos(add_bos=False).prompt_tokens("hi") == [ord("h"), ord("i")]
    assert _Bos(add_bos=False).prompt_tokens("^hi")[:1] == [94], "a rendered BOS is kept as the template wrote it"


def test_an_empty_context_is_bos_where_there_is_one_else_eos() -> None:
    assert _Bos(add_bos=False).start([]) == [94]
    assert _Bos(add_bos=True, bos=None).start([]) == [36]


def test_scoring_paths_see_the_started_tokens() -> None:
    seen: list[list[int]] = []

    class Recording(_Bos):
        def _next_token_logprobs(self, prompts: list[list[int]]) -> list:
            seen.extend(prompts)
            return super()._next_token_logprobs(prompts)

        def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
            seen.extend(ctx for ctx, _ in pairs)
            return super()._loglikelihood_tokens(pairs)

    model = Recording(add_bos=True)
    model.choose(["q"], ["A", "B"], chat=False)
    model.loglikelihood([("ctx", " x"), ("", "x")])
    assert seen == [[94, ord("q")], [94, *map(ord, "ctx")], [94]]
