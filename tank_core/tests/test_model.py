from __future__ import annotations

import uuid

import attrs
import click
import pytest

from tank import errors
from tank.model import (
    ADMIN_FILTER_KEYS,
    FILTER_KEYS,
    SORT_KEYS,
    Context,
    Image,
    ListQuery,
    Member,
    Status,
    Visibility,
    check_transition,
)


def test_defaults_and_round_trip() -> None:
    image = Image(name="cirros", disk_format="qcow2", container_format="bare")
    assert uuid.UUID(image.id)
    assert image.status is Status.QUEUED
    again = Image.from_dict(image.to_dict())
    assert again == image


def test_client_chosen_id_is_canonicalised() -> None:
    image = Image(id="A0B1C2D3-E4F5-4789-ABCD-0123456789AB")
    assert image.id == "a0b1c2d3-e4f5-4789-abcd-0123456789ab"


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", "not-a-uuid"),
        ("disk_format", "floppy"),
        ("container_format", "zip"),
        ("size", -1),
        ("size", "12abc"),
        ("min_ram", "lots"),
        ("min_disk", -5),
        ("visibility", "everyone"),
        ("os_hidden", "maybe"),
        ("tags", "not-a-list"),
        ("tags", ["ok", "bad\x01"]),
        ("locations", [{"url": "", "store": "fs"}]),
        ("locations", [{"url": "file:///x", "colour": "red"}]),
        ("protected", "2"),
        ("status", "frozen"),
        ("checksum", "xyz"),
        ("os_hash_value", "xyz"),
        ("os_hash_algo", "sha 256"),
        ("name", "x" * 256),
        ("name", "bad \ud800 surrogate"),  # valid JSON ("\\ud800"), not valid Unicode
        ("owner", "\udfff"),
        ("properties", {"k": "\ud800"}),
        ("properties", {"": "v"}),
        ("properties", ["a"]),
        ("created_at", "yesterday"),
    ],
)
def test_invalid_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(errors.ValidationError) as info:
        Image(**{field: value})
    assert info.value.field.startswith(field)
    assert str(info.value).startswith(field)
    assert info.value.http_status == 400


def test_strings_are_parsed() -> None:
    image = Image(size="42", min_ram="512", visibility="public", protected="false")
    assert (image.size, image.min_ram, image.is_public, image.protected) == (42, 512, True, False)
    assert image.visibility is Visibility.PUBLIC


@pytest.mark.parametrize("fmt", ["aki", "ari", "ami"])
def test_amazon_formats_must_match(fmt: str) -> None:
    Image(disk_format=fmt, container_format=fmt)
    with pytest.raises(errors.ValidationError, match="both must be the same"):
        Image(disk_format=fmt, container_format="bare")
    with pytest.raises(errors.ValidationError):
        Image(disk_format="raw", container_format=fmt)


def test_properties_are_strings() -> None:
    image = Image(properties={"arch": "x86_64", "cores": 4, "secure": True})
    assert image.properties == {"arch": "x86_64", "cores": "4", "secure": "true"}


@pytest.mark.parametrize(
    "old,new",
    [
        (Status.QUEUED, Status.SAVING),
        (Status.SAVING, Status.ACTIVE),
        (Status.SAVING, Status.KILLED),
        (Status.QUEUED, Status.ACTIVE),
        (Status.ACTIVE, Status.DELETED),
        (Status.ACTIVE, Status.PENDING_DELETE),
        (Status.KILLED, Status.DELETED),
        (Status.PENDING_DELETE, Status.DELETED),  # scrubbed (claimed)
        (Status.PENDING_DELETE, Status.ACTIVE),  # restored
        (Status.DELETED, Status.PENDING_DELETE),  # a scrub whose store failed gives it back
    ],
)
def test_allowed_transitions(old: Status, new: Status) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(
    "old,new",
    [
        (Status.ACTIVE, Status.SAVING),
        (Status.ACTIVE, Status.QUEUED),
        (Status.KILLED, Status.ACTIVE),
        (Status.DELETED, Status.ACTIVE),
        (Status.SAVING, Status.SAVING),
        (Status.DEACTIVATED, Status.QUEUED),
        (Status.UPLOADING, Status.ACTIVE),
        (Status.PENDING_DELETE, Status.QUEUED),
        (Status.PENDING_DELETE, Status.DEACTIVATED),
        (Status.DELETED, Status.DEACTIVATED),
    ],
)
def test_forbidden_transitions(old: Status, new: Status) -> None:
    with pytest.raises(errors.InvalidTransition):
        check_transition(old, new)


