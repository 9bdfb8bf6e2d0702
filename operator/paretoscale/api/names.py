"""Which names can make the objects a ModelDeployment renders (pure).

The ModelDeployment's name becomes a Service name (a DNS-1035 label: lowercase letters,
digits and `-`, starting with a letter, ending with a letter or digit, at most 63 characters)
and a label value; `<md>-<variant>` becomes a Deployment and PodDisruptionBudget name and its
pods' hostnames prefix, so it must be a DNS-1035 label too. The rules are written twice: as
CEL on the CRD's root (`cel_rules`, enforced by the API server at `kubectl apply`) and as
`name_problems` (enforced by `paretoscale plan` and the operator).

`collisions` finds ModelDeployments of one namespace whose `<md>-<variant>` names coincide
(`a` + variant `b-c` and `a-b` + variant `c` both make `a-b-c`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
MAX_NAME = 63


def name_problems(md: str, variants: Sequence[str]) -> list[str]:
    """What is wrong with this ModelDeployment name and its variants' names, in words that
    say what to change; empty when every rendered name is valid."""
    out = []
    if not re.match(DNS_1035, md) or len(md) > MAX_NAME:
        out.append(
            f"metadata.name {md!r} cannot name a Service: use at most {MAX_NAME} lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(no '.')"
        )
    for v in variants:
        if not re.match(DNS_1035, v):
            out.append(
                f"variant name {v!r} must start with a letter and hold only lowercase letters, "
                "digits and '-' (it is part of the Deployment name and a label)"
            )
        if len(md) + 1 + len(v) > MAX_NAME:
            out.append(
                f"{md}-{v} (the Deployment of variant {v!r}) is {len(md) + 1 + len(v)} "
                f"characters; shorten the ModelDeployment or variant name to at most "
                f"{MAX_NAME} together"
            )
    return out


def cel_rules() -> list[dict[str, Any]]:
    """The same rules as CEL on the CRD's root (where `self.metadata.name` is visible)."""
    return [
        {
            "rule": f"self.metadata.name.matches('{DNS_1035}') && "
            f"size(self.metadata.name) <= {MAX_NAME}",
            "message": f"metadata.name must be a DNS-1035 label (it names the Service): at most "
            f"{MAX_NAME} lowercase letters, digits and '-', starting with a letter, no '.'",
        },
        {
            "rule": "self.spec.variants.all(v, "
            f"size(self.metadata.name) + size(v.name) < {MAX_NAME})",
            "message": f"<metadata.name>-<variant name> names each variant's Deployment: keep "
            f"it at most {MAX_NAME} characters",
            "fieldPath": ".spec.variants",
        },
    ]


def rendered_names(md: str, variants: Iterable[str]) -> set[str]:
    return {f"{md}-{v}" for v in variants}


def collisions(mds: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """For ModelDeployments of one namespace (API bodies), the later-created ones whose
    `<md>-<variant>` (Deployment) names an earlier one already renders: name -> message.
    Earlier means older creationTimestamp, then name (so exactly one of a pair yields)."""
    ordered = sorted(
        mds,
        key=lambda b: (
            str(b["metadata"].get("creationTimestamp") or ""),
            b["metadata"]["name"],
        ),
    )
    taken: dict[str, str] = {}  # rendered object name -> the ModelDeployment rendering it
    out: dict[str, str] = {}
    for body in ordered:
        md = body["metadata"]["name"]
        variants = [
            str(v.get("name"))
            for v in ((body.get("spec") or {}).get("variants") or [])
            if isinstance(v, Mapping)
        ]
        mine = rendered_names(md, variants)
        clash = sorted(n for n in mine if n in taken and taken[n] != md)
        if clash:
            out[md] = (
                f"name collision: {', '.join(clash)} is already rendered by ModelDeployment "
                f"{taken[clash[0]]} in this namespace (<modeldeployment>-<variant> names must "
                "be unique); rename this ModelDeployment or its variant. Nothing was applied."
            )
            continue  # its names are not claimed: the earlier one keeps them
        for n in mine:
            taken[n] = md
    return out
