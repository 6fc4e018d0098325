"""The glossary on ordinary notes: the forms teachers write that the plain rules miss (pure functions, no model)."""

from __future__ import annotations

from test_glossary import P, d_of  # a passage as the knowledge base hands it out

from quizgen import flaws
from quizgen.glossary import (
    Glossary,
    Sentence,
    definitions,
    heading_terms,
    is_prose,
    named_in_passing,
    parse_other_forms,
    quiz_prose,
    quiz_sentences,
    sentences,
    split_sentences,
    subject_facts,
    which_fact,
)
from quizgen.glossary_forms import spells
from quizgen.grounded import build_question, candidates, definition_stem, distractors, term_stem


def s_of(text: str) -> Sentence:
    return Sentence(text, 0, len(text), P(text))


def test_a_quiz_splits_before_a_lower_case_name_and_after_a_lead_in_colon():
    text = (
        "It counts pairs of words. wordVec extends the model with subwords. "
        "The choice depends on the kind of input: Poisson naive Bayes models counts of events. "
        "Stride: The number of pixels a filter moves."
    )
    assert [text[a:b] for a, b in split_sentences(text, quiz=True)] == [
        "It counts pairs of words.",
        "wordVec extends the model with subwords.",
        "The choice depends on the kind of input:",
        "Poisson naive Bayes models counts of events.",
        "Stride: The number of pixels a filter moves.",  # a label of at most four words is no lead-in
    ]
    # The grounded tutor reads the plain split, unchanged.
    assert len(split_sentences(text)) == 3
    assert [s.text for s in quiz_sentences(P(text))][1] == "wordVec extends the model with subwords."
    assert sentences(P(text))[0].text.startswith("It counts pairs of words. wordVec")


def test_a_which_clause_aside_says_what_its_subject_does():
    d = parse_other_forms(
        s_of("Instance scaling, which rescales every example to unit length, is the usual choice for text.")
    )
    assert d is not None and d.term == "Instance scaling"
    assert d.predicate == d.relative == "rescales every example to unit length"
    # A clause that leans on another sentence, or no verb after the aside, gives nothing.
    assert parse_other_forms(s_of("Instance scaling, which does this for every example, is the usual choice.")) is None
    assert parse_other_forms(s_of("Instance scaling, which rescales each example, in practice is cheap.")) is None


def test_an_acronym_before_its_expansion_names_a_term_with_its_alias():
    found = named_in_passing(s_of("Two variants exist, SBOW (skip bag of words) and a second one we skip here."))
    assert [(d.term, d.aliases, d.passing) for d in found] == [("SBOW", ("skip bag of words",), True)]
    assert named_in_passing(s_of("The results of XYZ (see the table below) are shown in the next section.")) == []
    assert spells("CART", "Classification and Regression Trees") and spells("KNN", "K-Nearest Neighbor")
    assert spells("BN", "batch normalization") and not spells("BN", "batch size") and not spells("BN", "norm")


def test_a_coordinated_name_is_not_read_as_its_first_modifier():
    found = named_in_passing(
        s_of("A broader version adds a constant instead of one and is known as additive or Lidstone smoothing.")
    )
    assert [d.term for d in found] == []


def test_a_clause_fact_after_a_possessive_name_or_with_an_adverb():
    d = which_fact(s_of("Every such model rests on Bayes' theorem, which turns a likelihood into a posterior."))
    assert d is not None and d.term == "Bayes' theorem" and d.predicate == "turns a likelihood into a posterior"
    d = which_fact(s_of("To compare two vectors we often use cosine similarity, which looks only at their angle."))
    assert d is not None and d.term == "cosine similarity" and d.predicate == "looks only at their angle"
    assert which_fact(s_of("We then sum over each of the layers, which parts are shared by all of them.")) is None


