"""Nobody locked out: an admin needs a key of their own before a system is installed.

The example hosts carry a placeholder key (its base64 says PlaceholderReplaceMe) so that they
evaluate as templates; modules/warnings.nix warns about the same mark and modules/assertions.nix
fails evaluation when no admin has a key at all."""

from __future__ import annotations

from blankslate.errors import BlankslateError
from blankslate.plan import Plan

PLACEHOLDER_MARK = "PlaceholderReplaceMe"


def is_placeholder(key: str) -> bool:
    return PLACEHOLDER_MARK in key


def lockout_problem(plan: Plan) -> str | None:
    """Why the admins could not log in with the plan's keys, or None. A plan made before the
    keys travelled in it (no `authorizedKeys`) says nothing either way: None."""
    admins = plan.users
    if not admins or any(user.authorized_keys is None for user in admins):
        return None
    if not any(user.authorized_keys for user in admins):
        names = ", ".join(f"blankslate.users.{user.name}.authorizedKeys" for user in admins)
        return f"no admin has an SSH key, so nobody could log in: set {names}"
    for user in admins:
        keys = user.authorized_keys or ()
        if keys and all(is_placeholder(key) for key in keys):
            return (
                f"admin {user.name}'s only SSH key is the example's placeholder, so nobody "
                f"could log in: put your own public key in blankslate.users.{user.name}"
                ".authorizedKeys"
            )
    return None


def refuse_lockout(plan: Plan, what: str) -> None:
    """Stop WHAT (a system others will boot) before it writes anything, when nobody could log in."""
    problem = lockout_problem(plan)
    if problem is not None:
        raise BlankslateError(f"{what}: {problem}; nothing written")
