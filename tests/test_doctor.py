"""``ta doctor``: the real decode in a child process, and the diagnosis when a child dies of SIGILL."""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys

import pytest

from tutor import doctor

# What llama.cpp 0.3.36 reports for a -march=native build on a Sapphire Rapids VM (the machine).
NATIVE_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)


def child(code: str) -> list[str]:
    """A stand-in child: reports a native build's system info the way the real one does, then runs ``code``."""
    report = f"print({doctor.MARK!r} + json.dumps({{'system_info': {NATIVE_INFO!r}}}), flush=True)"
    return [sys.executable, "-c", f"import json, os, signal, time\n{report}\n{code}"]


def test_real_decode_in_a_child_process(capsys) -> None:
    assert doctor.run() == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "test decode: ok" in out and "system info: CPU :" in out, out
    built = next(line for line in out.splitlines() if line.startswith("built with: "))
    if platform.machine() == "x86_64":
        assert "AVX2" in built.split(), out


def test_sigill_in_the_child_is_named_with_the_reinstall_commands(capsys) -> None:
    code = doctor.run(command=child("os.kill(os.getpid(), signal.SIGILL)"))
    assert code == 2
    err = capsys.readouterr().err
    assert "killed by SIGILL" in err and "instructions this CPU refuses" in err
    assert "AVX512, AVX512_VBMI, AVX512_VNNI, AVX512_BF16, AMX_INT8" in err  # the kernels beyond x86-64-v3
    assert f"bash {doctor._short(str(doctor.SCRIPT))} " in err
    assert "--no-cache-dir --force-reinstall" in err and "-DGGML_NATIVE=OFF" in err
    assert "Traceback" not in err


def test_a_signal_through_a_shell_reads_as_that_signal() -> None:
    # A shell reports a child killed by signal N as status 128+N (132 for SIGILL); Popen reports -N.
    shell = subprocess.run(["sh", "-c", f"{sys.executable} -c 'import os; os.kill(os.getpid(), 4)'"], check=False)
    assert shell.returncode == 132
    assert doctor.Report(returncode=132).signal == signal.SIGILL
    assert doctor.Report(returncode=-4).signal == signal.SIGILL
    assert doctor.Report(returncode=1).signal is None


def test_other_failures_say_what_happened(capsys) -> None:
    assert doctor.run(command=child("raise ImportError('libggml-cpu.so: cannot open shared object file')")) == 2
    err = capsys.readouterr().err
    assert "exit status 1" in err and "libggml-cpu.so" in err and "Rebuild" in err
    assert doctor.run(command=child("time.sleep(30)"), timeout=1) == 2
    assert "did not finish in time" in capsys.readouterr().err


def test_simd_features_and_what_the_cpu_does_not_list() -> None:
    simd = doctor.simd_features(NATIVE_INFO)
    assert simd[:3] == ["SSE3", "SSSE3", "AVX"] and "LLAMAFILE" not in simd and "OPENMP" not in simd
    desktop = {"sse2", "pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"}  # an x86-64-v3 desktop CPU
    assert doctor.unlisted(simd, desktop) == [
        "AVX_VNNI",
        "AVX512",
        "AVX512_VBMI",
        "AVX512_VNNI",
        "AVX512_BF16",
        "AMX_INT8",
    ]
    assert doctor.unlisted(simd, None) == [] and doctor.unlisted(["NEON"], {"asimd", "fp"}) == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the portable flags are x86-64's")
def test_the_printed_flags_are_the_build_scripts() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_CMAKE_ARGS"}
    script = subprocess.run(["bash", str(doctor.SCRIPT), "--print-flags"], capture_output=True, text=True, env=env)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == doctor.PORTABLE_CMAKE_ARGS


def test_register_adds_the_doctor_subcommand() -> None:
    parser = argparse.ArgumentParser()
    doctor.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--timeout", "5"])
    assert args.command == "doctor" and args.timeout == 5 and callable(args.func)


def test_requirements_txt_builds_with_the_same_flags() -> None:
    # The Space's install path: per-requirement config settings, cmake.define.NAME=VALUE -> -DNAME=VALUE.
    text = (doctor.SCRIPT.parent.parent / "requirements.txt").read_text()
    defines = re.findall(r"--config-settings=cmake\.define\.(\w+)=(\w+)", text)
    assert " ".join(f"-D{name}={value}" for name, value in defines) == doctor.PORTABLE_CMAKE_ARGS
    assert "--no-binary llama-cpp-python" in text
