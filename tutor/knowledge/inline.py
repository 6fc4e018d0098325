r"""Inline markup to plain prose: reStructuredText roles and links, Markdown emphasis and links, LaTeX.

Every function here takes one paragraph's raw text and returns text with the markup gone and the words
kept: ``:ref:`the chain rule <chain_rule>``` becomes "the chain rule", ``**Weight**`` becomes "Weight",
``:math:`\hat{y} - y``` becomes "ŷ - y". Whitespace is collapsed to single spaces.
"""

from __future__ import annotations

import re
import unicodedata

# LaTeX commands a reader would rather see as one character; the rest lose their backslash.
_SYMBOLS = {
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "sum": "Σ", "prod": "Π", "int": "∫", "infty": "∞",
    "partial": "∂", "nabla": "∇", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠", "ne": "≠",
    "approx": "≈", "sim": "~", "in": "∈", "notin": "∉", "to": "→", "rightarrow": "→", "leftarrow": "←",
    "Rightarrow": "⇒", "mapsto": "↦", "ldots": "…", "dots": "…", "cdots": "…", "forall": "∀", "exists": "∃",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "vec": "\u20d7", "dot": "\u0307"}
_SPACING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\[,;:! ]|\\q?quad(?![A-Za-z])|&")


def _braced(text: str, at: int) -> tuple[str, int]:
    """The ``{...}`` group (or single character) starting at ``at``, and the index after it."""
    while at < len(text) and text[at] == " ":
        at += 1
    if at >= len(text):
        return "", at
    if text[at] != "{":
        return text[at], at + 1
    depth = 0
    for i in range(at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[at + 1 : i], i + 1
    return text[at + 1 :], len(text)


def latex_to_text(tex: str) -> str:
    r"""A readable plain-text rendering of a LaTeX formula: ``\frac{1}{N}`` -> "1/N", ``\hat{y}`` -> "ŷ"."""
    tex = _SPACING.sub(" ", tex.replace("\\\\", " "))
    out: list[str] = []
    i = 0
    while i < len(tex):
        match = re.match(r"\\([A-Za-z]+)", tex[i:])
        if not match:
            if tex[i] not in "{}":
                out.append(tex[i])
            i += 1
            continue
        name, i = match.group(1), i + match.end()
        if name in ("frac", "dfrac", "tfrac"):
            num, i = _braced(tex, i)
            den, i = _braced(tex, i)
            num, den = latex_to_text(num), latex_to_text(den)
            wrap = [s if re.fullmatch(r"[\w.']+", s) else f"({s})" for s in (num, den)]
            out.append(f"{wrap[0]}/{wrap[1]}")
        elif name == "sqrt":
            arg, i = _braced(tex, i)
            out.append(f"√({latex_to_text(arg)})")
        elif name in _ACCENTS:
            arg, i = _braced(tex, i)
            out.append(latex_to_text(arg) + _ACCENTS[name])
        elif name in (
            "text",
            "mathrm",
            "mathbf",
            "mathit",
            "mathcal",
            "mathbb",
            "operatorname",
            "textbf",
            "boldsymbol",
        ):
            arg, i = _braced(tex, i)
            out.append(latex_to_text(arg))
        elif name in ("begin", "end"):
            _, i = _braced(tex, i)
        else:
            out.append(_SYMBOLS.get(name, name))
            if name not in _SYMBOLS and i < len(tex) and tex[i].isalnum():
                out.append(" ")  # \log x -> "log x", not "logx"
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", "".join(out)).strip())


def squash(text: str) -> str:
    """Collapse whitespace and tidy the gaps markup removal leaves (" ." -> ".", "( " -> "(")."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:!?)\]])(?!\w)", r"\1", text)
    return re.sub(r"([(\[])\s+", r"\1", text)


# -- reStructuredText ------------------------------------------------------------------------------------------

_RST_ROLE = re.compile(r":(?P<role>[\w.+-]+(?::[\w.+-]+)?):`(?P<body>(?:[^`\\]|\\.)*)`")
_RST_LINK = re.compile(r"`(?P<text>[^`<]*?)\s*<(?P<target>[^`>]*)>`__?")
_RST_REF = re.compile(r"`(?P<text>[^`]+)`__?")
_RST_FOOTNOTE = re.compile(r"\s*\[(?:#[\w-]*|\d+|\*|[A-Za-z][\w.-]*)\]_")
_RST_TRAILING_REF = re.compile(r"(?<=\w)__?(?=[\s.,;:!?)]|$)")


def _role(match: re.Match[str]) -> str:
    role, body = match.group("role"), match.group("body").replace("\\`", "`")
    if role == "math":
        return latex_to_text(body)
    labelled = re.fullmatch(r"(?s)(.*?)\s*<([^<>]*)>", body)
    if labelled and labelled.group(1):
        return labelled.group(1)
    body = body.lstrip("~!")
    if role in ("ref", "doc", "term", "numref"):
        # A bare target names the page or label: "gradient_descent" reads "gradient descent".
        body = body.rsplit("/", 1)[-1].replace("_", " ").replace("-", " ")
    return body


def rst_inline(text: str) -> str:
    """Plain prose from one reStructuredText paragraph."""
    text = _RST_ROLE.sub(_role, text)
    text = _RST_LINK.sub(lambda m: m.group("text") or m.group("target"), text)
    text = _RST_FOOTNOTE.sub("", text)
    text = _RST_REF.sub(r"\g<text>", text)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*\\])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"\|([^|\s][^|]*)\|_?", r"\1", text)  # substitutions
    text = _RST_TRAILING_REF.sub("", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return squash(text)


# -- Markdown ----------------------------------------------------------------------------------------------------

_MD_CODE = re.compile(r"(`+)(.+?)\1")
_MD_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")


def md_inline(text: str) -> str:
    """Plain prose from one Markdown paragraph."""
    spans: list[str] = []

    def keep(value: str) -> str:  # code and math are shielded from the emphasis rules below
        spans.append(value)
        return f"\x00{len(spans) - 1}\x00"

    text = _MD_CODE.sub(lambda m: keep(m.group(2).strip()), text)
    text = _MD_MATH.sub(lambda m: keep(latex_to_text(m.group(1) or m.group(2))), text)
    text = re.sub(r"<!--.*?-->", "", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]", "", text)  # images
    text = re.sub(r"\[\^[^\]]+\]", "", text)  # footnote references
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = re.sub(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>", "", text)  # inline HTML tags
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", r"\1", text)
    text = re.sub(r"~~(.+?)~~", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|$])", r"\1", text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)
    return squash(text)
