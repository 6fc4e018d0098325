"""Grammar engines: which one a model decodes under, the engine's view of the vocabulary, one cache of grammars.

Both in-process backends constrain decoding the same way: a constraint becomes a *steer*, which says
before each token which tokens may come next (a boolean mask over the vocabulary) and is told which
token was chosen. llama.cpp's loop asks llguidance's steer for a mask only where a token may be forced
(:meth:`Steer.may_force`); elsewhere the model chooses and the steer checks the choice (:meth:`Steer.accepts`),
and only a refused choice is made again under the mask. This module is the one owner of that set-up, for
llama.cpp and transformers alike:

* the engines and which backend offers which (:data:`ENGINES`, checked in one place). llguidance is
  the default: it computes each mask lazily, with no compile step, and honours numeric ranges;
  outlines_core compiles a whole token index first (32 s for a quiz schema here) and xgrammar compiles
  ahead too. ``benchmarks/speed.py`` times them side by side;
* each engine's tokenizer, built on first use (a model that is never constrained never builds one);
* one bounded LRU cache of compiled grammars per model, keyed by the constraint (a long-running
  server meets new schemas for as long as it runs);
* :data:`FREE`, the null steer for free text, so that a decode loop needs no ``if constraint`` branch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from tutor.models.base import ModelError
from tutor.models.constraints import Constraint, OutputTypeError
from tutor.models.steering import grammar_regex, guidance_grammar

DEFAULT_ENGINE = "llguidance"
CACHE_SIZE = 32  # compiled grammars kept per model; a quiz run uses a handful


class Steer(Protocol):
    """The constraint state of one generation."""

    eos: int | None  # the token the grammar ends on; None: free text ends on the model's own end tokens

    def allowed(self) -> np.ndarray | None:
        """Boolean mask over the vocabulary of the tokens allowed next; None: every token."""

    def advance(self, token: int) -> None:
        """Move past ``token``."""

    def may_force(self) -> bool:
        """False when no single token can be forced next, known without computing the mask; True: compute it."""

    def accepts(self, token: int) -> bool:
        """Whether ``token`` may come next (asked only when :meth:`may_force` said False)."""


class FreeSteer:
    """No constraint: every token is allowed and there is nothing to track."""

    eos = None

    def allowed(self) -> None:
        """Every token."""
        return None

    def advance(self, token: int) -> None:
        """Nothing to track."""

    def may_force(self) -> bool:
        """Nothing is ever forced."""
        return False

    def accepts(self, token: int) -> bool:
        """Every token."""
        return True


class MaskFirst:
    """For engines that answer only with a mask: it is computed before every token (no shortcut)."""

    def may_force(self) -> bool:
        """Always compute the mask."""
        return True

    def accepts(self, token: int) -> bool:
        """Never asked (the mask is always there)."""
        return bool(self.allowed()[token])  # type: ignore[attr-defined]


FREE = FreeSteer()


def _unpack(bitmask: np.ndarray, n_vocab: int) -> np.ndarray:
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")
    return bits[:n_vocab].astype(bool)


class GuidanceSteer:
    """An llguidance matcher over a grammar: ``(kind, text)`` with kind "regex" or "json_schema"."""

    def __init__(self, tokenizer: Any, grammar: tuple[str, str], n_vocab: int, eos: int) -> None:
        import llguidance
        import llguidance.numpy

        self.matcher = llguidance.LLMatcher(tokenizer, llguidance.grammar_from(*grammar))
        if self.matcher.is_error():
            raise OutputTypeError(
                f"llguidance rejected the grammar ({self.matcher.get_error()}): simplify the schema, "
                "or load the model with grammar_backend='outlines_core'"
            )
        self.n_vocab = n_vocab
        self.eos = tokenizer.eos_token  # the token the matcher allows once the text is complete (``eos``)
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        import llguidance.numpy

        llguidance.numpy.fill_next_token_bitmask(self.matcher, self._bitmask, 0)
        return _unpack(self._bitmask[0], self.n_vocab)

    def advance(self, token: int) -> None:
        """Move past ``token``."""
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"llguidance refused token {token}: {self.matcher.get_error()}")

    def may_force(self) -> bool:
        """Whether the grammar forces bytes next (a key, a closing quote) or only the end.

        Then one token may be all that is allowed, which the mask says. Inside free text neither holds, and the
        mask (about 0.65 ms a token here, against 5 us for these checks) waits until the model's choice is refused.
        Were a lone allowed token ever missed here, the model's choice would be refused and the mask would pick
        that token: the same text, one forward pass later.
        """
        return bool(self.matcher.compute_ff_bytes()) or self.matcher.is_stopped()

    def accepts(self, token: int) -> bool:
        """Whether the grammar allows ``token`` next, without computing the mask."""
        return self.matcher.validate_tokens([token]) == 1


class CoreSteer(MaskFirst):
    """An outlines_core Guide over a compiled Index."""

    def __init__(self, vocabulary: Any, index: Any, n_vocab: int, eos: int) -> None:
        from outlines_core import Guide
        from outlines_core.kernels.numpy import allocate_token_bitmask

        self.eos = eos  # the token the index allows once the text is complete
        self.guide = Guide(index)
        self.n_vocab = n_vocab
        self._bitmask = allocate_token_bitmask(n_vocab)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        from outlines_core.kernels.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self.guide, self._bitmask)
        return _unpack(self._bitmask, self.n_vocab)

    def advance(self, token: int) -> None:
        """Move past ``token``."""
        self.guide.advance(token_id=token, return_tokens=False)


class XGrammarSteer(MaskFirst):
    """An xgrammar matcher over a compiled grammar."""

    def __init__(self, compiler: Any, compiled: Any, n_vocab: int, eos: int) -> None:
        import xgrammar

        self.eos = eos  # the tokenizer's end token, which xgrammar allows once the text is complete
        self.matcher = xgrammar.GrammarMatcher(compiled)
        self.n_vocab = n_vocab
        self._bitmask = xgrammar.allocate_token_bitmask(1, compiled.tokenizer_info.vocab_size)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        self.matcher.fill_next_token_bitmask(self._bitmask)
        return _unpack(self._bitmask[0].numpy(), self.n_vocab)

    def advance(self, token: int) -> None:
        """Move past ``token``."""
        if not self.matcher.accept_token(token):
            raise RuntimeError(f"xgrammar refused token {token}")


# ---- the engines: how each compiles a constraint and steers one generation -------------------------


def _llguidance_compile(tokenizer: Any, constraint: Constraint) -> Any:
    return guidance_grammar(constraint)  # llguidance builds its lexer lazily: nothing to compile ahead


def _core_compile(vocabulary: Any, constraint: Constraint) -> Any:
    from outlines_core import Index

    return Index(grammar_regex(constraint), vocabulary)


def _xgrammar_compile(compiler: Any, constraint: Constraint) -> Any:
    return compiler.compile_regex(grammar_regex(constraint))


Compile = Callable[[Any, Constraint], Any]  # (the engine's tokenizer, constraint) -> compiled grammar
MakeSteer = Callable[[Any, Any, int, int], Steer]  # (tokenizer, compiled, n_vocab, eos) -> a fresh steer

ENGINES: dict[str, tuple[Compile, MakeSteer]] = {
    "llguidance": (_llguidance_compile, GuidanceSteer),
    "outlines_core": (_core_compile, CoreSteer),
    "xgrammar": (_xgrammar_compile, XGrammarSteer),
}


class Grammar:
    """One model's grammar engine: its tokenizer (built on first use) and its compiled grammars (LRU).

    Args:
        engine: the engine's name (see :data:`ENGINES`).
        tokenizers: engine name -> a function building that engine's view of this model's vocabulary;
            the engines a backend offers are the keys.
        n_vocab: the size of the masks a steer returns (the model's vocabulary).
        eos: the token every grammar ends on.
        backend: the backend's name, for the error that lists what it offers.
        maxsize: how many compiled grammars to keep.
    """

    def __init__(
        self,
        engine: str,
        tokenizers: Mapping[str, Callable[[], Any]],
        *,
        n_vocab: int,
        eos: int,
        backend: str,
        maxsize: int = CACHE_SIZE,
    ) -> None:
        if engine not in tokenizers:
            offered = " or ".join(repr(name) for name in tokenizers)
            raise ModelError(f"the {backend} backend supports grammar_backend {offered}, not {engine!r}")
        self.engine = engine
        self.offered = tuple(tokenizers)  # every engine this backend offers (benchmarks/speed.py times each)
        self.n_vocab = n_vocab
        self.eos = eos
        self.maxsize = maxsize
        self.compiled = 0  # grammars compiled (a cache miss each): tests and benchmarks read it
        self._compile, self._make_steer = ENGINES[engine]
        self._build_tokenizer = tokenizers[engine]
        self._tokenizer: Any = None
        self._cache: OrderedDict[str, Any] = OrderedDict()
        # Requests on many threads ask for steers at once (a batching backend): the cache and the lazy tokenizer
        # are built and changed under one lock, so a schema is compiled once and the LRU order stays whole.
        self._lock = threading.RLock()

    @property
    def tokenizer(self) -> Any:
        """The engine's view of the vocabulary, built on first use."""
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._build_tokenizer()
            return self._tokenizer

    def compile(self, constraint: Constraint) -> Any:
        """The compiled grammar for ``constraint``: from the cache, or compiled now (evicting the oldest)."""
        key = constraint.key
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            compiled = self._cache[key] = self._compile(self.tokenizer, constraint)
            self.compiled += 1
            if len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
            return compiled

    def steer(self, constraint: Constraint | None) -> Steer:
        """A fresh steer for one generation under ``constraint`` (:data:`FREE` for None)."""
        if constraint is None:
            return FREE
        return self._make_steer(self.tokenizer, self.compile(constraint), self.n_vocab, self.eos)

    def __len__(self) -> int:
        return len(self._cache)


# ---- each backend's engines ------------------------------------------------------------------------


def for_llamacpp(llama: Any, vocab: Any, engine: str = DEFAULT_ENGINE) -> Grammar:
    """The grammar of a ``llama_cpp.Llama`` (``vocab``: its ``llama_model_get_vocab``): llguidance or outlines_core."""

    def llguidance_tokenizer() -> Any:
        import llguidance.llamacpp

        return llguidance.llamacpp.lltokenizer_from_vocab(vocab)

    def core_vocabulary() -> Any:
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        return OutlinesCoreBackend(outlines.from_llamacpp(llama)).vocabulary

    tokenizers = {"llguidance": llguidance_tokenizer, "outlines_core": core_vocabulary}
    return Grammar(engine, tokenizers, n_vocab=llama.n_vocab(), eos=llama.token_eos(), backend="llama.cpp")


def for_transformers(model: Any, tokenizer: Any, engine: str = DEFAULT_ENGINE) -> Grammar:
    """The grammar of a transformers model and tokenizer: llguidance, outlines_core or xgrammar."""

    def llguidance_tokenizer() -> Any:
        import llguidance.hf

        return llguidance.hf.from_tokenizer(tokenizer)

    def core_vocabulary() -> Any:
        # outlines' transformers wrapper is built here, for this engine only: the default path never needs it.
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        return OutlinesCoreBackend(outlines.from_transformers(model, tokenizer)).vocabulary

    def xgrammar_compiler() -> Any:
        try:
            import xgrammar
        except ImportError as exc:
            raise ModelError("grammar_backend='xgrammar' needs xgrammar: `pip install xgrammar`") from exc
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
        return xgrammar.GrammarCompiler(info)

    tokenizers = {"llguidance": llguidance_tokenizer, "outlines_core": core_vocabulary, "xgrammar": xgrammar_compiler}
    return Grammar(engine, tokenizers, n_vocab=len(tokenizer), eos=tokenizer.eos_token_id, backend="transformers")
