"""The glossary: definitions read off course sentences by rule, and the stems built from them (no model)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from quizgen.glossary import Sentence, definitions, is_prose, parse_definition, split_sentences
from quizgen.grounded import definition_stem, fact_stem, term_stem


@dataclass(frozen=True)
class P:
    """A passage as the knowledge base hands it out (only what the glossary reads)."""

    text: str
    start: int = 0
    doc: str = "notes.md"
    headings: tuple[str, ...] = ("Notes",)
    id: int = 0


def d_of(text: str):
    return parse_definition(Sentence(text, 0, len(text), P(text)))


def test_sentences_keep_abbreviations_and_spans():
    text = 'Dropout is a technique, e.g. for nets. It works (mostly). Then "A quote." Next one! Last'
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Dropout is a technique, e.g. for nets.",
        "It works (mostly).",
        'Then "A quote."',
        "Next one!",
        "Last",
    ]


@pytest.mark.parametrize(
    ("sentence", "term", "kind", "relative"),
    [
        (
            "Dropout is a regularization technique that randomly switches off a fraction of a layer's units.",
            "Dropout",
            "regularization technique",
            "randomly switches off a fraction of a layer's units",
        ),
        (
            "Logistic regression is a classification algorithm used to assign observations to discrete classes.",
            "Logistic regression",
            "classification algorithm",
            "",
        ),
        (
            "The learning rate is a hyperparameter that sets the size of each update step.",
            "learning rate",
            "hyperparameter",
            "sets the size of each update step",
        ),
        # A preposition before "which", or a clause with its own subject: no "Which K V?" form.
        (
            "Training data is the set of labelled examples from which a model learns its parameters.",
            "Training data",
            "set",
            "",
        ),
        (
            "Information gain is the reduction in impurity that a split achieves on its node.",
            "Information gain",
            "reduction",
            "",
        ),
    ],
)
def test_copula_definitions(sentence, term, kind, relative):
    d = d_of(sentence)
    assert d is not None
    assert (d.term, d.kind, d.relative) == (term, kind, relative)


def test_aliases_and_naming_definitions():
    d = d_of("Stochastic gradient descent (SGD) is a variant of gradient descent that updates after every example.")
    assert d.term == "Stochastic gradient descent" and d.aliases == ("SGD",)
    d = d_of("A function that squashes any real value into the range from zero to one is called the sigmoid.")
    assert d.naming and d.term == "sigmoid"
    assert term_stem(d) == "What is a function that squashes any real value into the range from zero to one called?"


@pytest.mark.parametrize(
    "sentence",
    [
        "It is a method that does many things well enough for us.",  # a pronoun, not a term
        "Dropout is used to reduce overfitting in large neural networks.",  # a fact, not a definition
        "The idea is that a model should be simple enough to generalize.",
        "x = w * x + b is the update rule of the model.",  # a formula
    ],
)
def test_not_definitions(sentence):
    assert d_of(sentence) is None


def test_stems_never_name_the_key():
    d = d_of("Dropout is a regularization technique that randomly switches off a fraction of a layer's units.")
    assert term_stem(d) == "Which regularization technique randomly switches off a fraction of a layer's units?"
    assert definition_stem(d) == "What is dropout?"
    d = d_of("Overfitting refers to a model that memorises the noise in its training examples.")
    assert term_stem(d) == "Which term refers to a model that memorises the noise in its training examples?"
    d = d_of("Logistic regression is a classification algorithm used to assign observations to discrete classes.")
    assert (
        term_stem(d)
        == "What is the name for a classification algorithm used to assign observations to discrete classes?"
    )


def test_fact_stem_uses_the_terms_kind_and_agreement():
    d = d_of("Momentum is an extension of gradient descent that adds a fraction of the previous update.")
    s = "Momentum smooths the path of the parameters through narrow valleys of the loss."
    assert fact_stem(Sentence(s, 0, len(s), P(s)), d) == (
        "Which extension smooths the path of the parameters through narrow valleys of the loss?"
    )
    plural = "Momentum terms are added to every update in the optimizer."
    assert fact_stem(Sentence(plural, 0, len(plural), P(plural)), d) is None


def test_definitions_on_real_notes(data_dir, tmp_path):
    from tutor.knowledge import KnowledgeBase

    kb = KnowledgeBase.create("glossary-notes", path=tmp_path / "kb.db")
    kb.add([data_dir / "notes" / "logistic_regression.rst"])
    found = {d.term.lower(): d for d in definitions(kb.passages())}
    assert "logistic regression" in found
    d = found["logistic regression"]
    assert d.sentence.passage.doc.endswith("logistic_regression.rst")
    assert all(is_prose(x.sentence.text) for x in found.values())


def test_the_term_x_refers_to_defines_x_not_term_x():
    from quizgen.glossary import Sentence, parse_definition

    text = "The term layer error refers to the derivative of cost with respect to a layer's input."
    d = parse_definition(Sentence(text, 0, len(text), None))
    assert d is not None and d.term == "layer error"
    text = "The word embedding is a vector that represents a word in a space."  # "word" is part of this name
    d = parse_definition(Sentence(text, 0, len(text), None))
    assert d is not None and d.term == "word embedding"


def test_a_verb_phrase_is_not_a_term():
    from quizgen.glossary import Sentence, parse_definition

    text = "Training a model is a process that adjusts its weights to reduce the loss on examples."
    assert parse_definition(Sentence(text, 0, len(text), None)) is None


@pytest.mark.parametrize(
    "sentence",
    [
        "Below is the Numpy implementation of the K-Nearest Neighbor function.",
        "The output is a single number representing the cost associated with our current weights.",
        "The key thing to note is that the cost function penalizes confident and wrong predictions.",
        "C' is the derivative of cost with respect to the weights of the layer.",
    ],
)
def test_sentences_of_real_notes_that_define_no_concept(sentence):
    from quizgen.glossary import Sentence, parse_definition

    assert parse_definition(Sentence(sentence, 0, len(sentence), None)) is None


def test_terms_named_in_passing_by_we_call_and_called_this():
    from quizgen.glossary import Sentence, named_in_passing

    def named(text):
        return [d.term for d in named_in_passing(Sentence(text, 0, len(text), None))]

    assert named("Ioffe and Szegedy called this internal covariate shift and argued that it slows training.") == [
        "internal covariate shift"
    ]
    assert named("The layer keeps moving averages of the mean and variance; we call these the running statistics.") == [
        "running statistics"
    ]
    assert named("In machine learning we call these variables features.") == []  # no article: too ambiguous


# --- Ordinary notes: definitions in the forms teachers write, not only "X is a K that ..." ---------------------------


def other_form(text: str):
    from quizgen.glossary import parse_other_forms

    return parse_other_forms(Sentence(text, 0, len(text), P(text)))


def test_a_definition_after_an_opening_phrase():
    d = other_form("In a CNN, a convolution is a linear operation that slides a small filter over the input.")
    assert (d.term, d.kind) == ("convolution", "linear operation")
    assert d.sentence.text.startswith("In a CNN")  # the explanation quotes the whole sentence
    assert term_stem(d) == "Which linear operation slides a small filter over the input?"


def test_a_labelled_entry_defines_its_label():
    d = other_form("Stride: the number of pixels the filter moves at each step.")
    assert (d.term, d.predicate) == ("Stride", "the number of pixels the filter moves at each step")
    assert term_stem(d) == "What is the name for the number of pixels the filter moves at each step?"
    assert definition_stem(d) == "What is stride?"
    # A clause after the label says nothing of what it is: the entry only names it.
    d = other_form("Kernel: A convolution layer can have more than one filter of its own.")
    assert d.passing and d.term == "Kernel" and d.predicate == "" and term_stem(d) is None


def test_an_appositive_and_an_aside_after_the_subject():
    d = other_form("Adam, an optimizer that adapts the step size of every weight, is the default in many libraries.")
    assert (d.term, d.predicate) == ("Adam", "an optimizer that adapts the step size of every weight")
    assert term_stem(d) == "Which optimizer adapts the step size of every weight?"
    assert other_form("Dropout, a penalty on the weights, and early stopping all reduce overfitting.") is None  # a list
    d = other_form("Gradient clipping, first used for recurrent networks, is a technique that caps each gradient norm.")
    assert (d.term, d.kind, d.relative) == ("Gradient clipping", "technique", "caps each gradient norm")


def test_a_term_defined_after_a_colon_and_short_for():
    d = other_form("Each word is first turned into a one-hot vector: a vector with a single one and zeros elsewhere.")
    assert (d.term, d.predicate) == ("one-hot vector", "a vector with a single one and zeros elsewhere")
    d = d_of("GloVe, short for Global Vectors, builds word vectors from counts of words that occur together.")
    assert d.term == "GloVe" and d.aliases == ("Global Vectors",)


def test_a_vague_kind_takes_its_head_from_after_of():
    d = d_of("A fully-connected layer is a type of layer where every input connects to every unit.")
    assert (d.kind, d.head) == ("type of layer", "layer")


def facts(text: str, headings=("Notes",), corpus: str = ""):
    from quizgen.glossary import sentences, subject_facts

    passage = P(text, headings=headings)
    return [(d.term, d.predicate) for d in subject_facts(passage, sentences(passage), corpus or text.lower())]


def test_a_subject_named_by_the_sections_heading_is_a_term():
    text = (
        "BatchNorm speeds up training by normalizing the inputs of each layer. The model learns its weights from data."
    )
    assert facts(text, ("Layers", "BatchNorm")) == [
        ("BatchNorm", "speeds up training by normalizing the inputs of each layer")
    ]  # "The model" names no heading: not a term
    text = "Max pooling layer keeps the largest value in each window. Pooling layers often follow a convolution layer."
    assert facts(text, ("Layers", "Pooling")) == [("Max pooling layer", "keeps the largest value in each window")]
    assert facts("A bias term will help us capture this base case in the model.", ("Bias term",)) == []


def test_sibling_kinds_and_names_are_terms_without_a_heading():
    text = (
        "Gaussian naive Bayes assumes normally distributed features in each class. "
        "Bernoulli naive Bayes models binary features such as the presence of a word. "
        "MSE measures the average squared difference between predictions and targets."
    )
    assert [t for t, _ in facts(text)] == ["Gaussian naive Bayes", "Bernoulli naive Bayes", "MSE"]


def test_a_plural_noun_is_not_taken_for_the_verb():
    text = "Dropout layers zero out units at random during every training step."
    assert facts(text, ("Dropout",), corpus="a dropout layer takes the output of the previous layer") == []


def test_headings_name_terms_the_section_uses():
    from quizgen.glossary import heading_anchor, heading_terms, sentences

    assert heading_anchor("Decision Trees") == "decisiontree" and heading_anchor("BatchNorm") == "batchnorm"
    for part in ("Introduction", "Making predictions", "Types of regression", "Zero counts and smoothing", "Code"):
        assert heading_anchor(part) == "", part
    text = "Each stage of gradient boosting fits a small regression tree to the residuals."
    passage = P(text, headings=("Ensembles", "Gradient Boosting"))
    assert [d.term for d in heading_terms(passage, sentences(passage))] == ["gradient boosting"]
    passage = P("Most of the work happens in the pooling step of the network.", headings=("Pooling",))
    assert heading_terms(passage, sentences(passage)) == []  # one common word: the section's topic, not an answer


def test_a_which_clause_states_a_fact_about_the_name_before_it():
    from quizgen.glossary import which_fact

    def fact(text):
        d = which_fact(Sentence(text, 0, len(text), P(text)))
        return d and (d.term, d.predicate)

    assert fact("To compare two vectors we often use cosine similarity, which ignores the lengths of both.") == (
        "cosine similarity",
        "ignores the lengths of both",
    )
    assert fact("Each example is normalized with the statistics of the batch, which is noisy for small ones.") is None
    assert fact("The inputs go through a layer, which multiplies them by a matrix of weights.") is None  # one word


def test_we_call_this_at_the_start_of_a_sentence():
    from quizgen.glossary import named_in_passing

    text = "We call this the conditional independence assumption."
    assert [d.term for d in named_in_passing(Sentence(text, 0, len(text), None))] == [
        "conditional independence assumption"
    ]


def test_no_fact_stem_on_a_sentence_a_list_ran_into():
    d = d_of("Gradient boosting is an ensemble method that adds one small tree at every stage.")
    s = "Gradient boosting has more settings than a random forest, and they interact: Number of trees."
    assert fact_stem(Sentence(s, 0, len(s), P(s)), d) is None


def test_a_which_clause_after_a_phrase_with_a_preposition_names_nothing():
    from quizgen.glossary import which_fact

    text = "It will cause an increase of parameters, which can lead to overfitting on small data."
    assert which_fact(Sentence(text, 0, len(text), P(text))) is None


def test_it_is_a_after_a_sentence_about_a_term_defines_that_term():
    from quizgen.glossary import Glossary, definitions
    from quizgen.grounded import candidates

    text = (
        "A dropout layer switches off a random fraction of the units of the layer before it. "
        "It is a regularization technique used to keep a network from overfitting. "
        "It is typically set to a rate between a fifth and a half in practice."
    )
    passage = P(text, headings=("Layers", "Dropout"))
    d = next(d for d in definitions([passage]) if d.term == "dropout layer")
    assert (d.predicate, d.kind) == (
        "a regularization technique used to keep a network from overfitting",
        "regularization technique",
    )
    assert d.sentence.text == text[: d.sentence.end] and d.sentence.text.endswith("from overfitting.")  # both sentences
    assert definition_stem(d) == "What is a dropout layer?"
    glossary = Glossary.build([passage])
    made = {c.form: c for c in candidates(glossary, [passage]) if c.sentence.text == d.sentence.text}
    assert (
        made["term"].stem == "What is the name for a regularization technique used to keep a network from overfitting?"
    )


def test_a_passive_verb_after_a_heading_term_is_a_fact():
    text = "Early stopping is used to end training once the validation error starts to rise again."
    assert facts(text, ("Early stopping",)) == [
        ("Early stopping", "is used to end training once the validation error starts to rise again")
    ]
    assert facts("Training is complete when the error stops falling on the validation set.", ("Training",)) == []


def test_a_which_clause_after_a_graded_description_names_nothing():
    from quizgen.glossary import which_fact

    text = "Later work suggests that the main benefit is a smoother loss surface, which makes steps more predictable."
    assert which_fact(Sentence(text, 0, len(text), P(text))) is None


@pytest.mark.parametrize(
    ("text", "heading", "terms"),
    [
        ("A typical dropout rate lies between a fifth and a half of the units in a layer.", "Dropout", []),
        ("A large C punishes every violation heavily and gives a narrow margin that may overfit.", "C", []),
        (
            "Overfitting typically shows up as a training error that keeps falling while the test error rises.",
            "Overfitting",
            [],
        ),
        (
            "Precision equals the true positives divided by all the examples the model called positive.",
            "Precision",
            ["Precision"],
        ),
        (
            "Once cross-validation has chosen the hyperparameters, the final model is retrained on all data.",
            "Cross-validation",
            [],
        ),
    ],
)
def test_a_described_or_run_on_subject_is_no_term(text, heading, terms):
    assert [t for t, _ in facts(text, (heading,))] == terms  # never "typical dropout rate", "Precision equals the true"


def test_a_role_is_no_kind_for_the_looser_forms():
    assert (
        other_form("In practice, mini-batch gradient descent is the usual choice for training large networks.") is None
    )
