"""``ta doctor``: prove that the installed llama.cpp runs on this CPU, naming the fix when it does not.

A llama.cpp built with ``-march=native`` (llama-cpp-python's default) or built on another machine can
contain instructions this CPU refuses: AMX tile kernels on a VM that advertises AMX but does not enable
it, AVX-512 kernels carried to a desktop CPU. The first decode then kills the process with SIGILL, no
traceback, nothing printed. So the decode runs in a child process: a signal kills only the child, and
the parent reports what the build was compiled for and the exact command that rebuilds it portably.

    ta doctor                    (also: python -m tutor.doctor; exit 0 when fine, 2 when broken)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# The portable x86-64 flags, the same as scripts/build_llama_cpp.sh (a test holds the two equal):
# x86-64-v3 (AVX2, FMA, F16C, BMI2); no AVX-512, no AMX.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    " -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_llama_cpp.sh"
MARK = "DOCTOR "  # the child's report lines start with this; anything else on stdout is llama.cpp's own

# The child: report the build first (so a crash in the decode still leaves it), then load and decode. One thread
# runs the same kernels, and on a busy machine it is not stalled at every barrier waiting for a second one.
CHILD = """
import json, os, sys, time
print("DOCTOR " + json.dumps({"stage": "import"}), flush=True)
import llama_cpp
info = llama_cpp.llama_print_system_info()
info = info.decode() if isinstance(info, bytes) else str(info)
print("DOCTOR " + json.dumps({"system_info": info, "library": os.path.dirname(llama_cpp.__file__)}), flush=True)
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=1, verbose=False)
start = time.perf_counter()
out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
seconds = time.perf_counter() - start
print("DOCTOR " + json.dumps({"text": out["choices"][0]["text"], "seconds": seconds}), flush=True)
"""

# llama.cpp's system-info names for instruction sets (the rest, LLAMAFILE, OPENMP, REPACK, are not SIMD).
SIMD_NAME = re.compile(
    r"^(SSE|SSSE|AVX|F16C|FMA|BMI|AMX|NEON|ARM_|FP16|DOTPROD|SVE|SME|MATMUL|RISCV|VSX|WASM|VXE|LA?SX)"
)
# Beyond x86-64-v3: what a native or foreign build may carry that a CPU refuses.
BEYOND_PORTABLE = re.compile(r"^(AVX512|AVX_VNNI|AMX)")
# llama.cpp's name -> the flag /proc/cpuinfo lists for it (x86; SSE3 is "pni" there).
CPUINFO_FLAG = {
    "SSE3": "pni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AVX_VNNI": "avx_vnni",
}


@dataclass
class Report:
    """What the child said and how it ended."""

    returncode: int
    system_info: str = ""  # llama.cpp's llama_print_system_info(), "" if the child died before it
    library: str = ""  # the llama_cpp package directory the child imported
    text: str | None = None  # the decoded continuation; None if the decode did not finish
    seconds: float = 0.0
    stderr: str = ""
    timed_out: bool = False
    simd: list[str] = field(default_factory=list)

    @property
    def signal(self) -> int | None:
        """The signal that killed the child (``-N`` from Popen, ``128+N`` through a shell), else None."""
        if self.returncode < 0:
            return -self.returncode
        if self.returncode > 128 and self.returncode - 128 in signal.valid_signals():
            return self.returncode - 128
        return None

    @property
    def ok(self) -> bool:
        """The child decoded and exited cleanly."""
        return self.returncode == 0 and self.text is not None and not self.timed_out


def simd_features(system_info: str) -> list[str]:
    """The instruction sets a llama.cpp build uses, from its system info (``"AVX2 = 1 | ..."``)."""
    found = re.findall(r"([A-Z][A-Z0-9_]*) = 1\b", system_info)
    return list(dict.fromkeys(name for name in found if SIMD_NAME.match(name)))


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The flags the CPU advertises (Linux), or None where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return None


def unlisted(features: Sequence[str], flags: set[str] | None) -> list[str]:
    """Build features the CPU does not even advertise (empty when its flags are unknown or not x86)."""
    if not flags or ("avx" not in flags and "sse2" not in flags):  # x86 names only
        return []
    return [f for f in features if CPUINFO_FLAG.get(f, f.lower()) not in flags]


def probe(command: Sequence[str] | None = None, timeout: float = 300.0) -> Report:
    """Run the child (``command``, default: one decode of the embedded model) and read its report."""
    if command is None:
        from tutor.models import embedded

        command = [sys.executable, "-c", CHILD, str(embedded.gguf_path())]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        returncode, stdout, stderr, timed_out = done.returncode, done.stdout, done.stderr, False
    except subprocess.TimeoutExpired as exc:
        returncode, timed_out = -1, True
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
    report = Report(returncode=returncode, stderr=stderr, timed_out=timed_out)
    for line in stdout.splitlines():
        if line.startswith(MARK):
            fields: dict[str, Any] = json.loads(line[len(MARK) :])
            fields.pop("stage", None)
            for key, value in fields.items():
                setattr(report, key, value)
    report.simd = simd_features(report.system_info)
    return report


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def reinstall_commands(python: str | None = None) -> list[str]:
    """The commands that rebuild llama-cpp-python portably: the repository's script, then plain pip."""
    python = _short(python or sys.executable)
    version = _installed_version()
    commands = []
    if SCRIPT.is_file():
        commands.append(f"bash {_short(str(SCRIPT))} {python}")
    commands.append(
        f"CMAKE_ARGS={shlex.quote(PORTABLE_CMAKE_ARGS)} {python} -m pip install --no-cache-dir --force-reinstall"
        f" --no-deps --no-binary llama-cpp-python llama-cpp-python=={version}"
    )
    return commands


