"""gitconf.git.read: a commit's tree or a folder on disk into a FileSet, and ref resolution."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner

from gitconf.cli import main
from gitconf.errors import UsageError
from gitconf.git.read import (
    TreeCache,
    fileset_from_commit,
    fileset_from_dir,
    fileset_from_index,
    is_url,
    open_repository,
    resolve,
)
from gitconf.testing import MINIMAL_MANIFEST, OPEN_SCHEMA, commit_all, git, make_repo, write_files

Files = dict[str, str | bytes | None]

CONFIG: Files = {
    "gitconf.yaml": MINIMAL_MANIFEST,
    "schemas/payments.schema.json": OPEN_SCHEMA,
    "schemas/notifications.schema.json": OPEN_SCHEMA,
    "schemas/_common/db.json": '{"type": "object"}\n',
    "base/_all.yaml": "log_level: info\n",
    "base/payments.yaml": "db:\n  port: 5432\n",
    "base/notifications/10-core.yaml": "queue: q\n",
    "environments/staging/payments.yaml": "db:\n  port: 6432\n",
    "environments/production/README.md": "notes, still under a config root\n",
}

OUTSIDE: Files = {
    "README.md": "# my config\n",
    "docs/payments.yaml": "not: config\n",
    ".github/workflows/ci.yml": "on: push\n",
    "basement/payments.yaml": "a: 1\n",  # shares a prefix with base/, is not base/
    "gitconf.yaml.bak": "version: 0\n",
    "environments.yaml": "a: 1\n",
}


def open_at(repo: Path, ref: str = "HEAD") -> tuple[pygit2.Repository, pygit2.Commit]:
    """The pygit2 repository at repo and the commit ref names."""
    git_repo = pygit2.Repository(str(repo))
    return git_repo, resolve(git_repo, ref)


# -- fileset_from_commit ---------------------------------------------------------------------------
def test_commit_holds_only_config_paths_with_blob_ids(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**CONFIG, **OUTSIDE})
    git_repo, commit = open_at(repo)

    files = fileset_from_commit(git_repo, commit)

    assert set(files.files) == set(CONFIG)
    for path, content in CONFIG.items():
        assert isinstance(content, str)
        assert files.files[path] == content.encode()
    assert set(files.oids) == set(CONFIG)
    for path in CONFIG:
        assert files.oids[path] == git(repo, "rev-parse", f"HEAD:{path}")
    assert files.irregular == {}
    assert str(commit.id) in files.label


def test_commit_is_read_not_the_work_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", CONFIG)
    first = git(repo, "rev-parse", "HEAD")
    commit_all(
        repo, "second", {"base/payments.yaml": "db:\n  port: 1\n", "base/new.yaml": "a: 1\n"}
    )
    write_files(repo, {"base/payments.yaml": "db:\n  port: 2\n", "base/_all.yaml": None})

    git_repo, old = open_at(repo, first)
    _, new = open_at(repo, "HEAD")

    at_first = fileset_from_commit(git_repo, old)
    at_head = fileset_from_commit(git_repo, new)
    assert at_first.files["base/payments.yaml"] == b"db:\n  port: 5432\n"
    assert "base/new.yaml" not in at_first.files
    assert at_head.files["base/payments.yaml"] == b"db:\n  port: 1\n"
    assert at_head.files["base/_all.yaml"] == b"log_level: info\n"  # deleted only on disk
    assert at_first.oids["base/_all.yaml"] == at_head.oids["base/_all.yaml"]
    assert at_first.oids["base/payments.yaml"] != at_head.oids["base/payments.yaml"]


def test_commit_symlinks_and_submodules_are_irregular(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**CONFIG, "shared/payments.yaml": "a: 1\n"}, commit=False)
    os.symlink("../../base/payments.yaml", repo / "environments/staging/linked.yaml")
    os.symlink("../shared", repo / "environments/production-eu")
    os.symlink("base/_all.yaml", repo / "outside-link.yaml")  # not a config path: ignored
    commit_all(repo, "links")
    sha = git(repo, "rev-parse", "HEAD")
    for path in ("environments/staging/vendored", "schemas/vendored", "vendor/lib"):
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
    git(repo, "commit", "-q", "-m", "submodules")  # not commit_all: `add -A` would drop them

    files = fileset_from_commit(*open_at(repo))

    assert files.irregular == {
        "environments/staging/linked.yaml": "symlink",
        "environments/production-eu": "symlink",
        "environments/staging/vendored": "submodule",
        "schemas/vendored": "submodule",
    }
    for path in files.irregular:
        assert path not in files.files
        assert not any(p.startswith(path + "/") for p in files.files)
        assert path not in files.oids
    assert "environments/staging/payments.yaml" in files.files


def test_commit_top_level_manifest_symlink_is_irregular(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {**CONFIG, "gitconf.yaml": None, "real.yaml": MINIMAL_MANIFEST},
        commit=False,
    )
    os.symlink("real.yaml", repo / "gitconf.yaml")
    commit_all(repo, "manifest link")

    files = fileset_from_commit(*open_at(repo))

    assert files.irregular == {"gitconf.yaml": "symlink"}
    assert "gitconf.yaml" not in files.files


def test_reads_with_a_tree_cache_equal_reads_without(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**CONFIG, **OUTSIDE})
    cache = TreeCache()
    changes: list[Files] = [
        {"environments/staging/payments.yaml": "db:\n  port: 7432\n"},
        {"base/notifications/20-extra.yaml": "extra: 1\n", "base/_all.yaml": "log_level: warn\n"},
        {"environments/staging/payments.yaml": None, "environments/dev/payments.yaml": "a: 1\n"},
        {
            "schemas/_common/db.json": None,
            "environments/staging/payments.yaml": "db:\n  port: 6432\n",
        },
        {"base/notifications/10-core.yaml": "queue: q\n", "README.md": "outside only\n"},
    ]
    for change in [{}, *changes]:
        if change:
            commit_all(repo, "change", change)
        git_repo, commit = open_at(repo)

        cached = fileset_from_commit(git_repo, commit, cache)
        fresh = fileset_from_commit(git_repo, commit)

        assert cached == fresh
        assert list(cached.files) == list(fresh.files)


def test_a_tree_cache_reads_only_what_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", dict(CONFIG))
    cache = TreeCache()
    before = fileset_from_commit(*open_at(repo), cache)
    commit_all(repo, "one file", {"environments/staging/payments.yaml": "db:\n  port: 1\n"})
    commit_all(repo, "and back", {"environments/staging/payments.yaml": "db:\n  port: 6432\n"})

    after = fileset_from_commit(*open_at(repo), cache)

    # The same bytes objects: reused (whole subtrees, or blobs by id), not read again.
    for path, data in before.files.items():
        assert after.files[path] is data, path


def test_a_tree_cache_survives_reading_another_ref_in_between(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", dict(CONFIG))
    cache = TreeCache()
    first = fileset_from_commit(*open_at(repo), cache)
    commit_all(repo, "elsewhere", {f"base/other-{i}.yaml": f"n: {i}\n" for i in range(3)})
    fileset_from_commit(*open_at(repo), cache)  # a ref read between two polls
    commit_all(repo, "back", {f"base/other-{i}.yaml": None for i in range(3)})

    again = fileset_from_commit(*open_at(repo), cache)

    assert (again.files, again.oids, again.irregular) == (first.files, first.oids, first.irregular)
    assert again.files["base/payments.yaml"] is first.files["base/payments.yaml"]


def test_commit_and_folder_agree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**CONFIG, **OUTSIDE})

    from_commit = fileset_from_commit(*open_at(repo))
    from_dir = fileset_from_dir(repo)

    assert dict(from_dir.files) == dict(from_commit.files)


# -- fileset_from_dir ----------------------------------------------------------------------------
def test_folder_reads_uncommitted_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", CONFIG)
    write_files(
        repo,
        {
            "base/payments.yaml": "db:\n  port: 1\n",
            "environments/production/payments.yaml": "db:\n  port: 2\n",  # untracked
            "base/_all.yaml": None,
        },
    )

    files = fileset_from_dir(repo)

    assert files.files["base/payments.yaml"] == b"db:\n  port: 1\n"
    assert files.files["environments/production/payments.yaml"] == b"db:\n  port: 2\n"
    assert "base/_all.yaml" not in files.files
    assert files.oids == {}
    assert str(repo) in files.label


def test_folder_ignores_files_outside_config_paths(tmp_path: Path) -> None:
    folder = tmp_path / "plain"  # no Git at all
    write_files(folder, {**CONFIG, **OUTSIDE})

    files = fileset_from_dir(folder)

    assert set(files.files) == set(CONFIG)
    assert files.irregular == {}


def test_folder_ignores_the_git_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", CONFIG)

    assert not any(".git" in path.split("/") for path in fileset_from_dir(repo).files)


def test_folder_symlinks_and_submodules_are_irregular(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    write_files(
        folder,
        {
            **CONFIG,
            "shared/payments.yaml": "a: 1\n",
            "environments/staging/vendored/.git": "gitdir: ../../../.git/modules/vendored\n",
            "environments/staging/vendored/payments.yaml": "a: 1\n",
        },
    )
    os.symlink("../../base/payments.yaml", folder / "environments/staging/linked.yaml")
    os.symlink("../shared", folder / "environments/production-eu")
    os.symlink("base", folder / "outside-link")

    files = fileset_from_dir(folder)

    assert files.irregular == {
        "environments/staging/linked.yaml": "symlink",
        "environments/production-eu": "symlink",
        "environments/staging/vendored": "submodule",
    }
    assert not any(p.startswith("environments/staging/vendored/") for p in files.files)
    assert not any(p.startswith("environments/production-eu/") for p in files.files)


def test_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope"):
        fileset_from_dir(tmp_path / "nope")


def test_folder_skips_what_git_ignores(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {
            **CONFIG,
            ".gitignore": "*.local.yaml\nenvironments/staging/scratch/\n/schemas/tmp.json\n",
        },
    )
    write_files(
        repo,
        {
            "base/payments.local.yaml": "a: [unclosed\n",
            "environments/staging/scratch/payments.yaml": "a: [unclosed\n",
            "schemas/tmp.json": "{not json",
            "environments/staging/_all.yaml": "untracked: but not ignored\n",
        },
    )

    files = fileset_from_dir(repo)

    assert set(files.files) == {*CONFIG, "environments/staging/_all.yaml"}
    assert files.irregular == {}


def test_folder_inside_a_work_tree_uses_its_ignore_rules(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "r", {".gitignore": "config/base/*.local.yaml\n"})
    write_files(top / "config", {**CONFIG, "base/x.local.yaml": "a: [\n"})

    assert set(fileset_from_dir(top / "config").files) == set(CONFIG)


def test_a_plain_folder_reads_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "plain"  # no Git: a .gitignore there means nothing
    write_files(folder, {**CONFIG, ".gitignore": "*.local.yaml\n", "base/x.local.yaml": "a: 1\n"})

    assert "base/x.local.yaml" in fileset_from_dir(folder).files


# -- fileset_from_index --------------------------------------------------------------------------
def test_the_index_reads_as_the_commit_made_from_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**CONFIG, **OUTSIDE})
    write_files(repo, {"base/payments.yaml": "db:\n  port: 1\n", "base/new.yaml": "n: 1\n"})
    os.symlink("payments.yaml", repo / "base/linked.yaml")
    git(repo, "add", "-A")
    write_files(repo, {"base/payments.yaml": "not: staged\n", "base/untracked.yaml": "u: 1\n"})

    staged = fileset_from_index(str(repo), environ={})
    git(repo, "commit", "-q", "-m", "the index")
    committed = fileset_from_commit(*open_at(repo))

    assert (staged.files, staged.oids, staged.irregular) == (
        committed.files,
        committed.oids,
        committed.irregular,
    )
    assert staged.files["base/payments.yaml"] == b"db:\n  port: 1\n"
    assert staged.irregular == {"base/linked.yaml": "symlink"}


def test_the_index_of_a_folder_inside_the_work_tree(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "r", {f"config/{k}": v for k, v in CONFIG.items()})

    assert set(fileset_from_index(str(top / "config"), environ={}).files) == set(CONFIG)


def test_git_index_file_names_the_index_to_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", CONFIG)
    other = tmp_path / "other-index"
    write_files(repo, {"base/payments.yaml": "db:\n  port: 7\n"})
    git(repo, "update-index", "--add", "base/payments.yaml")  # the default index
    env = {**os.environ, "GIT_INDEX_FILE": str(other)}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=repo, env=env, check=True)

    assert (
        fileset_from_index(str(repo), environ={}).files["base/payments.yaml"] == b"db:\n  port: 7\n"
    )
    from_other = fileset_from_index(str(repo), environ={"GIT_INDEX_FILE": str(other)})
    assert from_other.files["base/payments.yaml"] == CONFIG["base/payments.yaml"].encode()


def test_an_index_with_unmerged_paths_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", CONFIG)
    git(repo, "checkout", "-q", "-b", "other")
    commit_all(repo, "other", {"base/payments.yaml": "db:\n  port: 1\n"})
    git(repo, "checkout", "-q", "main")
    commit_all(repo, "main", {"base/payments.yaml": "db:\n  port: 2\n"})
    subprocess.run(["git", "merge", "-q", "other"], cwd=repo, capture_output=True)

    with pytest.raises(UsageError, match=r"unmerged paths \(base/payments.yaml\)"):
        fileset_from_index(str(repo), environ={})


def test_a_bare_repository_has_no_index_to_read(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    pygit2.init_repository(str(bare), bare=True)
    with pytest.raises(UsageError, match="bare repository: --staged needs a work tree"):
        fileset_from_index(str(bare), environ={})


# -- resolve -------------------------------------------------------------------------------------
@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    """main: first (tag v1), second (annotated tag v2); branches topic/x and feature: third."""
    repo = make_repo(tmp_path / "r", {**CONFIG, "base/payments.yaml": "n: 1\n"})
    git(repo, "tag", "v1")
    commit_all(repo, "second", {"base/payments.yaml": "n: 2\n"})
    git(repo, "tag", "-a", "v2", "-m", "release 2")
    git(repo, "checkout", "-q", "-b", "topic/x")
    commit_all(repo, "third", {"base/payments.yaml": "n: 3\n"})
    git(repo, "branch", "feature")
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("main", "main"),
        ("topic/x", "topic/x"),
        ("v1", "v1^{commit}"),
        ("v2", "v2^{commit}"),
        ("HEAD~1", "HEAD~1"),
        ("short", "v1^{commit}"),
    ],
)
def test_resolve(tagged: Path, ref: str, expected: str) -> None:
    if ref == "short":
        ref = git(tagged, "rev-parse", "--short=7", "v1")
    git_repo = pygit2.Repository(str(tagged))

    commit = resolve(git_repo, ref)

    assert isinstance(commit, pygit2.Commit)
    assert str(commit.id) == git(tagged, "rev-parse", expected)


@pytest.mark.parametrize("ref", ["nosuch", "v3", "HEAD~9", "0000000", "origin/main"])
def test_resolve_unknown(tagged: Path, ref: str) -> None:
    with pytest.raises(UsageError, match=repr(ref)):
        resolve(pygit2.Repository(str(tagged)), ref)


def test_resolve_tree_ref_is_not_a_commit(tagged: Path) -> None:
    tree = git(tagged, "rev-parse", "HEAD^{tree}")

    with pytest.raises(UsageError):
        resolve(pygit2.Repository(str(tagged)), tree)


def test_open_repository_outside_git(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()

    with (
        pytest.raises(UsageError, match="not inside a Git repository"),
        open_repository(str(tmp_path / "plain")),
    ):
        pass


# -- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("location", "remote"),
    [
        ("https://git.example.com/org/config.git", True),
        ("ssh://git@git.example.com/org/config.git", True),
        ("git@github.com:org/config.git", True),
        ("file:///srv/config", False),
        ("/srv/config", False),
        ("relative/config", False),
        (".", False),
        ("C:/config", False),
    ],
)
def test_is_url(location: str, remote: bool) -> None:
    assert is_url(location) is remote


@pytest.fixture
def clone_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a URL is cloned: tempfile's folder, moved under tmp_path so nothing leaks."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def render_n(repo: str, *args: str) -> object:
    """`gitconf render staging payments` and its `n`."""
    result = CliRunner().invoke(main, ["render", "staging", "payments", "--repo", repo, *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)["n"]


@pytest.mark.parametrize(
    ("ref", "n"),
    [
        ("v1", 1),
        ("v2", 2),
        ("main", 2),
        ("feature", 3),
        ("topic/x", 3),
        ("HEAD~1", 1),
        ("short", 1),
        (None, 2),  # a URL has no files on disk: its HEAD is read
    ],
)
def test_file_url_with_ref(tagged: Path, clone_dir: Path, ref: str | None, n: int) -> None:
    url = tagged.as_uri()
    assert url.startswith("file:///")
    if ref == "short":
        ref = git(tagged, "rev-parse", "--short=7", "v1")

    assert render_n(url, *(["--ref", ref] if ref else [])) == n


def test_file_url_leaves_no_clone_behind(tagged: Path, clone_dir: Path) -> None:
    assert render_n(tagged.as_uri(), "--ref", "v1") == 1

    assert list(clone_dir.iterdir()) == []


def test_file_url_fileset_matches_the_local_one(tagged: Path, clone_dir: Path) -> None:
    with open_repository(tagged.as_uri()) as remote, open_repository(str(tagged)) as local:
        from_url = fileset_from_commit(remote, resolve(remote, "v2"))
        from_path = fileset_from_commit(local, resolve(local, "v2"))

    assert dict(from_url.files) == dict(from_path.files)
    assert dict(from_url.oids) == dict(from_path.oids)


def test_file_url_unknown_ref_and_missing_repo(
    tagged: Path, tmp_path: Path, clone_dir: Path
) -> None:
    bad_ref = CliRunner().invoke(
        main, ["render", "staging", "payments", "--repo", tagged.as_uri(), "--ref", "nosuch"]
    )
    assert bad_ref.exit_code == 2, bad_ref.output
    assert "'nosuch'" in bad_ref.output

    missing = CliRunner().invoke(
        main, ["validate", "--repo", (tmp_path / "absent").as_uri(), "--ref", "main"]
    )
    assert missing.exit_code == 2, missing.output
    assert "Traceback" not in missing.output
    assert "absent" in missing.output
