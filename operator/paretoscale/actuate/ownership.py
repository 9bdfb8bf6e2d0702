"""Whether the operator may apply an object: only when it is absent or this ModelDeployment
owns it (pure).

Server-side apply with force adopts any object of the same name: a ModelDeployment named like
an existing Service would rewrite its selector, and the garbage collector would delete it with
the ModelDeployment. So before an apply, an object that exists without an ownerReference to
this ModelDeployment's uid is a conflict: nothing is applied and the condition
`ResourceConflict` says which object and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from paretoscale.actuate.render import Owner
from paretoscale.api.types import KIND

OwnerRefs = tuple[tuple[str, str, str], ...]  # (kind, name, uid) of each ownerReference


@dataclass(frozen=True)
class Conflict:
    """An object this ModelDeployment wants to apply but does not own."""

    key: str  # Kind/name
    owners: OwnerRefs

    @property
    def collision(self) -> bool:
        """Another ModelDeployment renders an object of this name (`<md>-<variant>` clash)."""
        return any(kind == KIND for kind, _, _ in self.owners)

    def message(self, md: str) -> str:
        if self.collision:
            other = next(name for kind, name, _ in self.owners if kind == KIND)
            if other == md:
                return (
                    f"{self.key} belongs to an earlier ModelDeployment {md} (another uid) that "
                    "is still being deleted; it is left alone until the garbage collector "
                    "removes it"
                )
            return (
                f"name collision: {self.key} belongs to ModelDeployment {other} "
                "(<modeldeployment>-<variant> names must be unique in a namespace); rename "
                f"this ModelDeployment or its variant. Nothing was applied."
            )
        by = ", ".join(f"{kind}/{name}" for kind, name, _ in self.owners) or "no ownerReference"
        return (
            f"{self.key} exists and is not owned by ModelDeployment {md} ({by}); paretoscale "
            "never takes over an object it did not create: rename this ModelDeployment, or "
            f"delete {self.key} if it is not needed. Nothing was applied."
        )


def conflict_of(owner: Owner, key: str, owners: OwnerRefs | None) -> Conflict | None:
    """The conflict of applying `key` over an existing object with these ownerReferences
    (None: the object does not exist, or is known to be ours)."""
    if owners is None or any(uid == owner.uid for _, _, uid in owners):
        return None
    return Conflict(key, owners)


def first_conflict(
    owner: Owner, keys: Iterable[str], existing: Mapping[str, OwnerRefs | None]
) -> Conflict | None:
    """The first of `keys` (object keys to apply) that exists and is not ours."""
    for key in keys:
        found = conflict_of(owner, key, existing.get(key))
        if found is not None:
            return found
    return None