def _installed_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "0.3.36"


def _short(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it (what a user would type)."""
    absolute = os.path.abspath(path)  # not resolve(): a venv's python is a symlink out of the tree
    return os.path.relpath(absolute) if Path(absolute).is_relative_to(Path.cwd()) else absolute


def explain(report: Report, flags: set[str] | None = None) -> str:
    """The diagnosis of a failed probe: what happened, the likely cause, the commands that fix it."""
    sig = report.signal
    beyond = [f for f in report.simd if BEYOND_PORTABLE.match(f)]
    if report.timed_out:
        head = "the llama.cpp test decode did not finish in time (a build for another CPU, or a machine under load)"
    elif sig is not None:
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
        head = f"llama.cpp was killed by {name} in its test decode of the embedded model"
    else:
        last = report.stderr.strip().splitlines()[-1:] or ["no output"]
        head = f"llama.cpp failed its test decode (exit status {report.returncode}): {last[0]}"
    lines = [head]
    if sig == signal.SIGILL:
        lines.append(
            "This build uses instructions this CPU refuses: typically AMX or AVX-512 kernels from a -march=native "
            "build on a machine that advertises them but does not enable them (many VMs), or a wheel built on "
            "another machine (pip's wheel cache, a Docker layer, a Space image)."
        )
        if beyond:
            lines.append(f"It was built with {', '.join(beyond)}, beyond the portable x86-64-v3 set.")
    missing = unlisted(report.simd, flags if flags is not None else cpu_flags())
    if missing:
        lines.append(f"It was built for {', '.join(missing)}, which this CPU does not list at all.")
    if report.system_info:
        lines.append(f"llama.cpp system info: {report.system_info.strip()}")
    lines.append("Rebuild llama-cpp-python for a portable target (about 6 minutes on 2 cores):")
    lines += [f"    {c}" for c in reinstall_commands()]
    return "\n".join(lines)


def run(timeout: float = 300.0, command: Sequence[str] | None = None) -> int:
    """Probe, print the report (stdout) or the diagnosis (stderr); 0 when llama.cpp runs, 2 when not."""
    report = probe(command, timeout=timeout)
    if not report.ok:
        print(f"ta doctor: error: {explain(report)}", file=sys.stderr)
        return 2
    print(f"llama-cpp-python {_installed_version()} ({report.library})")
    print(f"built with: {' '.join(report.simd) or 'no SIMD reported'}")
    print(f"system info: {report.system_info.strip()}")
    print(f"test decode: ok, {report.text!r} in {report.seconds:.2f} s")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The doctor's options, shared by ``ta doctor`` and ``python -m tutor.doctor``."""
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the test decode may take")


def register(sub: Any) -> None:
    """Add ``ta doctor``."""
    p = sub.add_parser("doctor", help="check that llama.cpp runs on this CPU (one decode in a child process)")
    add_arguments(p)
    p.set_defaults(func=lambda args: run(args.timeout))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tutor.doctor``: the same as ``ta doctor``, without the ``ta`` entry point."""
    from tutor.models.base import ModelError

    parser = argparse.ArgumentParser(prog="ta doctor", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args.timeout)
    except ModelError as exc:  # the embedded model is missing: its message names the install command
        print(f"ta doctor: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
