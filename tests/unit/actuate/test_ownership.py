"""An existing object is applied only when this ModelDeployment owns it."""

from __future__ import annotations

from paretoscale.actuate.ownership import conflict_of, first_conflict
from paretoscale.actuate.render import Owner

OWNER = Owner("assistant", "llm", "u-1")


def test_absent_or_own_objects_are_no_conflict() -> None:
    assert conflict_of(OWNER, "Service/assistant", None) is None
    mine = (("ModelDeployment", "assistant", "u-1"),)
    assert conflict_of(OWNER, "Service/assistant", mine) is None


def test_a_foreign_object_is_a_conflict_that_says_what_to_do() -> None:
    found = conflict_of(OWNER, "Service/assistant", ())
    assert found is not None and not found.collision
    text = found.message("assistant")
    assert "Service/assistant exists and is not owned" in text
    assert "no ownerReference" in text and "rename this ModelDeployment" in text


def test_another_modeldeployments_object_is_a_name_collision() -> None:
    found = conflict_of(
        OWNER, "Deployment/assistant-fp8", (("ModelDeployment", "assistant-x", "u-2"),)
    )
    assert found is not None and found.collision
    assert found.message("assistant").startswith("name collision: Deployment/assistant-fp8")


def test_an_older_incarnation_of_the_same_name_is_waited_for() -> None:
    found = conflict_of(
        OWNER, "Deployment/assistant-fp8", (("ModelDeployment", "assistant", "u-0"),)
    )
    assert found is not None and "still being deleted" in found.message("assistant")


def test_first_conflict_walks_the_keys_in_order() -> None:
    existing = {"Deployment/a": None, "Service/b": (("Service", "x", "u-9"),), "Service/c": ()}
    found = first_conflict(OWNER, ["Deployment/a", "Service/b", "Service/c"], existing)
    assert found is not None and found.key == "Service/b"
