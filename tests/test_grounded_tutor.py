"""The grounded tutor: answers made of course sentences (by grammar), with sources; silence when the course is."""

from __future__ import annotations

import re

import pytest

from tutor.grounded import NOT_IN_COURSE, GroundedTutor, covers, literal, sentence_regex, split_answer

SENTENCES = [
    "Dropout is a regularization technique that randomly switches off units (a fraction p) during training.",
    "Early stopping halts training when the validation error starts to rise.",
    "L2 regularization adds the sum of the squared weights to the loss.",
]


def test_the_grammar_admits_only_the_offered_sentences():
    pattern = sentence_regex(SENTENCES).pattern
    assert re.fullmatch(pattern, SENTENCES[0])
    assert re.fullmatch(pattern, f"{SENTENCES[2]} {SENTENCES[0]}")  # chosen and ordered by the model
    assert not re.fullmatch(pattern, "Dropout is a regularization technique.")  # a paraphrase is not a sentence
    assert not re.fullmatch(pattern, " ".join(SENTENCES + SENTENCES[:1]))  # at most three
    assert re.fullmatch(literal("a (b) [c] {d} e.f*g?"), "a (b) [c] {d} e.f*g?")


def test_with_a_lead_the_answer_opens_with_it_and_the_model_adds_the_rest():
    pattern = sentence_regex(SENTENCES, lead=SENTENCES[1]).pattern
    assert re.fullmatch(pattern, SENTENCES[1])
    assert re.fullmatch(pattern, f"{SENTENCES[1]} {SENTENCES[2]} {SENTENCES[0]}")
    assert not re.fullmatch(pattern, f"{SENTENCES[0]} {SENTENCES[1]}")  # the lead comes first
    assert not re.fullmatch(pattern, f"{SENTENCES[1]} {SENTENCES[1]}")  # and only once
    assert re.fullmatch(sentence_regex(SENTENCES[:1], lead=SENTENCES[0]).pattern, SENTENCES[0])


def test_ranking_puts_the_definition_of_what_is_asked_first():
    from quizgen.glossary import sentences
    from tutor.grounded import Candidate, rank
    from tutor.knowledge import open_kb

    course = open_kb("course")
    question = "What is the out-of-bag error of a random forest?"
    pool = [
        Candidate(s, h.passage.cite(), i)
        for i, h in enumerate(course.search(question, k=3))
        for s in sentences(h.passage)
    ]
    best = rank(question, pool)[0].sentence.text
    # The cosine alone put "Out-of-bag error gives a free estimate ..." first and the definition last of six.
    assert best.startswith("Out-of-bag error is a built-in performance estimate"), best


def test_an_answer_splits_back_into_its_sentences():
    text = f"{SENTENCES[1]} {SENTENCES[0]}"
    assert split_answer(text, SENTENCES) == [SENTENCES[1], SENTENCES[0]]
    with pytest.raises(ValueError, match="not made of"):
        split_answer("Something the course never said.", SENTENCES)


def test_coverage_separates_course_questions_from_off_topic_ones():
    from tutor.knowledge import open_kb

    course = open_kb("course")
    for question in ("How does dropout work during training?", "What is the vanishing gradient problem?"):
        assert covers(course, question, course.search(question, k=3)), question
    for question in ("At what temperature should I bake sourdough bread?", "Who wrote Pride and Prejudice?"):
        assert not covers(course, question, course.search(question, k=3)), question


def test_real_model_extractive_answer_is_course_sentences_with_sources(llama_model):
    from tutor.knowledge import open_kb

    course = open_kb("course")
    tutor = GroundedTutor(llama_model, course)
    answer = tutor.answer("What does dropout do during training?")
    assert answer.grounded and answer.sources
    offered = [
        s
        for s, _ in tutor.offered_sentences(
            "What does dropout do during training?", tutor.retrieve("What does dropout do during training?")
        )
    ]
    chosen = split_answer(answer.text, offered)  # every sentence said is a sentence of the course
    texts = {d: course.document_text(d) for d in course.documents()}
    assert all(any(s in t for t in texts.values()) for s in chosen)
    assert any(s.startswith("regularization.md") for s in answer.sources)
    shown = "".join(tutor.stream("What does dropout do during training?"))
    assert shown == answer.render() and "Sources:" in shown


def test_real_model_a_streamed_answer_shows_its_first_sentence_before_the_model_runs(llama_model):
    from tutor.knowledge import open_kb

    calls = []

    class Counting:  # the real model, with its calls counted
        def __getattr__(self, name):
            calls.append(name)
            return getattr(llama_model, name)

    question = "What does dropout do during training?"
    tutor = GroundedTutor(Counting(), open_kb("course"))
    pieces = tutor.stream(question)
    first = next(pieces)
    assert calls == [], "the opening sentence is decided by the ranking, not the model"
    lead = tutor.offered_sentences(question, tutor.retrieve(question))[0][0]
    assert first == lead
    rest = "".join(pieces)
    assert "generate" in calls
    assert first + rest == GroundedTutor(llama_model, open_kb("course")).answer(question).render()


def test_real_model_off_topic_question_gets_not_in_the_course(llama_model):
    from tutor.knowledge import open_kb

    tutor = GroundedTutor(llama_model, open_kb("course"))
    answer = tutor.answer("In which year did the Western Roman Empire fall?")
    assert answer.text == NOT_IN_COURSE and not answer.grounded and not answer.sources