def test_subject_facts_after_an_opening_phrase_and_kinds_of_the_heading():
    text = (
        "In short, BN lets us train with higher learning rates than before. "
        "A contextual encoding gives each word a vector that depends on the whole sentence. "
        "A typical encoding takes about three hundred numbers per word."
    )
    passage = P(text, headings=("Word Encodings",))
    found = {d.term: d.predicate for d in subject_facts(passage, quiz_sentences(passage), text.lower())}
    assert found == {
        "BN": "lets us train with higher learning rates than before",
        "contextual encoding": "gives each word a vector that depends on the whole sentence",
    }


def test_a_fact_that_leans_on_another_sentence_keeps_its_name_but_asks_nothing():
    text = (
        "Counts can be zero. Add-k smoothing, also called Lidstone smoothing, prevents this by adding k to each count."
    )
    (d,) = [d for d in definitions([P(text)]) if d.term == "Add-k smoothing"]
    assert d.passing and d.predicate == "" and d.aliases == ("Lidstone smoothing",)


def test_its_a_after_a_sentence_about_a_term_defines_it():
    text = "A stump split works by testing one feature once. It's a greedy learner that never looks ahead."
    passage = P(text, headings=("Stump Splits",))
    (d,) = [d for d in definitions([passage]) if d.term.lower() == "stump split"]
    assert d.predicate == "a greedy learner that never looks ahead" and d.sentence.text == text


def test_a_heading_term_needs_a_sentence_with_a_verb():
    text = "Gated Unit Classifier using ID3 Tree: code example."
    assert heading_terms(P(text, headings=("Notes", "Gated Unit")), quiz_sentences(P(text))) == []


def test_an_acronym_and_its_expansion_are_never_two_wrong_options():
    text = (
        "Batch normalization is a technique that rescales the activations of a layer over each mini-batch. "
        "Layer normalization is a technique that rescales the activations of one example across its features. "
        "Group normalization is a technique that rescales the activations over groups of channels. "
        "Weight decay is a technique that shrinks every weight a little at each update step. "
        "In short, BN lets us train deep networks with much higher learning rates."
    )
    glossary = Glossary.build([P(text, headings=("Normalization Layers",))])
    assert glossary.find("BN") is not None
    layer = glossary.find("layer normalization")
    names = [d.term for d, _ in glossary.neighbours(layer)]
    assert not ({"BN", "Batch normalization"} <= set(names)), names
    assert "BN" not in [d.term for d, _ in glossary.neighbours(glossary.find("batch normalization"))]


def test_a_term_named_in_passing_is_the_blank_of_its_own_sentence():
    text = (
        "Scoring every word would be far too slow, so the model uses a trick known as negative sampling. "
        "Softmax scaling is a method that turns scores into probabilities over the whole vocabulary. "
        "Label smoothing is a method that moves a little probability from the true class to the others. "
        "Temperature scaling is a method that divides the scores by a constant before the softmax."
    )
    glossary = Glossary.build([P(text)])
    assert glossary.find("negative sampling").passing
    made = candidates(glossary, [P(text)])
    (cloze,) = [c for c in made if c.form == "cloze"]
    assert cloze.key == "Negative sampling" and "known as ___." in cloze.stem


def test_a_hedged_copula_after_a_condition_still_defines():
    text = "If you read the graph this way, then unrolling is merely an application of the chain rule to each step."
    d = parse_other_forms(s_of(text))
    assert d is not None and d.term == "unrolling" and d.predicate.startswith("an application of the chain rule")
    text = "Whether label noise is really the reason the method works is still debated by many people."
    assert parse_other_forms(s_of(text)) is None


def test_a_lead_in_that_a_list_runs_into_still_names_its_acronym():
    found = named_in_passing(s_of("GRN (Gated Residual Network) combines two simple parts:"))
    assert [(d.term, d.aliases) for d in found] == [("GRN", ("Gated Residual Network",))]


def test_a_heading_subject_with_an_adverb_before_its_participle_is_a_fact():
    text = "Early stopping is only used when a validation set is held out from the training data."
    passage = P(text, headings=("Regularization", "Early Stopping"))
    (d,) = subject_facts(passage, quiz_sentences(passage), text.lower())
    assert d.term == "Early stopping" and d.predicate.startswith("is only used when")


# Forms of notes the glossary missed before (made-up sentences in the style of ordinary lecture notes).


