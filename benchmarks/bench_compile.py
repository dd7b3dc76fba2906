"""Target 1: a full compile (`gitconf validate`) against a bare libyaml load of the same files.

    python benchmarks/bench_compile.py [--quick] [--repo DIR] [--runs 3] [--profiler both]

Both sides are timed as whole processes (interpreter start and imports included), alternating,
best and median of --runs. The bare side loads gitconf.yaml and every *.yaml under base/ and
environments/ with `yaml.load(..., Loader=yaml.CSafeLoader)` (gitconf's !replace, !append and
!delete tags constructed as the plain value they carry). Target: validate <= 3x the bare load.

Then the compile is profiled in-process (cProfile, and pyinstrument when it is installed):
the top functions go to stdout and the whole summary to /tmp/gitconf-profile.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import subprocess
import sys
import time
from pathlib import Path

from common import add_size_arguments, machine, summary, synthetic_repo, wait_quiet, workdir

PROFILE_PATH = Path("/tmp/gitconf-profile.txt")

BARE_LOAD = """\
import os, sys, yaml

class Loader(yaml.CSafeLoader):
    pass

def untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)

Loader.add_multi_constructor("!", untagged)
root = sys.argv[1]
paths = [os.path.join(root, "gitconf.yaml")]
for top in ("base", "environments"):
    for folder, dirs, names in os.walk(os.path.join(root, top)):
        dirs.sort()
        paths += [os.path.join(folder, n) for n in sorted(names) if n.endswith((".yaml", ".yml"))]
for path in paths:
    with open(path, "rb") as handle:
        yaml.load(handle.read(), Loader=Loader)
print(f"ok: loaded {len(paths)} files")
"""

# Functions whose cumulative time says where a compile goes (absent ones are skipped).
STAGES = [
    ("gitconf/git/read.py", "fileset_from_dir"),
    ("gitconf/core/compile.py", "compile_fileset"),
    ("gitconf/core/manifest.py", "parse_manifest"),
    ("gitconf/core/schemas.py", "load_schemas"),
    ("gitconf/core/compile.py", "_parse"),
    ("gitconf/core/parse.py", "parse_yaml"),
    ("gitconf/core/parse.py", "get_single_node"),
    ("gitconf/core/parse.py", "walk"),
    ("gitconf/core/compile.py", "_merge_all"),
    ("gitconf/core/merge.py", "merge"),
    ("gitconf/core/schemas.py", "schema_errors"),
    ("gitconf/core/model.py", "to_plain"),
    ("jsonschema/validators.py", "iter_errors"),
    ("jsonschema/validators.py", "__init__"),
    ("referencing/_core.py", "lookup"),
]


def timed(command: list[str]) -> tuple[float, str]:
    """Seconds a command takes as a whole process, and its last line of output."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(
            f"{command} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr}"
        )
    lines = (result.stdout.strip() or result.stderr.strip()).splitlines()
    return elapsed, lines[-1] if lines else ""


def compare(repo: Path, runs: int) -> dict[str, list[float]]:
    """Whole-process timings of `gitconf validate` and the bare load, alternating."""
    commands = {
        "bare CSafeLoader load": [sys.executable, "-c", BARE_LOAD, str(repo)],
        "gitconf validate": [sys.executable, "-m", "gitconf", "validate", "--repo", str(repo)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs):
        for name, command in commands.items():
            elapsed, last = timed(command)
            times[name].append(elapsed)
            print(f"  run {run + 1}: {name:<22} {elapsed:7.2f}s  ({last})", flush=True)
    return times


def stage_table(stats: pstats.Stats) -> list[str]:
    """Cumulative seconds of the STAGES functions found in a profile."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = max((v[3] for (f, _, n), v in raw.items() if n == "compile_fileset"), default=0.0)
    out = []
    for path_end, name in STAGES:
        found = [(v[1], v[3]) for (f, _, n), v in raw.items() if n == name and f.endswith(path_end)]
        if found:
            calls = sum(c for c, _ in found)
            cumulative = max(t for _, t in found)  # recursion counts once in cumtime
            share = f"{100 * cumulative / total:5.1f}%" if total else ""
            out.append(f"  {path_end}:{name:<18} {calls:>9} calls {cumulative:8.2f}s {share}")
    return out


def profile_cprofile(repo: Path) -> str:
    """The compile of the folder under cProfile: stages, top 15 cumulative and tottime."""
    from gitconf.core.compile import compile_fileset
    from gitconf.git.read import fileset_from_dir

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    result = compile_fileset(fileset_from_dir(repo))
    profiler.disable()
    elapsed = time.perf_counter() - started
    assert result.revision is not None, result.problems[:5]
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs()
    full = pstats.Stats(profiler, stream=io.StringIO())
    stream.write(f"cProfile: read + compile in-process took {elapsed:.2f}s under the profiler\n")
    stream.write("Stages (cumulative, share of compile_fileset):\n")
    stream.write("\n".join(stage_table(full)) + "\n")
    stream.write("\nTop 15 by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(15)
    stream.write("\nTop 15 by own time (tottime):\n")
    stats.sort_stats("tottime").print_stats(15)
    return stream.getvalue()


def profile_pyinstrument(repo: Path) -> str | None:
    """The compile under pyinstrument's sampling profiler, or None if it is not installed."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    from gitconf.core.compile import compile_fileset
    from gitconf.git.read import fileset_from_dir

    profiler = Profiler(interval=0.001)
    profiler.start()
    result = compile_fileset(fileset_from_dir(repo))
    profiler.stop()
    assert result.revision is not None
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    return "pyinstrument (sampling, 1 ms):\n" + text


def main() -> None:
    """Time, compare, profile, print."""
    parser = argparse.ArgumentParser(description="gitconf validate vs a bare libyaml load")
    add_size_arguments(parser)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profiler", choices=["cprofile", "pyinstrument", "both", "none"], default="both"
    )
    args = parser.parse_args()
    with workdir("compile") as tmp:
        repo = synthetic_repo(args, Path(tmp), mutable=False)
        print(f"# bench_compile on {machine()}")
        print(wait_quiet(args.wait_quiet))
        print(f"repository: {repo}")
        times = compare(repo, args.runs)
        bare = summary(times["bare CSafeLoader load"])
        full = summary(times["gitconf validate"])
        print(f"bare CSafeLoader load: best {bare['best']:.2f}s  median {bare['median']:.2f}s")
        print(f"gitconf validate:      best {full['best']:.2f}s  median {full['median']:.2f}s")
        ratio_best = full["best"] / bare["best"]
        ratio_median = full["median"] / bare["median"]
        verdict = "meets" if ratio_best <= 3 else "misses"
        print(
            f"ratio validate/bare: best {ratio_best:.2f}x  median {ratio_median:.2f}x "
            f"(target <= 3x: {verdict})"
        )
        if args.profiler == "none":
            return
        parts = []
        if args.profiler in ("cprofile", "both"):
            parts.append(profile_cprofile(repo))
        if args.profiler in ("pyinstrument", "both"):
            sampled = profile_pyinstrument(repo)
            if sampled is None:
                print("pyinstrument is not installed: `pip install pyinstrument` to add it")
            else:
                parts.append(sampled)
        text = "\n\n".join(parts)
        PROFILE_PATH.write_text(f"# {machine()}\n# repository {repo}\n\n{text}")
        for part in parts:
            lines = part.splitlines()
            print("\n".join(lines[:70]))
            if len(lines) > 70:
                print(f"  ... ({len(lines) - 70} more lines in {PROFILE_PATH})")
        print(f"profile summary written to {PROFILE_PATH}")


if __name__ == "__main__":
    main()