def test_update_merges_or_purges_properties() -> None:
    image = Image(properties={"a": "1", "b": "2"})
    merged = image.update({"properties": {"b": "3"}})
    assert merged.properties == {"a": "1", "b": "3"}
    purged = image.update({"properties": {"b": "3"}}, purge_props=True)
    assert purged.properties == {"b": "3"}
    assert image.update({"name": "x"}, purge_props=True).properties == {}
    assert merged.updated_at >= image.updated_at


def test_update_checks_transition_and_fields() -> None:
    active = attrs.evolve(Image(), status=Status.ACTIVE)
    with pytest.raises(errors.InvalidTransition):
        active.update({"status": "saving"})
    with pytest.raises(errors.ValidationError, match="unknown image field"):
        active.update({"colour": "red"})


def test_context_may_modify_its_own_images() -> None:
    private = Image(owner="t1")
    public = Image(owner="t1", visibility="public")
    assert Context.admin().can_modify(private)
    assert not Context().can_modify(private)
    assert Context(tenant="t1").can_modify(private)
    assert not Context(tenant="t2").can_modify(public)


def test_member_validation() -> None:
    image_id = str(uuid.uuid4())
    assert Member(image_id=image_id, member="t2", can_share="true").can_share is True
    with pytest.raises(errors.ValidationError):
        Member(image_id=image_id, member="  ")


def test_list_query_validation() -> None:
    query = ListQuery(filters={"size_min": "10", "property-arch": "x86"}, limit="5000")
    assert query.filters["size_min"] == 10
    assert query.limit == 1000
    with pytest.raises(errors.ValidationError, match="sort_key"):
        ListQuery.of(sort_key="owner; drop table")
    with pytest.raises(errors.ValidationError, match="sort_dir"):
        ListQuery.of(sort_dir="up")
    with pytest.raises(errors.ValidationError, match="marker"):
        ListQuery(marker="nope")
    with pytest.raises(errors.ValidationError, match="colour"):
        ListQuery(filters={"colour": "red"})


#: A valid value for each filter; the test below fails when a filter is added without one.
FILTER_SAMPLES = {
    "name": "cirros",
    "disk_format": "qcow2",
    "container_format": "bare",
    "status": "active",
    "size_min": "1",
    "size_max": "2",
    "is_public": "true",
    "deleted": "false",
    "id": "6f0a2c1e-0000-4000-8000-000000000001",
    "owner": "tenant",
    "checksum": "0" * 32,
    "os_hash_value": "ab" * 32,
    "visibility": "community",
    "member_status": "accepted",
    "tags": "linux",
    "os_hidden": "true",
    "protected": "false",
    "created_at": "gt:2024-01-01T00:00:00Z",
    "updated_at": "2024-01-01T00:00:00+00:00",
}


def accepted_filter(key: str) -> bool:
    try:
        ListQuery(filters={key: FILTER_SAMPLES.get(key, "1")})
    except errors.ValidationError as exc:
        assert "unknown filter" in str(exc), exc  # a listed filter's sample must parse
        return False
    return True


def test_filter_keys_are_exactly_the_filters_accepted() -> None:
    """Every accepted filter is listed in FILTER_KEYS and every listed one is accepted,
    by the model (registries, the registry API) and by ``tank index`` alike."""
    from tank.cli.fields import list_filters

    assert set(FILTER_SAMPLES) == set(FILTER_KEYS)
    candidates = (
        {field.name for field in attrs.fields(Image)}
        | set(SORT_KEYS)
        | set(FILTER_KEYS)
        | {"size", "owner", "members", "properties", "limit", "marker"}
    )
    assert {key for key in candidates if accepted_filter(key)} == FILTER_KEYS
    assert ADMIN_FILTER_KEYS <= FILTER_KEYS
    assert accepted_filter("property-colour")
    with pytest.raises(errors.ValidationError, match="needs a property name"):
        ListQuery(filters={"property-": "x"})
    for key in candidates:
        if key in FILTER_KEYS:
            sample = FILTER_SAMPLES[key]
            expected = [sample] if key == "tags" else sample  # tags repeat: a list
            assert list_filters([f"{key}={sample}"]) == {key: expected}
        else:
            with pytest.raises(click.UsageError, match="unknown filter"):
                list_filters([f"{key}=1"])