def test_a_hyphenated_word_is_a_word_for_the_quiz_but_not_for_the_tutor():
    text = "This is called the bias-variance trade-off in model-based set-ups."
    assert quiz_prose(text) and not is_prose(text)


def test_a_subject_the_notes_introduce_with_a_verb_is_a_fact():
    text = (
        "Training runs for many epochs. "
        "A scheduler maps each epoch to a learning rate for that epoch. "
        "The warm-up phase raises the rate over the first few hundred steps. "
        "The scheduler keeps the rate fixed after that phase ends."
    )
    found = {d.term: d.predicate for d in definitions([P(text)]) if not d.passing}
    assert found["scheduler"] == "maps each epoch to a learning rate for that epoch"
    assert found["warm-up phase"].startswith("raises the rate over")
    # What follows the verb shows a plural noun ("examples show that"), a judging word or a place is no name.
    text = (
        "Training runs for many epochs. "
        "The training examples show that the rate matters a great deal. "
        "A practical heuristic picks a rate just below the largest stable one. "
        "The diagram below shows the loss at each rate on a log scale."
    )
    assert [d.term for d in definitions([P(text)]) if not d.passing] == []


def test_a_term_followed_by_its_symbol_is_defined():
    d = parse_other_forms(s_of("The state-value function V(s) is the expected return from state s onwards."))
    assert d is not None and d.term == "state-value function" and d.predicate.startswith("the expected return")
    assert d.kind == "expected return"  # "from" ends the kind


def test_this_noun_is_called_x_names_the_idea_of_the_sentence_before():
    text = (
        "A model that fits its training data too closely may fail on new data. "
        "This effect is called the generalisation gap."
    )
    (d,) = [d for d in definitions([P(text)]) if d.term == "generalisation gap"]
    assert d.naming and d.predicate == "this effect" and d.sentence.text == text
    assert term_stem(d) == (
        'Which term fills the blank in "A model that fits its training data too closely may fail on new data. '
        'This effect is called the ___."?'
    )
    # A sentence before that leans on another gives nothing to quote.
    text = "This makes it fail on new data sets. This effect is called the generalisation gap."
    assert [d for d in definitions([P(text)]) if d.term == "generalisation gap" and d.naming] == []


def test_a_naming_sentence_with_an_article_subject_names_its_term():
    d = parse_other_forms(s_of("The smallest distance from a point to the boundary is called the margin."))
    assert d is not None and d.naming and d.term == "margin"
    assert d.predicate == "the smallest distance from a point to the boundary"


def test_a_colon_after_the_term_introduces_its_definition():
    d = parse_other_forms(s_of("The aim is not the next loss but the horizon: the number of steps the planner sees."))
    assert d is not None and d.term == "horizon" and d.predicate.startswith("the number of steps")
    # A clause after the colon says something else.
    assert parse_other_forms(s_of("This shows the crowd: a single model will not know everything here.")) is None


def test_an_appositive_that_ends_a_sentence_defines_its_term():
    d = parse_other_forms(
        s_of("The final weights are taken from the Polyak average, an average of the iterates that smooths noise.")
    )
    assert d is not None and d.term == "Polyak average" and d.kind == "average"
    # A list of things, not what the term is.
    assert parse_other_forms(s_of("The recipe needs the training data, a model and a loss function.")) is None


def test_a_labelled_entry_whose_text_is_a_clause_is_what_the_notes_describe_it_as():
    d = parse_other_forms(s_of("Shrunk tree: a penalty keeps most leaf values near zero during training."))
    assert d is not None and d.described and d.term == "Shrunk tree" and d.kind == ""
    assert term_stem(d) == (
        'Which term do the notes describe as "a penalty keeps most leaf values near zero during training"?'
    )
    assert definition_stem(d) is None  # a clause is no option among definitions
    # A text that opens a sentence of its own, or leans on another, only names the label.
    d = parse_other_forms(s_of("Shrunk tree: A penalty keeps most leaf values near zero during training."))
    assert d is not None and d.passing and d.predicate == ""
    d = parse_other_forms(s_of("Shrunk tree: a penalty keeps its leaf values near zero during training."))
    assert d is not None and d.passing


