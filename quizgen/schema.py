"""The quiz contract: what every backend is constrained to, and what the app, grading and export read.

Two layers:

* :class:`QuestionDraft` is what the model writes, under constrained decoding: the stem, exactly four
  options, the key letter, an explanation and one reason per wrong option. Every string has a
  ``maxLength``, so a small model cannot ramble past its token budget.
* :class:`Question` is the finished question: the draft plus what the agent already knows (the
  objective it tests, its Bloom level and difficulty) and ``wrong_reasons`` keyed by letter.

``Question.wrong_reasons`` maps each WRONG option's letter (the three letters other than ``answer``) to
a one-line reason it is wrong: ``{"A": "...", "C": "...", "D": "..."}`` when the key is ``"B"``.

A :class:`QuizItem` wraps a question with its verification status (``verified``, ``attempts``,
``issues``); a :class:`Quiz` holds the topic, the items and :class:`QuizMetadata`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
BLOOM_LEVELS: tuple[str, ...] = ("remember", "understand", "apply", "analyze", "evaluate", "create")

Letter = Literal["A", "B", "C", "D"]
Difficulty = Literal["easy", "medium", "hard"]
BloomLevel = Literal["remember", "understand", "apply", "analyze", "evaluate", "create"]

# Bounds on what the model writes. Strings close within these many characters, hence within as many
# tokens: a draft always fits the writer's token budget (see program.WRITE_MAX_TOKENS).
DRAFT_STEM_MAX = 120
DRAFT_OPTION_MAX = 50
DRAFT_EXPLANATION_MAX = 120
DRAFT_REASON_MAX = 60
# Bounds on a finished question. A grounded question quotes course sentences (its explanation is a sentence
# of the source, each wrong option's reason a sentence of that option's own passage), so they are looser.
STEM_MAX = 300
OPTION_MAX = 200
EXPLANATION_MAX = 400
REASON_MAX = 400
OBJECTIVE_MAX = 200
TOPIC_MAX = 200


def _clean(value: object) -> object:
    # The JSON grammar allows "\f" and "\u0000" in strings, and a small model writes them: one rule
    # (quizgen.text.clean: line breaks as "\n", other control characters dropped) before the bounds are checked,
    # so no model output can make an export invalid. The JSON schema the grammar is built from does not change.
    from quizgen.text import clean

    return clean(value) if isinstance(value, str) else value


Clean = BeforeValidator(_clean)
# A model's draft may pad a string ("none of the above "): stripped, so that "X" and "X " are one option to the checks.
# (The grammar's schema is unchanged; a string of spaces alone fails its minimum length and the draft is repaired.)
_Draft = {"strip_whitespace": True, "min_length": 1}
DraftStem = Annotated[str, StringConstraints(**{**_Draft, "min_length": 10}, max_length=DRAFT_STEM_MAX), Clean]
DraftOption = Annotated[str, StringConstraints(**_Draft, max_length=DRAFT_OPTION_MAX), Clean]
DraftExplanation = Annotated[str, StringConstraints(**_Draft, max_length=DRAFT_EXPLANATION_MAX), Clean]
DraftReason = Annotated[str, StringConstraints(**_Draft, max_length=DRAFT_REASON_MAX), Clean]
Stem = Annotated[str, StringConstraints(min_length=10, max_length=STEM_MAX), Clean]
OptionText = Annotated[str, StringConstraints(min_length=1, max_length=OPTION_MAX), Clean]
Explanation = Annotated[str, StringConstraints(min_length=1, max_length=EXPLANATION_MAX), Clean]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_MAX), Clean]
ObjectiveText = Annotated[str, StringConstraints(min_length=3, max_length=OBJECTIVE_MAX), Clean]


class Source(BaseModel):
    """Where a grounded string comes from: a passage of a knowledge base, and the exact text quoted from it.

    ``quote`` is a substring of the document's extracted text at ``start:end``; the key, the explanation or a
    wrong option's reason was taken from it verbatim, so a reader can check it against the course.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kb: str = Field(description="the knowledge base's name")
    doc: str = Field(description="the document, as the knowledge base names it")
    headings: tuple[str, ...] = Field(default=(), description="heading path inside the document, outermost first")
    start: int = Field(ge=0, description="character offset of the quote in the document's text")
    end: int = Field(ge=0, description="character offset just past the quote")
    quote: str = Field(min_length=1, max_length=2000, description="the sentence or passage quoted")

    def cite(self) -> str:
        """``doc › heading › subheading``: what a student reads under a question."""
        return " › ".join((self.doc, *self.headings))


