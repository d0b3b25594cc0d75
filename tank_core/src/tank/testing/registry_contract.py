"""The registry contract suite: what every :class:`tank.registry.Registry` must do.

A registry's test module subclasses :class:`RegistryContract` and supplies one fixture::

    from tank.testing import RegistryContract

    class TestMyRegistryContract(RegistryContract):
        @pytest.fixture
        def registry(self, tmp_path):
            registry = MyRegistry(MyRegistry.Config(...), data_dir=tmp_path)
            yield registry
            registry.close()

The tests use only the public ``Registry`` API, so the same suite runs in-process and
through a remote registry client. Every image a test creates carries a property unique
to that test (:data:`RUN_PROPERTY`) and every listing filters on it, and tenant and
member names are unique per test too: a registry holding other data (a shared test
server) passes as well as an empty one.

The class name does not start with ``Test``, so pytest collects it only through
subclasses.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tank import errors
from tank.model import (
    SORT_KEYS,
    Context,
    Image,
    ListQuery,
    Location,
    Member,
    MemberStatus,
    Status,
    Visibility,
)
from tank.quotas import (
    COPYING_PROPERTY,
    COUNT_TOTAL,
    COUNT_UPLOADING,
    SIZE_TOTAL,
    STAGE_TOTAL,
    QuotaCheck,
)
from tank.registry import Registry

ADMIN = Context.admin()
#: Property set on every image the suite creates, with a value unique to the test.
RUN_PROPERTY = "tank_contract_run"
BASE_TIME = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def minutes(n: int) -> dt.datetime:
    return BASE_TIME + dt.timedelta(minutes=n)


def run_concurrently(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Start ``work(i)`` in ``count`` threads at once; return results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected for the test to inspect
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


class RegistryContract:
    """Mix-in test class. Subclass it as ``Test<Registry>Contract`` and supply ``registry``."""

    #: Threads racing in the concurrency tests.
    racers: int = 8

    # --- fixtures a registry supplies -------------------------------------------------

    @pytest.fixture
    def registry(self) -> Registry:
        raise NotImplementedError("override the `registry` fixture to return a fresh registry")

    # --- per-test names and helpers ----------------------------------------------------

    @pytest.fixture(autouse=True)
    def _contract_names(self) -> Iterator[None]:
        self.run = uuid.uuid4().hex[:12]
        self.owner = Context(tenant=f"owner-{self.run}")
        self.other = Context(tenant=f"other-{self.run}")
        self.member = Context(tenant=f"member-{self.run}")
        self.anonymous = Context()  # authenticated as nobody: sees public images only
        yield

    def context(self, who: str) -> Context:
        return ADMIN if who == "admin" else getattr(self, who)

    def image(self, **fields: Any) -> Image:
        """An image of this test, owned by ``self.owner`` unless ``owner`` is given."""
        properties = {RUN_PROPERTY: self.run, **fields.pop("properties", {})}
        fields.setdefault("owner", self.owner.tenant)
        return Image(properties=properties, **fields)

    def create(self, registry: Registry, **fields: Any) -> Image:
        return registry.create(self.image(**fields))

    def listing(self, registry: Registry, context: Context = ADMIN, **query: Any) -> list[Image]:
        filters = {f"property-{RUN_PROPERTY}": self.run, **query.pop("filters", {})}
        if "sort" in query:
            return registry.list(ListQuery(filters=filters, **query), context=context)
        return registry.list(ListQuery.of(filters=filters, **query), context=context)

    def ids(self, registry: Registry, context: Context = ADMIN, **query: Any) -> list[str]:
        return [image.id for image in self.listing(registry, context, **query)]

    def all_pages(self, registry: Registry, limit: int, **query: Any) -> list[str]:
        """Every id of a listing, fetched ``limit`` at a time through markers."""
        out: list[str] = []
        marker = None
        for _ in range(100):
            page = self.ids(registry, limit=limit, marker=marker, **query)
            out.extend(page)
            if len(page) < limit:
                return out
            marker = page[-1]
        raise AssertionError("pagination does not end")

    @staticmethod
    def own_properties(image: Image) -> dict[str, str]:
        return {k: v for k, v in image.properties.items() if k != RUN_PROPERTY}

    # --- create and get ------------------------------------------------------------

    def test_create_then_get_returns_every_field(self, registry: Registry) -> None:
        image = self.image(
            name="cirros 0.6",
            disk_format="qcow2",
            container_format="bare",
            size=12_345_678_901,
            checksum="0" * 31 + "1",
            os_hash_algo="sha256",
            os_hash_value="ab" * 32,
            status=Status.ACTIVE,
            visibility=Visibility.PUBLIC,
            min_ram=512,
            min_disk=2,
            protected=True,
            properties={"os": "linux", "empty": "", "ünï": "cödé ✓", "long": "x" * 65535},
            locations=[
                Location(url="file:///var/lib/tank/images/x", store="file"),
                Location(url="rbd://f/p/x/snap", store="rbd", owned=False, metadata={"a": [1]}),
            ],
            tags=["b", "a"],
            os_hidden=True,
            virtual_size=5,
            created_at=minutes(1),
            updated_at=minutes(2),
        )
        created = registry.create(image)
        assert created == image
        got = registry.get(image.id, context=ADMIN)
        assert got == image
        assert got.status is Status.ACTIVE
        assert got.created_at.tzinfo is not None and got.created_at == minutes(1)

    def test_create_with_defaults(self, registry: Registry) -> None:
        image = registry.create(Image())
        got = registry.get(image.id, context=ADMIN)
        assert got == image
        assert got.status is Status.QUEUED and got.properties == {}
        assert (got.name, got.size, got.owner, got.deleted) == (None, None, None, False)

    def test_create_duplicate_id(self, registry: Registry) -> None:
        image = self.create(registry, name="first")
        with pytest.raises(errors.Duplicate):
            registry.create(self.image(id=image.id, name="second"))
        assert registry.get(image.id, context=ADMIN).name == "first"

    def test_ids_of_deleted_images_are_not_reused(self, registry: Registry) -> None:
        image = self.create(registry)
        registry.delete(image.id, context=ADMIN)
        with pytest.raises(errors.Duplicate):
            registry.create(self.image(id=image.id))

    def test_concurrent_creates_of_one_id_exactly_one_wins(self, registry: Registry) -> None:
        image_id = str(uuid.uuid4())
        results = run_concurrently(
            self.racers, lambda i: registry.create(self.image(id=image_id, name=f"racer{i}"))
        )
        winners = [r for r in results if isinstance(r, Image)]
        losers = [r for r in results if isinstance(r, errors.Duplicate)]
        assert len(winners) == 1, results
        assert len(losers) == self.racers - 1, results
        assert registry.get(image_id, context=ADMIN).name == winners[0].name

    def test_concurrent_creates_all_succeed(self, registry: Registry) -> None:
        def work(i: int) -> list[str]:
            return [self.create(registry, name=f"t{i}-{n}").id for n in range(10)]

        results = run_concurrently(4, work)
        assert all(isinstance(r, list) for r in results), results
        assert sorted(self.ids(registry, limit=100)) == sorted(i for ids in results for i in ids)

    def test_get_missing(self, registry: Registry) -> None:
        with pytest.raises(errors.NotFound):
            registry.get(str(uuid.uuid4()), context=ADMIN)
        with pytest.raises(errors.NotFound):
            registry.get("not-a-uuid", context=ADMIN)

    @pytest.mark.parametrize(
        "who,sees",
        [
            ("admin", True),
            ("owner", True),
            ("member", True),
            ("other", False),
            ("anonymous", False),
        ],
    )
    def test_visibility_of_a_private_image(self, registry: Registry, who: str, sees: bool) -> None:
        image = self.create(registry)
        registry.add_member(image.id, self.member.tenant, context=self.owner)  # type: ignore[arg-type]
        context = self.context(who)
        if sees:
            assert registry.get(image.id, context=context).id == image.id
            assert self.ids(registry, context) == [image.id]
        else:
            with pytest.raises(errors.NotFound):
                registry.get(image.id, context=context)
            assert self.ids(registry, context) == []

    @pytest.mark.parametrize("who", ["admin", "owner", "other", "anonymous"])
    def test_public_images_are_visible_to_all(self, registry: Registry, who: str) -> None:
        image = self.create(registry, visibility=Visibility.PUBLIC)
        assert registry.get(image.id, context=self.context(who)).id == image.id
        assert self.ids(registry, self.context(who)) == [image.id]

    def test_deleted_images_are_visible_to_admins_only(self, registry: Registry) -> None:
        image = self.create(registry, visibility=Visibility.PUBLIC)
        registry.delete(image.id, context=self.owner)
        assert registry.get(image.id, context=ADMIN).deleted
        for context in (self.owner, self.other):
            with pytest.raises(errors.NotFound):
                registry.get(image.id, context=context)

    # --- update --------------------------------------------------------------------

    def test_update_changes_fields(self, registry: Registry) -> None:
        image = self.create(registry, name="old", updated_at=minutes(0))
        updated = registry.update(
            image.id,
            {"name": "new", "min_ram": 256, "visibility": Visibility.PUBLIC},
            context=self.owner,
        )
        assert (updated.name, updated.min_ram, updated.is_public) == ("new", 256, True)
        assert updated.updated_at > image.updated_at
        assert updated.created_at == image.created_at
        assert registry.get(image.id, context=ADMIN) == updated

    def test_update_merges_properties(self, registry: Registry) -> None:
        image = self.create(registry, properties={"a": "1", "b": "2"})
        updated = registry.update(
            image.id, {"properties": {"b": "20", "c": "3"}}, context=self.owner
        )
        assert self.own_properties(updated) == {"a": "1", "b": "20", "c": "3"}
        assert registry.get(image.id, context=ADMIN).properties == updated.properties

    def test_update_purge_props_replaces_properties(self, registry: Registry) -> None:
        image = self.create(registry, properties={"a": "1", "b": "2"})
        updated = registry.update(
            image.id, {"properties": {"b": "20", "c": "3"}}, context=self.owner, purge_props=True
        )
        assert updated.properties == {"b": "20", "c": "3"}
        assert registry.get(image.id, context=ADMIN).properties == {"b": "20", "c": "3"}

    def test_update_purge_props_without_properties_clears_them(self, registry: Registry) -> None:
        image = self.create(registry, properties={"a": "1"})
        updated = registry.update(image.id, {"name": "n"}, context=self.owner, purge_props=True)
        assert updated.properties == {}
        assert registry.get(image.id, context=ADMIN).properties == {}

    def test_update_without_purge_keeps_properties(self, registry: Registry) -> None:
        image = self.create(registry, properties={"a": "1"})
        updated = registry.update(image.id, {"name": "n"}, context=self.owner)
        assert self.own_properties(updated) == {"a": "1"}

    def test_status_changes_follow_the_lifecycle(self, registry: Registry) -> None:
        image = self.create(registry)
        assert registry.update(image.id, {"status": "saving"}, context=self.owner).status is (
            Status.SAVING
        )
        active = registry.update(image.id, {"status": Status.ACTIVE, "size": 3}, context=ADMIN)
        assert active.status is Status.ACTIVE and active.size == 3
        for bad in (Status.SAVING, Status.QUEUED, Status.KILLED):
            with pytest.raises(errors.InvalidTransition):
                registry.update(image.id, {"status": bad, "size": 4}, context=ADMIN)
        assert registry.get(image.id, context=ADMIN) == active

    def test_expected_status_makes_updates_conditional(self, registry: Registry) -> None:
        image = self.create(registry)
        with pytest.raises(errors.Conflict):
            registry.update(
                image.id,
                {"status": Status.ACTIVE, "name": "x"},
                context=ADMIN,
                expected_status=Status.SAVING,
            )
        assert registry.get(image.id, context=ADMIN) == image
        saving = registry.update(
            image.id, {"status": Status.SAVING}, context=ADMIN, expected_status=Status.QUEUED
        )
        assert saving.status is Status.SAVING

    def test_concurrent_conditional_updates_exactly_one_wins(self, registry: Registry) -> None:
        images = [self.create(registry) for _ in range(3)]
        run_concurrently(self.racers, lambda i: registry.get(images[0].id, context=ADMIN))
        for image in images:  # a few rounds: the race window of a broken registry is small

            def claim(i: int, image: Image = image) -> Image:
                return registry.update(
                    image.id,
                    {"status": Status.SAVING, "name": f"racer{i}"},
                    context=self.owner,
                    expected_status=Status.QUEUED,
                )

            results = run_concurrently(self.racers, claim)
            winners = [r for r in results if isinstance(r, Image)]
            assert len(winners) == 1, results
            assert all(isinstance(r, errors.Conflict) for r in results if r is not winners[0])
            assert registry.get(image.id, context=ADMIN).name == winners[0].name

    def test_bad_updates_change_nothing(self, registry: Registry) -> None:
        image = self.create(registry, name="keep")
        bad = (
            {"disk_format": "floppy"},
            {"min_ram": -1},
            {"colour": "red"},
            {"id": str(uuid.uuid4())},
        )
        for changes in bad:
            with pytest.raises(errors.ValidationError):
                registry.update(image.id, {"name": "changed", **changes}, context=self.owner)
        assert registry.get(image.id, context=ADMIN) == image

    def test_update_needs_visibility_then_ownership(self, registry: Registry) -> None:
        private = self.create(registry)
        public = self.create(registry, visibility=Visibility.PUBLIC)
        registry.add_member(private.id, self.member.tenant, context=self.owner)  # type: ignore[arg-type]
        with pytest.raises(errors.NotFound):
            registry.update(private.id, {"name": "x"}, context=self.other)
        with pytest.raises(errors.NotFound):
            registry.update(str(uuid.uuid4()), {"name": "x"}, context=ADMIN)
        for image_id, context in ((public.id, self.other), (private.id, self.member)):
            with pytest.raises(errors.Forbidden):
                registry.update(image_id, {"name": "x"}, context=context)
        assert registry.get(private.id, context=ADMIN) == private
        assert registry.get(public.id, context=ADMIN) == public

    # --- delete --------------------------------------------------------------------

    def test_delete_marks_the_image_deleted(self, registry: Registry) -> None:
        image = self.create(registry, status=Status.ACTIVE)
        deleted = registry.delete(image.id, context=self.owner)
        assert deleted.status is Status.DELETED and deleted.deleted
        assert deleted.deleted_at is not None
        assert registry.get(image.id, context=ADMIN) == deleted
        assert self.ids(registry, ADMIN) == []
        assert self.ids(registry, self.owner) == []

    def test_delete_removes_members(self, registry: Registry) -> None:
        image = self.create(registry)
        registry.add_member(image.id, self.member.tenant, context=self.owner)  # type: ignore[arg-type]
        registry.delete(image.id, context=self.owner)
        assert registry.shared_with(self.member.tenant, context=ADMIN) == []  # type: ignore[arg-type]
        with pytest.raises(errors.NotFound):
            registry.get(image.id, context=self.member)

    def test_delete_twice_is_not_found(self, registry: Registry) -> None:
        image = self.create(registry)
        registry.delete(image.id, context=ADMIN)
        with pytest.raises(errors.NotFound):
            registry.delete(image.id, context=ADMIN)

    def test_delete_needs_visibility_then_ownership(self, registry: Registry) -> None:
        private = self.create(registry)
        public = self.create(registry, visibility=Visibility.PUBLIC)
        with pytest.raises(errors.NotFound):
            registry.delete(private.id, context=self.other)
        with pytest.raises(errors.NotFound):
            registry.delete(str(uuid.uuid4()), context=ADMIN)
        with pytest.raises(errors.Forbidden):
            registry.delete(public.id, context=self.other)
        assert not registry.get(public.id, context=ADMIN).deleted
        assert not registry.get(private.id, context=ADMIN).deleted

    # --- listing: visibility and filters ------------------------------------------------

    def test_default_listing_shows_everything_visible(self, registry: Registry) -> None:
        mine = self.create(registry, name="mine")
        mine_public = self.create(registry, name="mine-public", visibility=Visibility.PUBLIC)
        theirs_public = self.create(
            registry, name="theirs-public", visibility=Visibility.PUBLIC, owner="x"
        )
        theirs_shared = self.create(registry, name="theirs-shared", owner=self.other.tenant)
        theirs = self.create(registry, name="theirs", owner=self.other.tenant)
        registry.add_member(theirs_shared.id, self.owner.tenant, context=self.other)  # type: ignore[arg-type]

        def names(context: Context) -> set[str | None]:
            return {i.name for i in self.listing(registry, context)}

        public = {mine_public.name, theirs_public.name}
        assert names(self.owner) == public | {mine.name, theirs_shared.name}
        assert names(self.other) == public | {theirs_shared.name, theirs.name}
        assert names(self.anonymous) == public
        assert len(names(ADMIN)) == 5

    @pytest.fixture
    def catalogue(self, registry: Registry) -> dict[str, Image]:
        """Five images differing in every filterable field, by label."""
        specs: dict[str, dict[str, Any]] = {
            "a": dict(name="alpha", disk_format="raw", container_format="bare", size=10,
                      status=Status.ACTIVE, visibility=Visibility.PUBLIC),
            "b": dict(name="bravo", disk_format="qcow2", container_format="bare", size=20,
                      status=Status.QUEUED),
            "c": dict(name="alpha", disk_format="qcow2", container_format="ovf", size=30,
                      status=Status.KILLED, properties={"os": "linux", "arch": "x86_64"}),
            "d": dict(name="charlie", disk_format="ami", container_format="ami",
                      status=Status.SAVING, visibility=Visibility.PUBLIC,
                      properties={"os": "windows"}),
            "e": dict(disk_format="vmdk", container_format="ovf", size=0,
                      status=Status.ACTIVE, properties={"os": "linux", "arch": "arm64"}),
        }  # fmt: skip
        out = {}
        for label, spec in specs.items():
            spec["properties"] = {**spec.get("properties", {}), "label": label}
            out[label] = self.create(registry, **spec)
        return out

    @pytest.mark.parametrize(
        "filters,expected",
        [
            ({}, "abcde"),
            ({"name": "alpha"}, "ac"),
            ({"name": "alph"}, ""),
            ({"disk_format": "qcow2"}, "bc"),
            ({"container_format": "ovf"}, "ce"),
            ({"status": "killed"}, "c"),
            ({"status": Status.ACTIVE}, "ae"),
            ({"size_min": 20}, "bc"),
            ({"size_max": 20}, "abe"),
            ({"size_min": 10, "size_max": 20}, "ab"),
            ({"size_min": 0}, "abce"),
            ({"is_public": True}, "ad"),
            ({"is_public": "false"}, "bce"),
            ({"is_public": None}, "abcde"),
            ({"property-os": "linux"}, "ce"),
            ({"property-os": "linux", "property-arch": "arm64"}, "e"),
            ({"property-os": "lin"}, ""),
            ({"property-nothing": "linux"}, ""),
            ({"name": "alpha", "disk_format": "qcow2", "property-os": "linux"}, "c"),
        ],
    )
    def test_filters(
        self,
        registry: Registry,
        catalogue: dict[str, Image],
        filters: dict[str, Any],
        expected: str,
    ) -> None:
        found = self.listing(registry, filters=filters)
        assert "".join(sorted(i.properties["label"] for i in found)) == expected

    def test_filters_apply_within_visibility(
        self, registry: Registry, catalogue: dict[str, Image]
    ) -> None:
        found = self.listing(registry, self.other, filters={"disk_format": "qcow2"})
        assert found == []
        found = self.listing(registry, self.other, filters={"is_public": True})
        assert {i.properties["label"] for i in found} == {"a", "d"}

    def test_listings_include_properties(
        self, registry: Registry, catalogue: dict[str, Image]
    ) -> None:
        assert {i.id: i for i in self.listing(registry)} == {i.id: i for i in catalogue.values()}

    def test_deleted_filter_is_for_admins(self, registry: Registry) -> None:
        kept = self.create(registry, visibility=Visibility.PUBLIC)
        gone = self.create(registry, visibility=Visibility.PUBLIC)
        registry.delete(gone.id, context=ADMIN)
        assert self.ids(registry, ADMIN) == [kept.id]
        assert set(self.ids(registry, ADMIN, filters={"deleted": True})) == {kept.id, gone.id}
        assert self.ids(registry, self.owner, filters={"deleted": True}) == [kept.id]
        assert self.ids(registry, self.other, filters={"deleted": True}) == [kept.id]

    # --- delayed delete (what the scrubber relies on) ---------------------------------

    def pending_delete(self, registry: Registry, **fields: Any) -> Image:
        """An active image a delayed delete marked pending_delete, as the service does."""
        image = self.create(
            registry,
            status=Status.ACTIVE,
            locations=[Location(url=f"file:///x/{self.run}", store="file")],
            **fields,
        )
        return registry.update(
            image.id,
            {"status": Status.PENDING_DELETE, "deleted": True, "deleted_at": minutes(5)},
            context=self.owner,
            expected_status=Status.ACTIVE,
        )

    def test_pending_delete_images_are_listed_for_admins_only(self, registry: Registry) -> None:
        pending = self.pending_delete(registry, visibility=Visibility.PUBLIC)
        assert (pending.status, pending.deleted, pending.deleted_at) == (
            Status.PENDING_DELETE,
            True,
            minutes(5),
        )
        gone = self.create(registry, visibility=Visibility.PUBLIC)
        registry.delete(gone.id, context=ADMIN)
        live = self.create(registry, status=Status.ACTIVE, visibility=Visibility.PUBLIC)
        scrubber_query = {"status": "pending_delete", "deleted": True, "visibility": "all"}
        found = self.listing(registry, ADMIN, filters=scrubber_query)
        assert found == [registry.get(pending.id, context=ADMIN)]
        assert found[0].locations == pending.locations and found[0].deleted_at == minutes(5)
        assert self.ids(registry, ADMIN) == [live.id]  # hidden without the deleted filter
        for who in (self.owner, self.other):
            assert self.ids(registry, who, filters=scrubber_query) == []
            with pytest.raises(errors.NotFound):
                registry.get(pending.id, context=who)

    def test_only_one_claim_of_a_pending_delete_image_wins(self, registry: Registry) -> None:
        """The scrubber's claim: pending_delete -> deleted, conditional, under a race."""
        pending = self.pending_delete(registry)

        def claim(i: int) -> Image:
            return registry.update(
                pending.id,
                {"status": Status.DELETED, "properties": {"claim": str(i)}},
                context=ADMIN,
                expected_status=Status.PENDING_DELETE,
            )

        results = run_concurrently(self.racers, claim)
        won = [r for r in results if isinstance(r, Image)]
        assert len(won) == 1, results
        assert all(isinstance(r, errors.Conflict) for r in results if r not in won)
        got = registry.get(pending.id, context=ADMIN)
        assert (
            got.status is Status.DELETED and got.properties["claim"] == won[0].properties["claim"]
        )

    def test_restore_and_claim_exclude_each_other(self, registry: Registry) -> None:
        pending = self.pending_delete(registry)
        restored = registry.update(
            pending.id,
            {"status": Status.ACTIVE, "deleted": False, "deleted_at": None},
            context=ADMIN,
            expected_status=Status.PENDING_DELETE,
        )
        assert (restored.status, restored.deleted, restored.deleted_at) == (
            Status.ACTIVE,
            False,
            None,
        )
        assert registry.get(pending.id, context=self.owner) == restored
        with pytest.raises(errors.Conflict):
            registry.update(
                pending.id,
                {"status": Status.DELETED},
                context=ADMIN,
                expected_status=Status.PENDING_DELETE,
            )
        assert registry.get(pending.id, context=ADMIN).status is Status.ACTIVE

    def test_a_claimed_image_is_found_and_given_back(self, registry: Registry) -> None:
        """A scrubber finds its claims by a property of deleted images, and puts an
        image back to pending_delete with fewer locations when a store failed."""
        pending = self.pending_delete(registry)
        registry.update(
            pending.id,
            {"status": Status.DELETED, "properties": {"os_glance_scrub_claimed": "true"}},
            context=ADMIN,
            expected_status=Status.PENDING_DELETE,
        )
        claimed = {"status": "deleted", "deleted": True, "property-os_glance_scrub_claimed": "true"}
        assert self.ids(registry, ADMIN, filters=claimed) == [pending.id]
        back = registry.update(
            pending.id,
            {
                "status": Status.PENDING_DELETE,
                "locations": [],
                "properties": {RUN_PROPERTY: self.run},
            },
            context=ADMIN,
            purge_props=True,
            expected_status=Status.DELETED,
        )
        assert back.status is Status.PENDING_DELETE and back.locations == ()
        assert back.deleted and back.deleted_at == minutes(5)
        assert registry.get(pending.id, context=ADMIN) == back
        assert self.ids(registry, ADMIN, filters=claimed) == []

    # --- leases (one tank-api at a time runs a periodic job) --------------------------

    def test_a_lease_has_one_holder_until_it_expires_or_is_released(
        self, registry: Registry
    ) -> None:
        name = f"job-{self.run}"
        assert registry.hold_lease(name, "a", 30)
        assert registry.hold_lease(name, "a", 30)  # renewed
        assert not registry.hold_lease(name, "b", 30)
        registry.release_lease(name, "b")  # not b's: nothing happens
        assert not registry.hold_lease(name, "b", 30)
        registry.release_lease(name, "a")
        assert registry.hold_lease(name, "b", 0.5)
        assert not registry.hold_lease(name, "a", 30)
        time.sleep(0.7)
        assert registry.hold_lease(name, "a", 30)  # b's expired
        assert registry.hold_lease(f"other-{self.run}", "b", 30)  # leases are per name

    def test_only_one_racer_takes_a_free_lease(self, registry: Registry) -> None:
        name = f"race-{self.run}"
        results = run_concurrently(self.racers, lambda i: registry.hold_lease(name, f"h{i}", 30))
        assert sorted(results, key=str) == [False] * (self.racers - 1) + [True], results

    def test_admins_page_through_every_image_with_its_locations(self, registry: Registry) -> None:
        """What the orphan scrubber relies on (:func:`tank.scrubber.orphans.all_images`):
        an admin listing with ``deleted`` and ``visibility=all``, by id, page after page
        (markers at deleted images too), holds every image of every tenant and state,
        with the locations deleted images keep."""
        made = {}
        for n, (status, visibility) in enumerate(
            [
                (Status.ACTIVE, Visibility.PRIVATE),
                (Status.ACTIVE, Visibility.COMMUNITY),
                (Status.ACTIVE, Visibility.SHARED),
                (Status.SAVING, Visibility.PUBLIC),
                (Status.DELETED, Visibility.PRIVATE),
                (Status.PENDING_DELETE, Visibility.PRIVATE),
                (Status.DELETED, Visibility.PUBLIC),
            ]
        ):
            owner = (self.owner, self.other)[n % 2].tenant
            image = self.create(
                registry,
                owner=owner,
                visibility=visibility,
                status=Status.ACTIVE
                if status in (Status.DELETED, Status.PENDING_DELETE)
                else status,
                locations=[Location(url=f"file:///images/{self.run}-{n}", store="file")],
            )
            if status is Status.DELETED:
                registry.delete(image.id, context=ADMIN)
            elif status is Status.PENDING_DELETE:
                registry.update(image.id, {"status": status}, context=ADMIN)
            made[image.id] = (status, image.locations)
        seen: dict[str, tuple[Status, tuple[Location, ...]]] = {}
        marker = None
        for _ in range(len(made) + 1):
            page = self.listing(
                registry,
                sort=(("id", "asc"),),
                limit=2,
                marker=marker,
                filters={"deleted": True, "visibility": "all"},
            )
            seen.update((i.id, (i.status, i.locations)) for i in page)
            if len(page) < 2:
                break
            marker = page[-1].id
        assert seen == made

    # --- listing: order and pages ----------------------------------------------------

    @pytest.fixture
    def sortable(self, registry: Registry) -> list[Image]:
        """Six images with distinct and tied values for every sort key."""
        rows = [
            ("delta", "raw", "bare", 30, Status.ACTIVE, 3, 0),
            ("alpha", "qcow2", "ovf", 10, Status.QUEUED, 1, 2),
            ("charlie", "vmdk", "bare", 20, Status.SAVING, 2, 2),
            ("alpha", "raw", "ovf", 10, Status.ACTIVE, 1, 4),
            ("bravo", "iso", "bare", 50, Status.KILLED, 5, 1),
            ("delta", "qcow2", "bare", 0, Status.PENDING_DELETE, 0, 3),
        ]
        return [
            self.create(
                registry,
                name=name,
                disk_format=disk,
                container_format=container,
                size=size,
                status=status,
                created_at=minutes(created),
                updated_at=minutes(updated),
            )
            for name, disk, container, size, status, created, updated in rows
        ]

    SORTS = [(key, direction) for key in sorted(SORT_KEYS) for direction in ("asc", "desc")]

    @pytest.mark.parametrize("key,direction", SORTS)
    def test_sorting(
        self, registry: Registry, sortable: list[Image], key: str, direction: str
    ) -> None:
        expected = [
            i.id
            for i in sorted(
                sortable, key=lambda i: (getattr(i, key), i.id), reverse=direction == "desc"
            )
        ]
        assert self.ids(registry, sort_key=key, sort_dir=direction) == expected
        assert self.all_pages(registry, 2, sort_key=key, sort_dir=direction) == expected

    def test_default_order_is_newest_first(self, registry: Registry, sortable: list[Image]) -> None:
        expected = sorted(sortable, key=lambda i: (i.created_at, i.id), reverse=True)
        assert self.ids(registry) == [i.id for i in expected]

    @pytest.mark.parametrize("key,direction", SORTS)
    def test_pages_are_stable_under_ties(
        self, registry: Registry, key: str, direction: str
    ) -> None:
        images = [
            self.create(
                registry,
                name="same",
                size=7,
                disk_format="raw",
                container_format="bare",
                created_at=minutes(0),
                updated_at=minutes(0),
            )
            for _ in range(7)
        ]
        expected = sorted((i.id for i in images), reverse=direction == "desc")
        assert self.ids(registry, sort_key=key, sort_dir=direction) == expected
        for limit in (1, 2, 3):
            assert self.all_pages(registry, limit, sort_key=key, sort_dir=direction) == expected

    @pytest.mark.parametrize("key", ["name", "size", "disk_format", "container_format"])
    @pytest.mark.parametrize("direction", ["asc", "desc"])
    def test_missing_values_sort_first_ascending(
        self, registry: Registry, key: str, direction: str
    ) -> None:
        values = {"name": "n", "size": 5, "disk_format": "raw", "container_format": "bare"}
        empty = [self.create(registry) for _ in range(3)]
        full = [self.create(registry, **{key: values[key]}) for _ in range(3)]
        expected = sorted(i.id for i in empty) + sorted(i.id for i in full)
        if direction == "desc":
            expected.reverse()
        assert self.ids(registry, sort_key=key, sort_dir=direction) == expected
        assert self.all_pages(registry, 2, sort_key=key, sort_dir=direction) == expected

    def test_limit(self, registry: Registry) -> None:
        for _ in range(4):
            self.create(registry)
        assert len(self.ids(registry, limit=3)) == 3
        assert self.ids(registry, limit=0) == []

    def test_unknown_marker_is_not_found(self, registry: Registry) -> None:
        self.create(registry)
        with pytest.raises(errors.NotFound):
            self.ids(registry, marker=str(uuid.uuid4()))

    def test_invisible_marker_is_not_found(self, registry: Registry) -> None:
        hidden = self.create(registry, owner=self.other.tenant)
        self.create(registry)
        with pytest.raises(errors.NotFound):
            self.ids(registry, self.owner, marker=hidden.id)

    def test_marker_of_the_last_image_gives_an_empty_page(self, registry: Registry) -> None:
        image = self.create(registry)
        assert self.ids(registry, marker=image.id) == []

    # --- members -------------------------------------------------------------------

    def test_add_and_list_members(self, registry: Registry) -> None:
        image = self.create(registry)
        b = registry.add_member(image.id, "b-" + self.run, can_share=True, context=self.owner)
        a = registry.add_member(image.id, "a-" + self.run, context=self.owner)
        assert isinstance(a, Member)
        assert (a.image_id, a.member, a.can_share) == (image.id, "a-" + self.run, False)
        assert registry.list_members(image.id, context=self.owner) == [a, b]
        assert registry.list_members(image.id, context=ADMIN) == [a, b]

    def test_add_member_again_updates_can_share(self, registry: Registry) -> None:
        image = self.create(registry)
        name = self.member.tenant
        first = registry.add_member(image.id, name, context=self.owner)  # type: ignore[arg-type]
        again = registry.add_member(image.id, name, can_share=True, context=self.owner)  # type: ignore[arg-type]
        assert again.can_share and again.created_at == first.created_at
        assert registry.list_members(image.id, context=self.owner) == [again]

    def test_members_see_the_image_until_removed(self, registry: Registry) -> None:
        image = self.create(registry)
        name = self.member.tenant
        assert name is not None
        registry.add_member(image.id, name, context=self.owner)
        assert registry.get(image.id, context=self.member).id == image.id
        assert self.ids(registry, self.member) == [image.id]
        registry.remove_member(image.id, name, context=self.owner)
        with pytest.raises(errors.NotFound):
            registry.get(image.id, context=self.member)
        assert registry.list_members(image.id, context=self.owner) == []

    def test_remove_a_non_member_is_not_found(self, registry: Registry) -> None:
        image = self.create(registry)
        with pytest.raises(errors.NotFound):
            registry.remove_member(image.id, "nobody-" + self.run, context=self.owner)

    def test_replace_members(self, registry: Registry) -> None:
        image = self.create(registry)
        a, b, c = (f"{x}-{self.run}" for x in "abc")
        registry.add_member(image.id, a, context=self.owner)
        kept = registry.add_member(image.id, b, context=self.owner)
        replaced = registry.replace_members(image.id, [(b, True), (c, False)], context=self.owner)
        assert [(m.member, m.can_share) for m in replaced] == [(b, True), (c, False)]
        assert replaced[0].created_at == kept.created_at
        assert registry.list_members(image.id, context=self.owner) == replaced
        assert registry.replace_members(image.id, [], context=self.owner) == []
        assert registry.list_members(image.id, context=self.owner) == []

    def test_replace_members_is_all_or_nothing(self, registry: Registry) -> None:
        image = self.create(registry)
        before = [registry.add_member(image.id, "a-" + self.run, context=self.owner)]
        with pytest.raises(errors.ValidationError):
            registry.replace_members(
                image.id, [("b-" + self.run, False), ("", False)], context=self.owner
            )
        assert registry.list_members(image.id, context=self.owner) == before

    def test_only_the_owner_changes_members(self, registry: Registry) -> None:
        public = self.create(registry, visibility=Visibility.PUBLIC)
        name = "x-" + self.run
        with pytest.raises(errors.Forbidden):
            registry.add_member(public.id, name, context=self.other)
        with pytest.raises(errors.Forbidden):
            registry.replace_members(public.id, [(name, False)], context=self.other)
        registry.add_member(public.id, name, context=ADMIN)
        with pytest.raises(errors.Forbidden):
            registry.remove_member(public.id, name, context=self.other)
        assert [m.member for m in registry.list_members(public.id, context=ADMIN)] == [name]

    def test_members_of_invisible_images_are_not_found(self, registry: Registry) -> None:
        private = self.create(registry)
        missing = str(uuid.uuid4())
        for image_id in (private.id, missing):
            with pytest.raises(errors.NotFound):
                registry.list_members(image_id, context=self.other)
            with pytest.raises(errors.NotFound):
                registry.add_member(image_id, "x-" + self.run, context=self.other)
            with pytest.raises(errors.NotFound):
                registry.remove_member(image_id, "x-" + self.run, context=self.other)
            with pytest.raises(errors.NotFound):
                registry.replace_members(image_id, [], context=self.other)

    def test_a_member_who_can_share_may_add_members(self, registry: Registry) -> None:
        image = self.create(registry)
        sharer, plain = self.member.tenant, self.other.tenant
        assert sharer is not None and plain is not None
        registry.add_member(image.id, sharer, can_share=True, context=self.owner)
        registry.add_member(image.id, plain, context=self.owner)
        third = "third-" + self.run
        registry.add_member(image.id, third, context=self.member)
        with pytest.raises(errors.Forbidden):
            registry.add_member(image.id, "fourth-" + self.run, context=self.other)
        with pytest.raises(errors.Forbidden):
            registry.remove_member(image.id, third, context=self.member)
        with pytest.raises(errors.Forbidden):
            registry.replace_members(image.id, [], context=self.member)
        members = registry.list_members(image.id, context=self.owner)
        assert sorted(m.member for m in members) == sorted([sharer, plain, third])

    def test_members_see_only_their_own_membership(self, registry: Registry) -> None:
        image = self.create(registry, visibility=Visibility.PUBLIC)
        name = self.member.tenant
        assert name is not None
        mine = registry.add_member(image.id, name, context=self.owner)
        registry.add_member(image.id, "else-" + self.run, context=self.owner)
        assert registry.list_members(image.id, context=self.member) == [mine]
        assert registry.list_members(image.id, context=self.other) == []
        assert len(registry.list_members(image.id, context=self.owner)) == 2

    def test_shared_with(self, registry: Registry) -> None:
        name = self.member.tenant
        assert name is not None
        one = self.create(registry)
        two = self.create(registry, owner=self.other.tenant)
        gone = self.create(registry)
        for image, owner in ((one, self.owner), (two, self.other), (gone, self.owner)):
            registry.add_member(image.id, name, can_share=image is two, context=owner)
        registry.delete(gone.id, context=self.owner)
        shared = registry.shared_with(name, context=ADMIN)
        assert sorted(m.image_id for m in shared) == sorted([one.id, two.id])
        assert {m.image_id: m.can_share for m in shared} == {one.id: False, two.id: True}
        assert registry.shared_with(name, context=self.member) == shared
        assert [m.image_id for m in registry.shared_with(name, context=self.owner)] == [one.id]
        assert registry.shared_with(name, context=self.anonymous) == []
        assert registry.shared_with("nobody-" + self.run, context=ADMIN) == []

    def test_deleted_images_take_no_members(self, registry: Registry) -> None:
        image = self.create(registry)
        registry.delete(image.id, context=ADMIN)
        with pytest.raises(errors.NotFound):
            registry.add_member(image.id, "x-" + self.run, context=ADMIN)

    # --- v2: visibility, member status, tags, several sort keys -------------------------

    def test_visibility_rules_for_get(self, registry: Registry) -> None:
        """public and community: everyone; private: the owner; shared: owner and members
        (whatever their answer)."""
        images = {v: self.create(registry, visibility=v) for v in Visibility}
        registry.add_member(images[Visibility.SHARED].id, self.member.tenant, context=self.owner)  # type: ignore[arg-type]
        registry.add_member(images[Visibility.PRIVATE].id, self.member.tenant, context=self.owner)  # type: ignore[arg-type]
        seen = {
            who: {v for v, image in images.items() if self._sees(registry, image, who)}
            for who in ("admin", "owner", "member", "other", "anonymous")
        }
        everyone = {Visibility.PUBLIC, Visibility.COMMUNITY}
        assert seen == {
            "admin": set(Visibility),
            "owner": set(Visibility),
            "member": everyone | {Visibility.SHARED},  # private ignores members
            "other": everyone,
            "anonymous": everyone,
        }

    def _sees(self, registry: Registry, image: Image, who: str) -> bool:
        try:
            registry.get(image.id, context=self.context(who))
        except errors.NotFound:
            return False
        return True

    def test_listing_leaves_out_community_images_unless_asked(self, registry: Registry) -> None:
        mine = self.create(registry, visibility=Visibility.COMMUNITY)
        theirs = self.create(registry, visibility=Visibility.COMMUNITY, owner="someone")
        public = self.create(registry, visibility=Visibility.PUBLIC, owner="someone")
        assert set(self.ids(registry, self.owner)) == {mine.id, public.id}
        community = {"visibility": "community"}
        assert set(self.ids(registry, self.owner, filters=community)) == {mine.id, theirs.id}
        every = {"visibility": "all"}
        assert set(self.ids(registry, self.other, filters=every)) == {
            mine.id,
            theirs.id,
            public.id,
        }

    def test_member_status_is_the_members_answer(self, registry: Registry) -> None:
        image = self.create(registry, visibility=Visibility.SHARED)
        member = self.member.tenant
        assert member is not None
        added = registry.add_member(image.id, member, context=self.owner)
        assert added.status is MemberStatus.PENDING
        with pytest.raises(errors.Forbidden):  # the owner cannot answer for the member
            registry.set_member_status(image.id, member, "accepted", context=self.owner)
        with pytest.raises(errors.NotFound):
            registry.set_member_status(image.id, "nobody", "accepted", context=self.member)
        with pytest.raises(errors.ValidationError):
            registry.set_member_status(image.id, member, "maybe", context=self.member)
        accepted = registry.set_member_status(image.id, member, "accepted", context=self.member)
        assert accepted.status is MemberStatus.ACCEPTED
        assert accepted.created_at == added.created_at
        [listed] = registry.list_members(image.id, context=self.owner)
        assert listed.status is MemberStatus.ACCEPTED
        rejected = registry.set_member_status(image.id, member, "rejected", context=ADMIN)
        assert rejected.status is MemberStatus.REJECTED

    def test_listing_by_member_status(self, registry: Registry) -> None:
        member = self.member.tenant
        assert member is not None
        by_status = {}
        for status in MemberStatus:
            image = self.create(registry, visibility=Visibility.SHARED)
            registry.add_member(image.id, member, context=self.owner)
            if status is not MemberStatus.PENDING:
                registry.set_member_status(image.id, member, status, context=self.member)
            by_status[status] = image.id
        for status, image_id in by_status.items():
            found = self.ids(registry, self.member, filters={"member_status": status.value})
            assert found == [image_id], status
        everything = self.ids(registry, self.member, filters={"member_status": "all"})
        assert set(everything) == set(by_status.values())
        assert set(self.ids(registry, self.member)) == set(by_status.values())  # v1: any

    def test_tags_round_trip_and_filter_all_must_match(self, registry: Registry) -> None:
        both = self.create(registry, tags=["linux", "x86"])
        one = self.create(registry, tags=["linux"])
        self.create(registry)
        assert registry.get(both.id, context=ADMIN).tags == ("linux", "x86")
        assert set(self.ids(registry, filters={"tags": ["linux"]})) == {both.id, one.id}
        assert self.ids(registry, filters={"tags": ["linux", "x86"]}) == [both.id]
        updated = registry.update(one.id, {"tags": ["arm", "linux"]}, context=self.owner)
        assert updated.tags == ("arm", "linux")
        assert registry.get(one.id, context=ADMIN).tags == ("arm", "linux")
        assert self.ids(registry, filters={"tags": ["arm"]}) == [one.id]

    def test_in_and_comparison_filters(self, registry: Registry) -> None:
        old = self.create(registry, name="a", created_at=minutes(1), status=Status.ACTIVE)
        mid = self.create(registry, name="b", created_at=minutes(2), os_hidden=True)
        new = self.create(registry, name="c", created_at=minutes(3), protected=True)
        assert set(self.ids(registry, filters={"name": ["a", "c"]})) == {old.id, new.id}
        assert set(self.ids(registry, filters={"status": ["active", "killed"]})) == {old.id}
        later = {"created_at": [("gt", minutes(1))]}
        assert set(self.ids(registry, filters=later)) == {mid.id, new.id}
        window = {"created_at": [("gte", minutes(2)), ("lt", minutes(3))]}
        assert self.ids(registry, filters=window) == [mid.id]
        assert self.ids(registry, filters={"os_hidden": True}) == [mid.id]
        assert self.ids(registry, filters={"protected": True}) == [new.id]
        assert self.ids(registry, filters={"id": [old.id]}) == [old.id]

    def test_several_sort_keys_page_through_everything(self, registry: Registry) -> None:
        made = [
            self.create(
                registry,
                name=name,
                size=size,
                created_at=minutes(i),
            )
            for i, (name, size) in enumerate(
                [("b", 2), ("a", None), ("b", 1), ("a", 3), (None, 1), ("b", None), ("a", 3)]
            )
        ]

        def key(image: Image) -> tuple[Any, ...]:  # name asc (NULLs first), size desc (NULLs last)
            return (
                image.name is not None,
                image.name or "",
                image.size is None,
                -(image.size or 0),
                image.id,  # then id in the last key's direction: desc
            )

        # id desc is the tie-breaker: sort ids descending within equal (name, size)
        ordered = sorted(made, key=lambda i: i.id, reverse=True)
        ordered = sorted(ordered, key=lambda i: key(i)[:4])
        expected = [i.id for i in ordered]
        sort = [("name", "asc"), ("size", "desc")]
        assert self.ids(registry, sort=sort, limit=100) == expected
        for limit in (1, 2, 3):
            assert self.all_pages(registry, limit, sort=sort) == expected

    # --- quotas ----------------------------------------------------------------------

    def test_usage_counts_as_glance_counts(self, registry: Registry) -> None:
        owner = self.owner.tenant
        assert owner is not None
        assert registry.usage(owner) == {
            COUNT_TOTAL: 0, COUNT_UPLOADING: 0, SIZE_TOTAL: 0, STAGE_TOTAL: 0
        }  # fmt: skip
        two = [Location(url="file:///a", store="a"), Location(url="file:///b", store="b")]
        self.create(registry, status=Status.ACTIVE, size=10, locations=two)
        self.create(registry, status=Status.DEACTIVATED, size=1, locations=two[:1])
        self.create(registry, status=Status.QUEUED, size=7)  # v1: announced, no data yet
        self.create(registry, status=Status.SAVING)
        self.create(registry, status=Status.UPLOADING, size=100)  # staged
        self.create(registry, status=Status.IMPORTING, size=1000)  # staged, importing
        copying = {COPYING_PROPERTY: "b"}  # copy-image in flight: staged copy
        self.create(registry, status=Status.ACTIVE, size=5, locations=two[:1], properties=copying)
        self.create(registry, status=Status.KILLED, size=10000, locations=two)
        gone = self.create(registry, status=Status.ACTIVE, size=10000, locations=two)
        registry.delete(gone.id, context=ADMIN)
        self.create(registry, status=Status.ACTIVE, size=99999, owner=self.other.tenant)
        assert registry.usage(owner) == {
            COUNT_TOTAL: 7,
            COUNT_UPLOADING: 4,  # saving, uploading, importing, copying
            SIZE_TOTAL: 20 + 1 + 5,
            STAGE_TOTAL: 100 + 1000 + 5,
        }

    def test_quota_refuses_the_create_over_the_limit(self, registry: Registry) -> None:
        check = QuotaCheck(limits={COUNT_TOTAL: 2})
        for _ in range(2):
            registry.create(self.image(), quota=check)
        refused = self.image()
        with pytest.raises(errors.QuotaExceeded) as caught:
            registry.create(refused, quota=check)
        message = str(caught.value)
        assert "image_count_total is 2 images" in message, message
        assert f"project {self.owner.tenant}" in message and "2 images in use" in message
        with pytest.raises(errors.NotFound):
            registry.get(refused.id, context=ADMIN)
        assert len(self.ids(registry)) == 2
        assert caught.value.http_status == 413

    def test_quota_zero_allows_nothing_and_deleted_images_free_their_slot(
        self, registry: Registry
    ) -> None:
        with pytest.raises(errors.QuotaExceeded):
            registry.create(self.image(), quota=QuotaCheck(limits={COUNT_TOTAL: 0}))
        check = QuotaCheck(limits={COUNT_TOTAL: 1})
        first = registry.create(self.image(), quota=check)
        with pytest.raises(errors.QuotaExceeded):
            registry.create(self.image(), quota=check)
        registry.delete(first.id, context=ADMIN)
        registry.create(self.image(), quota=check)

    def test_quota_is_per_owner(self, registry: Registry) -> None:
        check = QuotaCheck(limits={COUNT_TOTAL: 1})
        registry.create(self.image(), quota=check)
        registry.create(self.image(owner=self.other.tenant), quota=check)
        with pytest.raises(errors.QuotaExceeded):
            registry.create(self.image(owner=self.other.tenant), quota=check)

    def test_concurrent_creates_never_overshoot_the_quota(self, registry: Registry) -> None:
        check = QuotaCheck(limits={COUNT_TOTAL: 3})
        results = run_concurrently(
            self.racers, lambda i: registry.create(self.image(name=f"racer{i}"), quota=check)
        )
        made = [r for r in results if isinstance(r, Image)]
        refused = [r for r in results if isinstance(r, errors.QuotaExceeded)]
        assert (len(made), len(refused)) == (3, self.racers - 3), results
        assert len(self.ids(registry)) == 3

    def test_quota_checked_update_changes_nothing_when_refused(self, registry: Registry) -> None:
        check = QuotaCheck(limits={COUNT_UPLOADING: 1})
        first, second = self.create(registry), self.create(registry)
        saving = {"status": Status.SAVING}
        registry.update(first.id, saving, context=ADMIN, quota=check)
        with pytest.raises(errors.QuotaExceeded, match="image_count_uploading is 1 image"):
            registry.update(second.id, {**saving, "name": "x"}, context=ADMIN, quota=check)
        got = registry.get(second.id, context=ADMIN)
        assert (got.status, got.name) == (Status.QUEUED, None)
        # a write that does not raise usage passes even when the project is over
        registry.update(first.id, {"name": "renamed"}, context=ADMIN, quota=check)
        over = QuotaCheck(limits={COUNT_UPLOADING: 0})
        registry.update(first.id, {"name": "again"}, context=ADMIN, quota=over)

    def test_reservations_count_until_the_status_changes(self, registry: Registry) -> None:
        owner = self.owner.tenant
        assert owner is not None
        limit = {SIZE_TOTAL: 150}
        a, b = self.create(registry), self.create(registry)
        start = {"status": Status.SAVING}
        registry.update(
            a.id, start, context=ADMIN, quota=QuotaCheck(limits=limit, reserve={SIZE_TOTAL: 100})
        )
        assert registry.usage(owner)[SIZE_TOTAL] == 100
        with pytest.raises(errors.QuotaExceeded, match="image_size_total"):
            registry.update(
                b.id, start, context=ADMIN, quota=QuotaCheck(limits=limit, reserve={SIZE_TOTAL: 51})
            )
        assert registry.get(b.id, context=ADMIN).status is Status.QUEUED
        registry.update(
            b.id, start, context=ADMIN, quota=QuotaCheck(limits=limit, reserve={SIZE_TOTAL: 50})
        )
        assert registry.usage(owner)[SIZE_TOTAL] == 150
        # finished: the size in its store counts instead of the reservation
        done = {"status": Status.ACTIVE, "size": 40, "locations": [Location(url="file:///x")]}
        registry.update(a.id, done, context=ADMIN)
        assert registry.usage(owner)[SIZE_TOTAL] == 90
        registry.update(b.id, {"status": Status.QUEUED}, context=ADMIN)  # failed: released
        assert registry.usage(owner)[SIZE_TOTAL] == 40

    def test_reserve_grows_as_far_as_the_limit_allows(self, registry: Registry) -> None:
        owner = self.owner.tenant
        assert owner is not None
        self.create(registry, status=Status.ACTIVE, size=30, locations=[Location(url="file:///o")])
        image = self.create(registry, status=Status.SAVING)
        assert registry.reserve(image.id, SIZE_TOTAL, 50, limit=100) == 50
        # not all of the room left (70): the minimum and half the rest
        assert registry.reserve(image.id, SIZE_TOTAL, 1000, minimum=60, limit=100) == 65
        assert registry.reserve(image.id, SIZE_TOTAL, 1000, minimum=70, limit=100) == 70
        assert registry.usage(owner)[SIZE_TOTAL] == 100
        with pytest.raises(errors.QuotaExceeded) as caught:
            registry.reserve(image.id, SIZE_TOTAL, 1000, minimum=71, limit=100)
        assert "image_size_total is 0.00 MiB (100 bytes)" in str(caught.value)
        assert registry.usage(owner)[SIZE_TOTAL] == 100  # kept what it had
        assert registry.reserve(image.id, SIZE_TOTAL, 10, limit=5) == 10  # shrinking: allowed
        assert registry.reserve(image.id, SIZE_TOTAL, 0) == 0
        assert registry.usage(owner)[SIZE_TOTAL] == 30
        assert registry.reserve(image.id, STAGE_TOTAL, 25) == 25  # no limit: as wanted
        assert registry.usage(owner)[STAGE_TOTAL] == 25
        registry.update(image.id, {"status": Status.QUEUED}, context=ADMIN)
        assert registry.usage(owner)[STAGE_TOTAL] == 0  # a status change releases it
        registry.update(image.id, {"status": Status.UPLOADING}, context=ADMIN)
        assert registry.reserve(image.id, STAGE_TOTAL, 25) == 25
        assert registry.usage(owner)[STAGE_TOTAL] == 25
        release = QuotaCheck(reserve={STAGE_TOTAL: 0})
        registry.update(image.id, {"size": 20}, context=ADMIN, quota=release)
        assert registry.usage(owner)[STAGE_TOTAL] == 20  # staged: its size

    def test_concurrent_reservations_never_overshoot(self, registry: Registry) -> None:
        owner = self.owner.tenant
        assert owner is not None
        images = [self.create(registry, status=Status.SAVING) for _ in range(self.racers)]
        results = run_concurrently(
            self.racers,
            lambda i: registry.reserve(images[i].id, SIZE_TOTAL, 40, limit=100),
        )
        granted = [r for r in results if r == 40]
        refused = [r for r in results if isinstance(r, errors.QuotaExceeded)]
        assert (len(granted), len(refused)) == (2, self.racers - 2), results
        assert registry.usage(owner)[SIZE_TOTAL] == 80

    def test_reserve_for_a_missing_image_is_not_found(self, registry: Registry) -> None:
        with pytest.raises(errors.NotFound):
            registry.reserve(str(uuid.uuid4()), SIZE_TOTAL, 1, limit=10)