def test_an_acronym_of_hyphenated_words_and_a_which_clause_before_and_a():
    found = named_in_passing(s_of("We train a deep Q-graph (DQG) on the logged transitions of every run."))
    assert [(d.term, d.aliases) for d in found] == [("deep Q-graph", ("DQG",))]
    d = which_fact(s_of("It uses a replay memory, which stores old transitions for later sampling, and a second net."))
    assert d is not None and d.term == "replay memory" and d.predicate == "stores old transitions for later sampling"
    # Without a next item the clause may be about the whole sentence ("..., which makes ..."): an article's noun is out.
    assert which_fact(s_of("Its cost grows with the sequence length, which makes long inputs expensive.")) is None


def test_a_later_name_of_a_known_term_becomes_its_alias():
    text = (
        "A VQN adds a codebook to the encoder of the model. "
        "Vector quantised network (VQN): The encoder outputs an index into a fixed codebook."
    )
    (d,) = [d for d in definitions([P(text)]) if "vqn" in d.names]
    assert d.term == "VQN" and "Vector quantised network" in d.aliases


def test_defined_as_in_so_many_words():
    d = parse_other_forms(s_of("The hinge margin is defined as the distance from the boundary to the nearest point."))
    assert d is not None and d.term == "hinge margin" and d.predicate.startswith("the distance from")
    d = parse_other_forms(s_of("We define the regret as the gap between our reward and the best possible reward."))
    assert d is not None and d.term == "regret" and d.kind == "gap"


def test_a_labelled_list_item_with_any_clause_names_its_label():
    d = parse_other_forms(s_of("Mode drift: when the critic is too strong, the generator learns almost nothing."))
    assert d is not None and d.described and d.term == "Mode drift"
    # A label that names a part of the explanation is no term.
    assert parse_other_forms(s_of("Example: when the critic is too strong, the generator learns nothing.")) is None


def test_a_list_run_into_a_sentence_is_no_stem():
    text = "An HMM is defined by three parts: the initial states. the moves between them. the emissions of each."
    d = [d for d in definitions([P(text)]) if d.term == "HMM"]
    assert all(term_stem(x) is None for x in d)


def test_wrong_terms_do_not_converge_on_the_key_and_a_letter_name_keeps_its_case():
    text = (
        "Q-routing is a model-free method that learns the value of each hop from experience alone. "
        "Deep Q-net is a variant that learns the hop values with a neural network instead of a table. "
        "Reinforcement routing is a family of methods that learn routes from rewards alone. "
        "Target net is a copy of the learner that is refreshed only every few thousand steps. "
        "Link state flooding is a protocol that sends the whole network map to every router. "
        "Distance vector exchange is a protocol that shares only the distances to each destination. "
        "Hot potato forwarding is a policy that hands a packet on as soon as possible to any free link."
    )
    glossary = Glossary.build([P(text)])
    key = glossary.find("Q-routing")
    (c,) = [c for c in candidates(glossary, [P(text)]) if c.definition is key and c.form == "term"]
    q = build_question(c, distractors(glossary, c, "medium"), "A", "notes", "medium")
    # "Deep Q-net" and "Reinforcement routing" beside "Q-routing" point at it; one of them gives way.
    assert flaws.convergence_cues(q) is None, q.options
    assert definition_stem(key) == "What is Q-routing?"


def test_a_noun_ending_in_s_is_no_verb():
    text = "Signals vary over time. A periodic series has a mean that repeats after a fixed number of steps."
    found = {d.term: d.predicate for d in definitions([P(text)]) if not d.passing}
    assert found == {"periodic series": "has a mean that repeats after a fixed number of steps"}