class QuestionDraft(BaseModel):
    """One question as the model writes it (field order is generation order: the key after the options).

    ``wrong_reasons`` lists a reason for each wrong option, in letter order, skipping the key.
    """

    model_config = ConfigDict(extra="forbid")

    stem: DraftStem = Field(description="the question, ending with a question mark")
    options: list[DraftOption] = Field(min_length=4, max_length=4, description="four short, distinct answer options")
    answer: Letter = Field(description="the letter of the one correct option")
    explanation: DraftExplanation = Field(description="why the correct option is right")
    wrong_reasons: list[DraftReason] = Field(
        min_length=3, max_length=3, description="why each wrong option is wrong, in letter order"
    )


class Question(BaseModel):
    """A finished multiple-choice question; options are shown as A-D in order."""

    model_config = ConfigDict(extra="forbid")

    stem: Stem
    options: list[OptionText] = Field(min_length=4, max_length=4)
    answer: Letter
    explanation: Explanation
    wrong_reasons: dict[Letter, Reason] = Field(description="wrong option letter -> why it is wrong")
    difficulty: Difficulty = "medium"
    bloom_level: BloomLevel = "understand"
    objective: ObjectiveText
    source: Source | None = None  # the passage the key and explanation come from; None: written ungrounded
    reason_sources: dict[Letter, Source] = Field(
        default_factory=dict, description="wrong option letter -> the passage its reason quotes"
    )

    @model_validator(mode="after")
    def _reasons_cover_the_wrong_options(self) -> Question:
        wrong = set(LETTERS) - {self.answer}
        if set(self.wrong_reasons) != wrong:
            raise ValueError(
                f"wrong_reasons must have exactly the letters {sorted(wrong)}, got {sorted(self.wrong_reasons)}"
            )
        if not set(self.reason_sources) <= wrong:
            raise ValueError(f"reason_sources may name only the wrong letters {sorted(wrong)}")
        return self

    @property
    def grounded(self) -> bool:
        """Whether the key and explanation come from course text (a question written without a source is not)."""
        return self.source is not None

    @classmethod
    def from_draft(cls, draft: QuestionDraft, objective: str, bloom_level: str, difficulty: str) -> Question:
        """The finished question for a draft: its wrong reasons keyed by the wrong letters."""
        wrong = [letter for letter in LETTERS if letter != draft.answer]
        return cls(
            stem=draft.stem,
            options=list(draft.options),
            answer=draft.answer,
            explanation=draft.explanation,
            wrong_reasons=dict(zip(wrong, draft.wrong_reasons, strict=True)),
            difficulty=difficulty,
            bloom_level=bloom_level,
            objective=objective[:OBJECTIVE_MAX],
        )

    def option(self, letter: str) -> str:
        """The text of option ``letter`` (A-D)."""
        return self.options[LETTERS.index(letter)]

    @property
    def correct_option(self) -> str:
        """The text of the correct option."""
        return self.option(self.answer)


class QuizItem(BaseModel):
    """A question and what the agent found out about it before handing it on."""

    question: Question
    verified: bool = False  # the model, answering blind, agreed with the key, and every check passed
    attempts: int = Field(default=1, ge=1)  # how many drafts were written for it
    issues: list[str] = Field(default_factory=list)  # readable reasons it is flagged (empty when it passed)
    seconds: float = Field(default=0.0, allow_inf_nan=False)  # time spent writing, checking and verifying it
    blind_answer: Letter | None = None  # the letter the model chose without the source: a difficulty signal only

    @property
    def checks_passed(self) -> bool:
        """Every deterministic check passed (it may still be unverified by the model's blind answer)."""
        return not any(not issue.startswith(VERIFY_PREFIX) for issue in self.issues)


VERIFY_PREFIX = "verification:"  # issues from the blind answer start with this; the rest come from checks


class QuizMetadata(BaseModel):
    """How a quiz was made."""

    model: str = ""
    seed: int | None = None
    temperature: float = Field(default=0.0, allow_inf_nan=False)
    difficulty: Difficulty = "medium"
    seconds: float = Field(default=0.0, allow_inf_nan=False)
    created: str = ""  # ISO 8601 time
    source: str | None = None  # the first characters of the source text, when there was one
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _finite(cls, extra: dict[str, Any]) -> dict[str, Any]:
        # JSON has no Infinity or NaN: a quiz holding one could not be written back as it was read.
        def check(value: Any) -> None:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("metadata.extra holds Infinity or NaN, which JSON cannot hold: use a number or null")
            for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
                check(item)

        check(extra)
        return extra


class Quiz(BaseModel):
    """A topic's questions with their verification status, and how the quiz was made."""

    topic: str
    questions: list[QuizItem] = Field(default_factory=list)
    metadata: QuizMetadata = Field(default_factory=QuizMetadata)

    @property
    def verified_count(self) -> int:
        """How many questions passed every check and the blind answer."""
        return sum(item.verified for item in self.questions)

    def __len__(self) -> int:
        return len(self.questions)
