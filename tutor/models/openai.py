"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp's servers) behind the one Model API.

``load_model("openai:http://host:8000/v1", model="NAME")`` talks to a server someone else runs: a bigger
model on GPUs for a whole class. The guarantees stay this project's own:

* every constraint is mapped to the fields that server understands (:mod:`tutor.models.server_profiles`),
  proved to be enforced at load (:meth:`OpenAIServerModel.self_check`), and every output is validated
  here again (:meth:`Model.generate`); a server that ignores constraints is refused, or, only when asked
  (``allow_unconstrained``), used with validate-and-retry and its name marked ``(unconstrained)``;
* ``choose`` reads each answer from the first generated position's log-probabilities (exact label tokens
  where vLLM offers ``logprob_token_ids``), and ``loglikelihood`` scores continuations split the way
  lm-evaluation-harness splits them;
* requests go out concurrently (the server batches them), at most ``max_in_flight`` at once, and are
  retried with backoff on 429/502/503/504 and dropped connections (:mod:`tutor.models.openai_http`).

A capability the server lacks is a :class:`CapabilityError` naming the server and what to use instead.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tutor.errors import InputError
from tutor.models import openai_wire as wire
from tutor.models.base import (
    Choice,
    Messages,
    Model,
    ModelError,
    Sampling,
    SpecialTokens,
    _per_prompt_choices,
    _softmax,
    to_messages,
)
from tutor.models.constraints import Choices, Constraint, ConstraintViolation, Json, Pattern
from tutor.models.openai_http import Connection
from tutor.models.server_profiles import CapabilityError, Profile, detect, profile_named

TOP_LOGPROBS = 20  # the most top_logprobs OpenAI-style servers return by default (vLLM's --max-logprobs)
TOKEN_CACHE = 4096  # tokenizations kept (texts repeat: a context for each of its choices)
UNCONSTRAINED_TRIES = 4  # attempts per answer when the server does not enforce constraints


