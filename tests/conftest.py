"""Shared fixtures: the real embedded model on both backends (session-scoped), isolated state.

Tiers: the default run needs no network and no GPU; ``-m slow`` and ``-m gpu`` are opt-in (CI runs
``-m "slow or not gpu"``: everything but the GPU tier).

What a test needs from outside the repository (the shared data directory, a chromium binary, the network) is
asked for through :func:`need`: a loud skip with the reason on a developer's machine, a failure where it is
required (``TA_CI=1``, set by ``.ci/run``, requires everything; ``TA_REQUIRE_DATA=1``, ``TA_REQUIRE_BROWSER=1``,
``TA_REQUIRE_NETWORK=1`` one at a time). The run ends with a count of what ran on the real model and of every
test skipped for something missing, so a green run that tested little says so.
"""

from __future__ import annotations

import os
import signal
import warnings
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TUTOR_DATA", ROOT.parent / "shared" / "data"))

# Converted checkpoints are cached inside the repository (git-ignored), never in the home directory.
os.environ.setdefault("TUTOR_CACHE", str(ROOT / ".cache" / "tutor"))
os.environ.setdefault("DSPY_CACHEDIR", str(ROOT / ".cache" / "dspy"))
# Knowledge bases (the starter course's index included) live in the repository's cache, never in the home directory.
os.environ.setdefault("TA_DATA_DIR", str(ROOT / ".cache" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


# Fixtures that load the real embedded model; a test marked ``real_model`` runs it another way (a subprocess).
REAL_FIXTURES = frozenset({"llama_model", "hf_model", "any_model"})
MISSING = "missing "  # the prefix of every skip reason need() writes: the summary counts them by what is missing
_COUNTS = pytest.StashKey[Counter]()
_REAL = pytest.StashKey[set]()
_config: pytest.Config


def required(what: str) -> bool:
    """Whether a missing ``what`` (data, browser, network) fails the run here instead of skipping."""
    return os.environ.get("TA_CI") == "1" or os.environ.get(f"TA_REQUIRE_{what.upper()}") == "1"


def need(what: str, reason: str) -> None:
    """``what`` is missing: fail where it is required (CI), else skip loudly with ``reason`` (counted at the end)."""
    if required(what):
        pytest.fail(f"{MISSING}{what}: {reason} (required here: TA_CI=1 or TA_REQUIRE_{what.upper()}=1)", pytrace=False)
    pytest.skip(f"{MISSING}{what}: {reason}")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this file gives meaning to (pyproject.toml lists them too) and start the counts."""
    config.addinivalue_line("markers", "real_model: runs the real embedded model outside the model fixtures")
    config.addinivalue_line("markers", "network: needs a package registry (the requirements.txt install)")
    global _config
    _config = config  # the report hook is given only the report
    config.stash[_COUNTS] = Counter()
    config.stash[_REAL] = set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` and ``gpu`` tests unless their marker is asked for with ``-m``; note the real-model tests."""
    wanted = config.getoption("-m") or ""
    for item in items:
        for marker in ("slow", "gpu"):
            if marker in item.keywords and marker not in wanted:
                item.add_marker(pytest.mark.skip(reason=f"{marker} tier: run with -m {marker}"))
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())) or "real_model" in item.keywords:
            config.stash[_REAL].add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count real-model tests by outcome, and skips for something missing by what was missing."""
    counts = _config.stash[_COUNTS]
    real = report.nodeid in _config.stash[_REAL]
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(MISSING):
            counts["missing: " + reason.removeprefix(MISSING)] += 1
        if real:
            counts["real skipped"] += 1
    elif report.when == "call" and real:
        counts["real passed" if report.passed else "real failed"] += 1
    elif report.when == "setup" and report.failed and real:
        counts["real failed"] += 1


@pytest.hookimpl(trylast=True)  # after the durations, next to the short summary
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """How many tests ran on the real model; every skip for a missing dependency, loudly."""
    counts = config.stash[_COUNTS]
    ran = counts["real passed"] + counts["real failed"]
    terminalreporter.write_sep(
        "=",
        f"real model: {ran} tests ran on the embedded model ({counts['real passed']} passed, "
        f"{counts['real failed']} failed), {counts['real skipped']} skipped",
        bold=True,
    )
    for reason, n in sorted((k, v) for k, v in counts.items() if k.startswith("missing: ")):
        terminalreporter.write_sep("!", f"{n} tests SKIPPED, {reason}", red=True, bold=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data files (../shared/data, or $TUTOR_DATA): a counted skip if absent, a failure in CI."""
    if not DATA.is_dir():
        need("data", f"no data directory at {DATA}: set TUTOR_DATA to the shared data (see README, Tests)")
    return DATA


@pytest.fixture(scope="session")
def llama_model():
    """The embedded SmolLM2-135M-Instruct on llama.cpp, self-checked."""
    from tutor.models import load_model

    model = load_model("default")
    yield model
    model.close()


@pytest.fixture(scope="session")
def hf_model():
    """The same embedded model on transformers (converted once to safetensors in TUTOR_CACHE)."""
    from tutor.models import load_model

    return load_model("default", backend="transformers")


@pytest.fixture(params=["llamacpp", "transformers"])
def any_model(request: pytest.FixtureRequest):
    """Each real backend in turn."""
    return request.getfixturevalue("llama_model" if request.param == "llamacpp" else "hf_model")


@pytest.fixture(autouse=True)
def _reset_dspy():
    """DSPy settings are global: every test starts from a clean configuration."""
    yield
    try:
        import dspy
    except ImportError:
        return
    dspy.settings.configure(lm=None, adapter=None)


@pytest.fixture(scope="session")
def instruct_tiny() -> Path:
    """14 short ShareGPT conversations written for the tests (tests/data): training runs need no shared data."""
    return ROOT / "tests" / "data" / "instruct_tiny.jsonl"


def _sigint_state() -> str:
    """How this process treats SIGINT, from the kernel's view: ignored (all threads) and blocked (this thread)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    ignored = int(status["SigIgn"], 16) >> (signal.SIGINT - 1) & 1
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return f"ignored={bool(ignored)} blocked={blocked}"


@pytest.fixture
def default_sigint():
    """A child started by the test gets SIGINT as an interactive shell gives it, however the test run was started.

    A child inherits an ignored SIGINT, and Python then installs no Ctrl-C handler. A non-interactive shell starts
    a background command (``make test &``, ``nohup ... &``) with SIGINT ignored: the whole test run inherits that,
    and three process tests waited on children that ignored Ctrl-C (found in a fresh-clone run started so; not in
    CI, which runs in the foreground). This restores the default for the test, and warns with what it found.
    """
    before = _sigint_state()
    if before != "ignored=False blocked=False":
        warnings.warn(f"SIGINT is {before} in the test process (started in the background?); restored", stacklevel=1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    return before
