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


def test_a_question_framed_as_a_problem_or_a_contraction_is_still_covered(tmp_path):
    from tutor.knowledge import open_kb
    from tutor.knowledge.search import content_terms

    assert content_terms("What's wrong with the model's loss? Doesn't it rise?") == ["wrong", "model", "loss", "rise"]
    notes = tmp_path / "missing.md"
    notes.write_text(
        "# Missing data\n\nMean imputation replaces each missing value with the mean of the observed values. It "
        "shrinks the variance of the feature and weakens its correlations.\n\nListwise deletion drops every row "
        "that has a missing value, which can throw away most of a dataset.\n"
    )
    kb = open_kb("missing", create=True, path=tmp_path / "knowledge.db")
    kb.add([notes])
    for question in (
        "Why is mean imputation a problem?",
        "What are the drawbacks of mean imputation?",
        "What's wrong with listwise deletion?",
    ):
        assert covers(kb, question, kb.search(question, k=3)), question
    for question in ("What's the capital of Australia?", "What are the benefits of sourdough bread?"):
        assert not covers(kb, question, kb.search(question, k=3)), question


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


NOTES = """# Reinforcement learning

Reinforcement learning studies how an agent learns to act by trial and error. At each step the agent observes the
state of its environment, chooses an action, and receives a reward and the next state. The goal is not to maximise
the next reward but the return: the sum of all future rewards, each discounted by a factor gamma between 0 and 1.

## Policies and value functions

A policy maps each state to an action, or to a probability distribution over actions. The value of a state under a
policy is the expected return when the agent starts in that state and follows the policy. The action-value
function Q(s, a) is the expected return after taking action a in state s and following the policy afterwards.

The Bellman equation expresses the value of a state as the immediate reward plus the discounted value of the next
state. Dynamic programming methods such as value iteration solve it when the environment's transition
probabilities are known.

## Q-learning

Q-learning is a model-free method: it learns Q(s, a) from experience without a model of the environment. After each
step it moves Q(s, a) towards the reward plus gamma times the largest Q-value of the next state. The size of that
move is set by the learning rate alpha.

Q-learning is off-policy, because it learns the value of the greedy policy while following another one.

## Deep reinforcement learning

When there are too many states for a table, a neural network approximates the Q-function. A deep Q-network (DQN)
stabilises training with two tricks: an experience replay buffer, which stores past transitions and samples random
mini-batches from them, and a target network, a copy of the Q-network that is updated only every few thousand
steps.
"""  # a page written after the ranking was (the answers below were wrong on it)


@pytest.fixture(scope="module")
def notes_kb(tmp_path_factory):
    """A scratch knowledge base of one short page (no model: ranking and offering only)."""
    from tutor.knowledge import open_kb

    folder = tmp_path_factory.mktemp("notes")
    (folder / "reinforcement_learning.md").write_text(NOTES, encoding="utf-8")
    kb = open_kb("rl", create=True, path=folder / "knowledge.db")
    kb.add([folder / "reinforcement_learning.md"])
    return kb


def test_the_kind_of_question_is_read_off_its_wording():
    from tutor.grounded import question_kind

    for question in ("Why is Q-learning called off-policy?", "Is it safe to add more trees?", "Should I scale first?"):
        assert question_kind(question) == "why", question
    for question in ("How does k-NN decide the class?", "How is R² computed?"):
        assert question_kind(question) == "how", question
    for question in ("How is boosting different from bagging?", "What's the difference between L1 and L2?"):
        assert question_kind(question) == "compare", question
    for question in ("What is dropout?", "How many trees should a forest have?", "Which loss does it use?"):
        assert question_kind(question) == "what", question


def test_a_why_question_opens_with_the_reason_not_the_definition_of_the_topic_it_is_set_in(notes_kb):
    tutor = GroundedTutor(None, notes_kb)
    question = "Why is Q-learning called off-policy?"
    lead = tutor.offered_sentences(question, tutor.retrieve(question))[0][0]
    # "Q-learning is a model-free method: ..." used to open: it defines the question's topic, not its point.
    assert lead.startswith("Q-learning is off-policy, because"), lead
    question = "What is Q-learning?"  # asked for, the definition still opens
    assert tutor.offered_sentences(question, tutor.retrieve(question))[0][0].startswith("Q-learning is a model-free")


def test_the_model_is_offered_no_aside_from_another_section(notes_kb):
    tutor = GroundedTutor(None, notes_kb)
    question = "How does experience replay work?"
    offered = [text for text, _ in tutor.offered_sentences(question, tutor.retrieve(question))]
    assert "experience replay buffer" in offered[0], offered
    # The model added "The size of that move is set by the learning rate alpha." (Q-learning) to this answer.
    assert not any("learning rate alpha" in text for text in offered), offered


def test_a_generative_answer_does_not_present_its_passages_as_sources_of_its_words():
    from tutor.grounded import GENERATIVE_SOURCES, Answer

    extractive = Answer("Dropout switches off units.", ["dropout.md › Dropout"]).render()
    generative = Answer("Dropout is a kind of pooling.", ["dropout.md › Dropout"], mode="generative").render()
    assert extractive.endswith("\n\nSources:\n- dropout.md › Dropout")
    assert "Sources:" not in generative and generative.endswith(f"{GENERATIVE_SOURCES}\n- dropout.md › Dropout")