def api_key() -> str | None:
    """The key sent as a bearer token: ``TA_API_KEY``, else ``OPENAI_API_KEY``, else none."""
    return os.environ.get("TA_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


class OpenAIServerModel(Model):
    """A model served over the OpenAI API, behind the one Model API."""

    backend = "openai"

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        profile: str | None = None,
        api_key: str | None = None,
        max_in_flight: int = 4,
        timeout: float = 600.0,
        retries: int = 4,
        backoff: float = 0.5,
        allow_unconstrained: bool = False,
        transport: Any = None,
    ) -> None:
        """Connect to the server at ``url`` (ending in ``/v1``) and find its model and profile.

        Args:
            url: the server's OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``.
            model: the served model's name; default: the one model the server lists.
            profile: force a server profile (``vllm``, ``sglang``, ``llama-server``, ``llama-cpp-python``,
                ``openai``) instead of detecting it.
            api_key: bearer token; default :func:`api_key` (``TA_API_KEY`` / ``OPENAI_API_KEY``).
            max_in_flight: requests in flight at once (the server batches them).
            timeout: seconds to wait for one answer.
            retries: extra tries on 429/502/503/504 and dropped connections.
            backoff: seconds before the first retry, doubled each time (or the server's Retry-After).
            allow_unconstrained: use a server that ignores constraints, validating and retrying here.
            transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
        """
        key = api_key if api_key is not None else globals()["api_key"]()
        self.http = Connection(url, api_key=key, max_in_flight=max_in_flight, timeout=timeout, retries=retries,
                               backoff=backoff, transport=transport)  # fmt: skip
        self.url, self.max_in_flight = self.http.url, max_in_flight
        self.concurrency = max_in_flight  # the app and the quiz writer send this many at once (the server batches)
        self.allow_unconstrained = allow_unconstrained
        self.constrained = True  # False once the self-check found constraints ignored (allow_unconstrained)
        self._bos_prefix: list[int] | None = None
        self._label_ids_ok: bool | None = None  # vLLM logprob_token_ids: None until the first answer says
        self._option_ids: dict[str, list[int]] = {}  # choice text -> its tokens (labels repeat across prompts)
        self._token_cache: dict[tuple[str, bool], tuple[int, ...]] = {}  # oldest first; TOKEN_CACHE entries at most
        self._cache_lock = threading.Lock()
        models = self.http.request("GET", "/models", retries=min(retries, 1))  # no server there: say so at once
        self.model_id = self._pick_model(models, model)
        self.profile: Profile = profile_named(profile) if profile else detect(models, self.http.probe)
        self.http.label = self.profile.label
        self.name = self.model_id

    def __repr__(self) -> str:
        return f"<OpenAIServerModel {self.name!r} profile={self.profile.name} url={self.url}>"

    # ---- the server ------------------------------------------------------------------------------------

    def _pick_model(self, models: dict[str, Any], wanted: str | None) -> str:
        served = [str(card.get("id")) for card in models.get("data") or [] if card.get("id")]
        if wanted is not None:
            if served and wanted not in served:
                raise ModelError(f"{self.url} serves {served}, not {wanted!r}: pass one of those as the model name")
            return wanted
        if len(served) != 1:
            raise ModelError(
                f"{self.url} serves {len(served)} models ({served}): name one (--server-model NAME, or model=NAME)"
            )
        return served[0]

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *, root: bool = False) -> Any:
        return self.http.request(method, path, body, root=root)

    def _who(self) -> str:
        return self.http.who()

    # ---- generation --------------------------------------------------------------------------------

    def _body(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
        }
        if sampling.temperature > 0:
            body["top_p"] = sampling.top_p
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.repetition_penalty != 1.0:
            body[self.profile.repetition_field] = sampling.repetition_penalty
        body.update(self.profile.fields(constraint))
        return body

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        if constraint is None or self.constrained:
            return self._complete(messages, constraint, sampling)
        # Validate-and-retry: a server that ignores constraints gets a few tries, sampled after the first.
        text = ""
        for attempt in range(UNCONSTRAINED_TRIES):
            tried = sampling if attempt == 0 else Sampling(**{**sampling.__dict__, "temperature": 0.7, "seed": attempt})
            text = self._complete(messages, constraint, tried)
            try:
                constraint.check(text)
                return text
            except ConstraintViolation:
                continue
        return text

    def _complete(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        data = self._request("POST", "/chat/completions", self._body(messages, constraint, sampling))
        return wire.content(data)

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        if constraint is not None and not self.constrained:
            yield self._generate(messages, constraint, sampling)  # validated whole: a stream cannot be retried
            return
        yield from self.http.stream("/chat/completions", {**self._body(messages, constraint, sampling), "stream": True})

    # ---- choose ------------------------------------------------------------------------------------

    def choose(
        self, prompts: Sequence[Messages], choices: Sequence[str] | Sequence[Sequence[str]], *, chat: bool = True
    ) -> list[Choice]:
        """Answer multiple-choice prompts, concurrently; see :meth:`Model.choose`.

        Each prompt is answered under the choice constraint with the first position's log-probabilities
        (vLLM: exactly the choices' tokens; others: the top 20). A choice found there is scored by it; any
        other (a multi-token choice, or one ranked below the top 20) is scored by the log-probability of
        the whole choice, forced by the grammar.
        """
        per_prompt = _per_prompt_choices(choices, len(prompts))
        if not self.constrained:
            raise CapabilityError(
                f"{self._who()} does not enforce constraints, and choose reads answers under one: serve the "
                "model on a server that enforces them (see README.md)"
            )
        if not chat and not all(isinstance(p, str) for p in prompts):
            raise InputError("chat=False scores raw text: pass each prompt as a string, not a list of messages")
        jobs = [(p if not chat else to_messages(p), opts, chat) for p, opts in zip(prompts, per_prompt, strict=True)]
        return self.http.map(self._choose_one, jobs)

    def _choose_one(self, job: tuple[Any, list[str], bool]) -> Choice:
        prompt, options, chat = job
        first = self._first_logprobs(prompt, options, chat)
        scores = [first[o] if o in first else self._forced_score(prompt, o, chat) for o in options]
        probs = _softmax(scores)
        best = max(range(len(options)), key=lambda k: scores[k])
        return Choice(options[best], dict(zip(options, probs, strict=True)), dict(zip(options, scores, strict=True)))

    def _first_logprobs(self, prompt: Any, options: list[str], chat: bool) -> dict[str, float]:
        """Log-probabilities of the first generated token, keyed by token text (the options among them)."""
        constraint = Choices(tuple(options))
        room = max(len(o) for o in options) + 1  # a token is at least one character
        if chat:
            body = self._body(prompt, constraint, Sampling(max_tokens=room))
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            ids = self._label_ids(options) if self.profile.label_ids and self._label_ids_ok is not False else None
            if ids:
                body.update(logprob_token_ids=list(ids.values()), return_tokens_as_token_ids=True)
            data = self._request("POST", "/chat/completions", body)
            text, rows = wire.content(data), wire.chat_rows(data)
            if ids:
                found = {t: lp for t, lp in rows[0].items()} if rows else {}
                wanted = {f"token_id:{i}" for i in ids.values()}
                self._label_ids_ok = wanted <= set(found)
                if self._label_ids_ok:
                    constraint.check(text)
                    return {o: found[f"token_id:{i}"] for o, i in ids.items()}
                return self._first_logprobs(prompt, options, chat)  # an older server ignored the field
        else:
            body = {
                "model": self.model_id,
                "prompt": prompt,
                "max_tokens": room,
                "temperature": 0.0,
                "logprobs": TOP_LOGPROBS,
                **self.profile.fields(constraint),
            }
            data = self._request("POST", "/completions", body)
            text, rows = wire.text(data), wire.completion_rows(data)
        constraint.check(text)  # the server enforced the choice, or this is not a constrained answer
        return rows[0] if rows else {}

    def _label_ids(self, options: list[str]) -> dict[str, int]:
        """Single-token options and their token ids (the others are scored whole)."""
        out = {}
        for option in options:
            if option not in self._option_ids:
                self._option_ids[option] = self.tokenize(option)
            ids = self._option_ids[option]
            if len(ids) == 1:
                out[option] = ids[0]
        return out

    def _forced_score(self, prompt: Any, option: str, chat: bool) -> float:
        """The log-probability of ``option`` after ``prompt``: the option's own tokens forced (see :meth:`_forced`)."""
        if not chat:
            return self.loglikelihood([(prompt, option)])[0]
        return self._forced(
            "/chat/completions",
            {**self._body(prompt, None, Sampling()), "logprobs": True, "top_logprobs": 0},
            option,
            self.tokenize(option),
        )

    def _forced(self, path: str, body: dict[str, Any], text: str, tokens: list[int]) -> float:
        """Sum of the raw log-probabilities of ``tokens`` generated after the prompt in ``body``.

        The grammar allows only ``text``, and a +100 bias on ``tokens`` makes each step take the next of them
        (a grammar alone lets the model spell a word in other tokens than the tokenizer's: "b|anan|a" for
        "banana"). Servers report log-probabilities from before the bias and the grammar (vLLM's default
        ``raw_logprobs``; llama.cpp's raw scores). A spelling of another length is scored token by token.
        """
        body = {
            **body,
            **self.profile.fields(Choices((text,))),
            "max_tokens": len(tokens) + 1,
            "temperature": 0.0,
            "logit_bias": {str(t): 100.0 for t in set(tokens)},
        }
        values = wire.token_logprobs(self._request("POST", path, body), chat=path == "/chat/completions")
        got = "".join(piece for piece, _ in values)
        if got == text and len(values) == len(tokens):
            return sum(v for _, v in values)
        if path != "/completions":
            raise ModelError(
                f"{self._who()} spelt {text!r} as {[p for p, _ in values]}, not in its tokenizer's "
                f"{len(tokens)} tokens: its log-probability cannot be read off exactly"
            )
        return self._stepwise(body["prompt"], text, tokens)

    def _stepwise(self, prompt: str, text: str, tokens: list[int]) -> float:
        """One request per token: the prompt plus the tokens before it, that token forced by the bias alone."""
        total = 0.0
        for j, token in enumerate(tokens):
            before = self._detokenize(tokens[:j]) if j else ""
            body = {
                "model": self.model_id,
                "prompt": prompt + before,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": 0,
                "logit_bias": {str(token): 100.0},
            }
            values = wire.token_logprobs(self._request("POST", "/completions", body), chat=False)
            if len(values) != 1:
                raise ModelError(f"{self._who()} did not score token {token} of {text!r}")
            total += values[0][1]
        return total

    def _detokenize(self, tokens: list[int]) -> str:
        data = self._request("POST", "/extras/detokenize", {"tokens": tokens}, root=True)
        return str(data["text"])

    # ---- log-likelihood ------------------------------------------------------------------------------

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Log-probability of each continuation after its context, split as lm-evaluation-harness does, concurrently."""
        if self.profile.loglik is None:
            raise self.profile.no_loglik()
        score = self._forced_loglik if self.profile.loglik == "forced" else self._echo_loglik
        split = [wire.harness_split(c, x) for c, x in pairs]
        if any(not context for context, _ in split):
            raise CapabilityError(f"{self._who()} cannot score after an empty context: give each pair a context")
        return self.http.map(score, split)

    def _forced_loglik(self, pair: tuple[str, str]) -> float:
        """llama-cpp-python: the context is the prompt, the continuation's own tokens forced (:meth:`_forced`)."""
        context, continuation = pair
        whole, head = self._tokens(context + continuation, special=True), self._tokens(context, special=True)
        tokens = whole[len(head) :]
        if not tokens:
            raise InputError(f"the continuation {continuation!r} adds no token to its context")
        body = {"model": self.model_id, "prompt": context, "logprobs": 0}
        return self._forced("/completions", body, continuation, tokens)

    def _echo_loglik(self, pair: tuple[str, str]) -> float:
        """Echo (vLLM, SGLang): the whole text with its tokens' log-probabilities; the context's tokens skipped."""
        context, continuation = pair
        n_context = len(self._tokens(context, special=True))
        body = {
            "model": self.model_id,
            "prompt": context + continuation,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        }
        choice = self._request("POST", "/completions", body)["choices"][0]
        values = (choice.get("logprobs") or {}).get("token_logprobs") or []
        mine = values[n_context : len(values) - 1]  # the last one is the generated token
        if not mine or None in mine:
            raise CapabilityError(
                f"{self._who()} returned no log-probabilities for the echoed prompt: it needs echo with logprobs "
                "on /v1/completions (vLLM: prompt_logprobs allowed, i.e. not --max-logprobs 0)"
            )
        return float(sum(mine))

    # ---- tokens ----------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` from the server's own tokenizer (no BOS)."""
        return self._tokens(text, special=False)

    def _tokens(self, text: str, special: bool) -> list[int]:
        if self.profile.tokenize_path is None:
            raise CapabilityError(f"{self._who()} has no tokenizer endpoint: pass --server-profile if it has one")
        key = (text, special)
        if key in self._token_cache:  # a question's context is tokenized once for all its choices
            return list(self._token_cache[key])
        body = {"model": self.model_id, **self.profile.tokenize_body(text, special)}
        data = self._request("POST", self.profile.tokenize_path, body, root=True)
        tokens = [int(t) for t in data["tokens"]]
        if self.profile.name == "llama-cpp-python" and not special:
            # Its endpoint adds BOS where the model does; what the empty text tokenizes to is exactly that prefix.
            if self._bos_prefix is None:
                self._bos_prefix = self._tokens("", special=True)
            if self._bos_prefix and tokens[: len(self._bos_prefix)] == self._bos_prefix:
                tokens = tokens[len(self._bos_prefix) :]
        with self._cache_lock:
            if len(self._token_cache) >= TOKEN_CACHE:
                self._token_cache.pop(next(iter(self._token_cache)))
            self._token_cache[key] = tuple(tokens)
        return tokens

    def render(self, messages: list[dict[str, str]]) -> str:
        """Not available: the server applies its own chat template."""
        raise CapabilityError(f"{self._who()} renders chats itself; call generate, stream or choose instead")

    def special_tokens(self) -> SpecialTokens:
        """Not available: the server applies its own BOS rule (see ``loglikelihood``)."""
        raise CapabilityError(f"{self._who()} applies its own BOS rule; call loglikelihood or choose instead")

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        raise CapabilityError(f"{self._who()} scores text, not token ids: call choose")

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        raise CapabilityError(f"{self._who()} scores text, not token ids: call loglikelihood")

    # ---- the start-up check ------------------------------------------------------------------------------

    def self_check(self) -> None:
        """Prove the server enforces each constraint kind this profile maps, or refuse it (see module doc).

        Each probe asks for a shape no model writes unprompted. A kind the profile cannot map is left to fail
        with its own :class:`CapabilityError` when used.
        """
        probes = [
            ("Hello! How are you today?", Pattern(r"[0-9]{3}-[a-z]{2}")),
            ("Is water wet? Answer yes or no.", Choices(("7-zebra", "9-quartz"))),
            ("Hello!", Json('{"type":"object","properties":{"zq":{"enum":["on","off"]}},"required":["zq"]}')),
        ]
        ignored = []
        for prompt, probe in probes:
            try:
                text = self._complete(to_messages(prompt), probe, Sampling(max_tokens=32))
            except CapabilityError:
                continue
            try:
                probe.check(text)
            except ConstraintViolation:
                ignored.append(f"{probe.key} -> {text[:60]!r}")
        if not ignored:
            return
        fields = ", ".join(sorted({k for p in probes for k in self._fields_or_none(p[1])}))
        if not self.allow_unconstrained:
            raise ModelError(
                f"{self._who()} (profile {self.profile.name}) ignores constraints sent as {fields}: "
                f"{'; '.join(ignored)}. Pass the right --server-profile (vLLM < 0.12 knows only guided_*: upgrade "
                "it), or --allow-unconstrained to validate and retry here, results marked unconstrained"
            )
        self.constrained = False
        self.name = f"{self.model_id} (unconstrained)"
        print(f"warning: {self._who()} ignores constraints; validating and retrying here", file=sys.stderr)

    def _fields_or_none(self, constraint: Constraint) -> list[str]:
        try:
            return list(self.profile.fields(constraint))
        except CapabilityError:
            return []

    def close(self) -> None:
        """Close the connections and the request pool."""
        self.http.close()