def test_a_question_keys_the_name_its_source_sentence_uses():
    text = (
        "Vector quantised network (VQN): the encoder outputs an index into a fixed codebook. "
        "A VQN adds a commitment term to the loss of the whole model. "
        "Sparse coding is a method that keeps most code units near zero for each input. "
        "Denoising is a method that corrupts the input and asks the model to recover it. "
        "Contrastive coding is a method that pulls matching pairs together and pushes others apart."
    )
    glossary = Glossary.build([P(text)])
    facts = [c for c in candidates(glossary, [P(text)]) if c.form == "fact"]
    assert [(c.key, c.sentence.text.split()[1]) for c in facts] == [("VQN", "VQN")]


def test_a_fact_whose_both_leans_on_the_sentence_before_asks_nothing():
    text = "Two parts model the past. ARMAX combines both with an input series and is fitted by least squares."
    assert [d.term for d in definitions([P(text)]) if not d.passing] == []
    text = "Two parts model the past. ARMAX combines both the past values and the past errors of the series."
    assert [d.term for d in definitions([P(text)]) if not d.passing] == ["ARMAX"]


def test_a_name_written_mid_sentence_keeps_its_case_and_no_preposition_ends_a_name():
    text = "A Gibbs chain is a sequence of samples in which each draws one variable given all the others."
    (d,) = [d for d in definitions([P(text)]) if d.term == "Gibbs chain"]
    assert definition_stem(d) == "What is a Gibbs chain?"
    text = "The update moves to the point the velocity carries the weights to, a look-ahead that often helps."
    assert parse_other_forms(s_of(text)) is None


def test_furniture_a_person_a_bare_the_noun_or_a_symbol_is_no_term_by_first_mention():
    text = (
        "Training runs for many epochs. "
        "The figure plots the loss against the number of epochs. "
        "The student picks a learning rate by trial and error. "
        "The dashed line shows the validation loss over each epoch. "
        "The optimizer takes a step against the gradient of the loss. "
        "The price p is set by the market each day."
    )
    assert [d.term for d in definitions([P(text)]) if not d.passing] == []
    # With "A/An", or with two words, a first mention still introduces a term.
    text = "Training runs for many epochs. A scheduler maps each epoch to a learning rate for that epoch."
    assert [d.term for d in definitions([P(text)]) if not d.passing] == ["scheduler"]


def test_a_bare_generic_noun_or_a_described_generic_noun_is_no_term_by_first_mention():
    text = (
        "Scores come from a classifier. "
        "A model is calibrated when its confidence matches how often it is right. "
        "A perfectly calibrated model lies on the diagonal of the plot. "
        "A huge sample makes any small difference significant. "
        "The default assumption is the null hypothesis, which says there is no effect. "
        "A reliability diagram groups the predictions into bins by their score."
    )
    found = [d.term for d in definitions([P(text)]) if not d.passing]
    assert "reliability diagram" in found and "null hypothesis" in found  # a name keeps its say
    assert not {"model", "perfectly calibrated model", "huge sample", "default assumption"} & set(found), found
    assert (
        parse_other_forms(s_of("The approach is defined as the set of steps we take before training starts.")) is None
    )


def test_a_label_whose_head_word_is_part_of_an_explanation_is_no_term():
    for text in (
        "Key idea: we replace the sum with a learned average over windows.",
        "Training time: about three hours on a single GPU with the default settings.",
        "Bottom line: the method works when the data are plentiful and clean.",
        "Main takeaway: the model stops improving after the tenth epoch of training.",
    ):
        assert parse_other_forms(s_of(text)) is None, text
    # A label whose head word is a real term's head stays a term.
    d = parse_other_forms(s_of("Input gate: a sigmoid layer that decides what enters the cell."))
    assert d is not None and d.term == "Input gate"
    assert parse_other_forms(s_of("Output layer: the last layer, which maps features to class scores.")) is not None


def test_an_end_appositive_name_holds_no_preposition_and_a_symbol_ends_no_term():
    text = "We saved the model to disk, a step that takes a few seconds for each run of the code."
    assert parse_other_forms(s_of(text)) is None
    text = "Confusing the two is easy: with a huge sample, a difference of 0.1 ml can be significant and irrelevant."
    assert parse_other_forms(s_of(text)) is None  # a clause after the comma, and no name before it
    d = d_of("The weight matrix W is the matrix that maps the inputs of a layer to its outputs.")
    assert d is not None and d.term == "weight matrix"
    text = "Layers hold weights. The matrix W is the weight matrix of the first layer of the network."
    assert [d.term for d in definitions([P(text)]) if not d.passing] == []


