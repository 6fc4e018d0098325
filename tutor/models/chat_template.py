"""Render a chat through a model's own Jinja chat template, the way transformers does.

llama.cpp reads the template from the GGUF metadata; rendering it here (instead of through
llama-cpp-python's chat handlers) gives both backends the same prompt text for the same model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tutor.errors import InputError

# A plain ChatML fallback for GGUF files that carry no template (old conversions).
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _raise(message: str) -> None:
    # A template refuses a chat it cannot render (roles that do not alternate, a system turn it lacks).
    raise InputError(f"the model's chat template refuses these messages: {message}")


@lru_cache(maxsize=16)
def _compile(template: str) -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def render_chat(
    template: str | None,
    messages: list[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render ``messages`` with ``template`` (ChatML when None), ending ready for the assistant's turn."""
    return _compile(template or CHATML).render(
        messages=messages,
        bos_token=bos_token,
        eos_token=eos_token,
        add_generation_prompt=add_generation_prompt,
    )
