"""gitconf.hooks.providers on the hosts' real push payloads (vectors/)."""

from __future__ import annotations

from typing import Any

import pytest

from gitconf.hooks.providers import PayloadError, Push, decide, parse
from tests.hooks.payloads import vector

ZERO = "0" * 40


@pytest.mark.parametrize(
    "provider, event, name, expected",
    [
        (
            "github",
            "push",
            "github_push_new_branch.json",
            [Push("push", "refs/heads/master", "6113728f27ae82c7b1a177c8d03f9e96e0adf246")],
        ),
        (
            "github",
            "push",
            "github_push_tag_delete.json",
            [Push("push", "refs/tags/simple-tag", ZERO, deleted=True)],
        ),
        (
            "github",
            "push",
            "signed_bodies/goscm_github_push.json",
            [Push("push", "refs/heads/master", "199eddf46df50de8d02e99bf1c5fdb4101338224")],
        ),
        (
            "gitlab",
            "Push Hook",
            "gitlab_push.json",
            [Push("push", "refs/heads/master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")],
        ),
        (
            "gitlab",
            "Tag Push Hook",
            "gitlab_tag_push.json",
            [Push("push", "refs/tags/v1.0.0", "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")],
        ),
        (
            "gitlab",
            "System Hook",
            "gitlab_push.json",
            [Push("push", "refs/heads/master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")],
        ),
        (
            "gitea",
            "push",
            "gitea_push.json",
            [Push("push", "refs/heads/main", "29be01c073851cf0db0c6a466e396b725a670453")],
        ),
        (
            "gitea",
            "push",
            "gitea_push_branch_create.json",
            [Push("push", "refs/heads/fdsafdsa", "28c3613ae62640216bea5e7dc71aa65356e4298b")],
        ),
        (
            "bitbucket",
            "repo:push",
            "bitbucket_cloud_push.json",
            [Push("push", "refs/heads/main", "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277")],
        ),
        (
            "bitbucket",
            "repo:refs_changed",
            "bitbucket_dc_push.json",
            [Push("push", "refs/heads/renovate-all", "76797d54bca87db6d1e3e82ee40622c7908aa514")],
        ),
        (
            "bitbucket",
            "repo:refs_changed",
            "signed_bodies/goscm_bitbucket_server_push.json",
            [Push("push", "refs/heads/master", "823b2230a56056231c9425d63758fa87078a66b4")],
        ),
        (
            "gitea",
            "pull_request",
            "signed_bodies/goscm_gitea_pull_request_edited.json",
            [Push("pull_request")],
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_real_payloads(provider: str, event: str, name: str, expected: list[Push]) -> None:
    assert parse(provider, event, vector(name)) == expected


def test_bitbucket_cloud_names_the_branch_without_refs_heads() -> None:
    doc = vector("bitbucket_cloud_push.json")
    change = doc["push"]["changes"][0]
    assert change["new"]["name"] == "main"
    change["new"]["type"] = "tag"
    assert parse("bitbucket", "repo:push", doc)[0].ref == "refs/tags/main"
    change["new"] = None  # deleted: the ref comes from old
    assert parse("bitbucket", "repo:push", doc) == [Push("push", "refs/heads/main", None, True)]


def test_bitbucket_data_center_delete_and_ref_id_fallback() -> None:
    doc = vector("bitbucket_dc_push.json")
    change = doc["changes"][0]
    change["type"] = "DELETE"
    change["toHash"] = ZERO
    del change["ref"]
    assert parse("bitbucket", "repo:refs_changed", doc) == [
        Push("push", "refs/heads/renovate-all", ZERO, True)
    ]


def test_a_bitbucket_push_of_several_refs_gives_one_push_each() -> None:
    doc = vector("bitbucket_dc_push.json")
    other = dict(doc["changes"][0], ref={"id": "refs/heads/main"}, toHash="abc")
    doc["changes"].append(other)
    pushes = parse("bitbucket", "repo:refs_changed", doc)
    assert [p.ref for p in pushes] == ["refs/heads/renovate-all", "refs/heads/main"]
    assert decide(pushes, "main") == (pushes[1], "")


def test_gitlab_branch_deletion() -> None:
    doc = vector("gitlab_push.json")
    doc.update(after=ZERO, checkout_sha=None)
    assert parse("gitlab", "Push Hook", doc) == [Push("push", "refs/heads/master", ZERO, True)]


@pytest.mark.parametrize(
    "provider, event, expected_kind",
    [
        ("github", "ping", "ping"),
        ("github", "issues", "issues"),
        ("github", None, "unnamed"),
        ("gitlab", "Merge Request Hook", "Merge Request Hook"),
        ("gitea", "create", "create"),
        ("bitbucket", "diagnostics:ping", "ping"),
        ("bitbucket", "pr:opened", "pr:opened"),
    ],
)
def test_other_events(provider: str, event: str | None, expected_kind: str) -> None:
    assert parse(provider, event, {"zen": "Keep it logically awesome."}) == [Push(expected_kind)]


@pytest.mark.parametrize(
    "doc, expected",
    [
        (
            {"ref": "refs/heads/main", "before": "a", "after": "b"},
            Push("push", "refs/heads/main", "b"),
        ),
        ({"ref": "main", "after": "b"}, Push("push", "refs/heads/main", "b")),
        ({"ref": "refs/tags/v1"}, Push("push", "refs/tags/v1")),
        ({"ref": "refs/heads/main", "after": ZERO}, Push("push", "refs/heads/main", ZERO, True)),
        ({}, Push("push")),
    ],
)
def test_generic(doc: dict[str, Any], expected: Push) -> None:
    assert parse("generic", None, doc) == [expected]


@pytest.mark.parametrize(
    "provider, event, doc, message",
    [
        ("github", "push", {"after": "b"}, "ref: missing"),
        ("github", "push", {"ref": 5}, "ref: 5 is not a string"),
        ("gitlab", "Push Hook", {"ref": ["x"]}, r"ref: \['x'\] is not a string"),
        ("gitea", "push", {"ref": "refs/heads/main", "after": 1}, "after: 1 is not a string"),
        ("bitbucket", "repo:push", {"push": {}}, "push.changes: missing"),
        ("bitbucket", "repo:push", {"push": {"changes": [{}]}}, r"push.changes\[0\].new and"),
        ("bitbucket", "repo:push", {"push": {"changes": [3]}}, "not an object"),
        ("bitbucket", "repo:refs_changed", {"changes": [{}]}, r"changes\[0\].refId: missing"),
        ("bitbucket", "repo:refs_changed", {}, "changes: missing"),
        ("generic", None, {"ref": 1}, "ref: 1 is not a string"),
    ],
)
def test_malformed_pushes(provider: str, event: str, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse(provider, event, doc)


@pytest.mark.parametrize(
    "pushes, expected",
    [
        ([Push("push", "refs/heads/main", "b")], (Push("push", "refs/heads/main", "b"), "")),
        ([Push("push")], (Push("push"), "")),
        (
            [Push("push", "refs/heads/dev", "b")],
            (None, "refs/heads/dev is not the tracked branch; gitconf tracks refs/heads/main"),
        ),
        (
            [Push("push", "refs/tags/main", "b")],
            (None, "refs/tags/main is a tag; gitconf tracks refs/heads/main"),
        ),
        (
            [Push("push", "refs/heads/main", ZERO, True)],
            (None, "refs/heads/main was deleted; the last good revision keeps serving"),
        ),
        ([Push("issues")], (None, "'issues' events are not pushes")),
        ([], (None, "the event updates no ref")),
        (
            [Push("push", "refs/heads/dev"), Push("push", "refs/tags/v1")],
            (
                None,
                "refs/heads/dev is not the tracked branch; gitconf tracks refs/heads/main; "
                "refs/tags/v1 is a tag; gitconf tracks refs/heads/main",
            ),
        ),
    ],
)
def test_decide(pushes: list[Push], expected: tuple[Push | None, str]) -> None:
    assert decide(pushes, "main") == expected


def test_a_branch_named_like_a_prefix_is_not_the_branch() -> None:
    assert decide([Push("push", "refs/heads/main2")], "main")[0] is None
    assert decide([Push("push", "refs/heads/feature/main")], "main")[0] is None
    assert decide([Push("push", "refs/heads/release/1")], "release/1")[0] is not None


def test_a_push_to_a_label_branch_polls_too() -> None:
    labels = ["release/*"]
    moved = Push("push", "refs/heads/release/1", "b" * 40)
    assert decide([moved], "main", labels) == (moved, "")
    gone = Push("push", "refs/heads/release/1", None, deleted=True)
    assert decide([gone], "main", labels) == (gone, "")  # the mirror drops it: poll
    assert decide([Push("push", "refs/heads/dev")], "main", labels)[0] is None
    assert decide([Push("push", "refs/tags/release/1")], "main", labels)[0] is None
    assert decide([moved], "main")[0] is None  # without spring.labels, as before
    # The tracked branch's own deletion is still ignored, whatever the globs.
    main_gone = Push("push", "refs/heads/main", None, deleted=True)
    assert decide([main_gone], "main", ["*"])[0] is None