def test_a_page_number_abbreviation_ends_no_sentence():
    text = "As shown on p. 12 of the book the loss falls. It then rises."
    assert [text[a:b] for a, b in split_sentences(text, quiz=True)] == [
        "As shown on p. 12 of the book the loss falls.",
        "It then rises.",
    ]


def test_which_is_called_names_what_comes_before_the_relative_pronoun():
    (d,) = definitions([P("Running many tests and reporting only the best ones, which is called p-hacking.")])
    assert (
        d.term == "p-hacking" and term_stem(d) == "What is running many tests and reporting only the best ones called?"
    )


def test_a_verb_before_when_introduces_a_term_and_instead_leans_on_the_sentence_before():
    text = (
        "Tests can go wrong in two ways. "
        "A Type I error occurs when we reject a null hypothesis that is actually true. "
        "Mean filling replaces each gap with the mean of the column. "
        "Median filling uses the median instead, which is more robust to outliers. "
        "Model filling goes one step further and predicts each gap from the other columns."
    )
    found = {d.term: (d.predicate, d.passing) for d in definitions([P(text)])}
    assert found["Type I error"] == ("occurs when we reject a null hypothesis that is actually true", False)
    assert found["Median filling"] == ("", True)  # its name is known, its sentence asks nothing
    assert found["Model filling"] == ("", True)  # "further" than what the sentence before says
    glossary = Glossary.build([P(text)])
    assert not any("instead" in c.stem or "further" in c.stem for c in candidates(glossary, [P(text)]))


def test_a_definition_question_takes_its_wrong_definitions_from_its_own_page_first():
    trees = P(
        "A decision tree is a model that splits the data on one feature at each of its inner nodes. "
        "A random forest is an ensemble that averages many decision trees grown on bootstrap samples. "
        "Bagging is a method that trains each model of an ensemble on its own bootstrap sample. "
        "Boosting is a method that trains each new model on the errors that the models before it made.",
        doc="trees.md",
    )
    other = P(
        "A p-value is a probability that a statistic at least as extreme as the one seen arises by chance. "
        "A confidence interval is a range of values that holds the true parameter in most repeated samples. "
        "A null hypothesis is a claim that there is no effect or no difference between the two groups. "
        "A test statistic is a number that summarises how far the data lie from what the null hypothesis says.",
        doc="stats.md",
        start=1000,
    )
    glossary = Glossary.build([trees, other])
    (c,) = [c for c in candidates(glossary, [trees]) if c.form == "definition" and c.definition.term == "Bagging"]
    wrong = distractors(glossary, c, "medium")
    assert [d.sentence.passage.doc for d in wrong] == ["trees.md"] * 3, [d.term for d in wrong]
    # A page's only definition has no wrong definition from its own page: no definition question on it.
    lone = P("Dropout is a technique that switches off random units of a layer while the network trains.", doc="x.md")
    glossary = Glossary.build([trees, other, lone])
    (c,) = [c for c in candidates(glossary, [lone]) if c.form == "definition"]
    assert distractors(glossary, c, "medium") == []


def test_a_labelled_clause_whose_kind_would_end_in_a_determiner_is_described_not_named():
    d = parse_other_forms(s_of("Oscillation: the two players keep undoing each other's progress in turn."))
    assert d is not None and d.described  # not "What is the name for the two players keep undoing ...?"
    assert (
        term_stem(d)
        == 'Which term do the notes describe as "the two players keep undoing each other\'s progress in turn"?'
    )


def test_a_phrase_that_ends_in_an_article_is_no_term():
    p = P(
        "Fine-tuning all the layers on a tiny data set is risky: the model overfits the few examples it sees.",
        headings=("Transfer", "Fine-tuning"),
    )
    assert [d.term for d in definitions([p]) if not d.passing] == []
