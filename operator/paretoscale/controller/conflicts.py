"""Whether a ModelDeployment may apply what it renders: not when its `<md>-<variant>` names
collide with an earlier ModelDeployment of its namespace (api/names.py), nor over an existing
object it does not own (actuate/ownership.py). The cache shows the operator's labeled
objects; any other object of a name to apply is read from the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paretoscale.actuate.ownership import Conflict, OwnerRefs, first_conflict
from paretoscale.actuate.plan import Changes, Observed, object_key
from paretoscale.actuate.render import Owner
from paretoscale.api.names import collisions

if TYPE_CHECKING:
    from paretoscale.controller.reconcile import Context


async def apply_conflict(
    ctx: Context,
    body: Mapping[str, Any],
    owner: Owner,
    changes: Changes,
    observed: Mapping[str, Observed],
) -> tuple[str | None, bool]:
    """(why nothing may be applied, whether that is a name collision); (None, False): go."""
    conflict = name_collision(ctx, body)
    if conflict is not None:
        return conflict, True
    found = await ownership_conflict(ctx, owner, changes.apply, observed)
    if found is not None:
        return found.message(owner.name), found.collision
    return None, False


def name_collision(ctx: Context, body: Mapping[str, Any]) -> str | None:
    """Why this ModelDeployment's `<md>-<variant>` names clash with an earlier one of its
    namespace in the cache (None: they do not)."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    peers = {k[1]: b for k, b in ctx.cache.mds.items() if k[0] == ns} | {name: body}
    return collisions(peers.values()).get(name)


async def ownership_conflict(
    ctx: Context,
    owner: Owner,
    manifests: Sequence[Mapping[str, Any]],
    observed: Mapping[str, Observed],
) -> Conflict | None:
    """The first object to apply that exists and that this ModelDeployment does not own. The
    cache shows only the operator's labeled objects; any other is read from the API."""
    existing: dict[str, OwnerRefs | None] = {}
    for m in manifests:
        key = object_key(m)
        seen = observed.get(key)
        if seen is not None:
            existing[key] = seen.owners
        else:
            existing[key] = await asyncio.to_thread(
                ctx.kube.owners, m["kind"], owner.namespace, m["metadata"]["name"]
            )
        found = first_conflict(owner, [key], existing)
        if found is not None:
            return found
    return None
