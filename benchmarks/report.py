"""Shared by the benchmark scripts: the device's name and writing a section of results.md."""

import os
import platform
import re

import jax

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")
HEADER = "# Benchmark results\n\nEach section is written by the script it names; see the script's docstring for its cases.\n"


def device_label() -> str:
    """E.g. "CPU: x86_64, 2 cores" or "GPU: NVIDIA H100 80GB HBM3"."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{device.platform.upper()}: {device.device_kind}"


def write_section(section: str) -> None:
    """Replaces the section with the same first line (a "### ..." title) in results.md, keeping the others."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else HEADER
    title = section.splitlines()[0]
    pattern = re.compile(re.escape(title) + r"\n.*?(?=\n### |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(RESULTS, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def emit(lines: list[str], *, write: bool) -> None:
    """Prints a section (its lines) and, if `write`, puts it into results.md."""
    section = "\n".join(lines) + "\n"
    print(section)
    if write:
        write_section(section)
