"""Who is acting: an operating-system user (the CLI) or an API key, and the roles each holds.

An adapter never says who its caller is by itself; it hands the engine what it knows —
the OS account running the process, or a token — and gets an :class:`Actor` back, with
the credential every ledger entry will carry:

* **An OS user** (:meth:`IdentityOps.operator`) holds the roles the policy's
  ``[operators]`` table gives that user name, and no others. Until a policy has that
  table (a fresh installation), the *bootstrap rule* applies: the account that owns the
  data directory holds every role — except when the policy enables 1:N identification,
  where it holds ``admin`` only, so that searching and reviewing need named operators —
  and every other account holds none. The actor id is the user name; the credential
  ``os:<user name>``.
* **An API key** (:meth:`IdentityOps.key_holder`) acts as its actor in its one role; the
  credential is ``key:<key id>``, followed by `` os:<user>`` when the key was given to
  the CLI, so the ledger shows both the key used and the account that used it.

A requested role only chooses among the roles held: asking for one not held is refused
(:class:`PermissionDeniedError`), whatever a flag or variable says; so is a claimed actor
name (``claimed``) other than who is acting. Those refusals are ledgered as ``sign_in``
entries (actor: the account or the key's actor; role: as requested; the credential), so an
attempt to act beyond one's roles leaves a trace. An unknown token is not ledgered: it
names nobody. Successful sign-ins are not ledgered either: the operation that follows is,
with the credential.
"""

from __future__ import annotations

from faceledger.config import OsUser
from faceledger.errors import InputError, PermissionDeniedError
from faceledger.governance.ledger import EntryDraft, entry_fields, refusal_result
from faceledger.governance.roles import Operation, Role

from ._base import EngineBase
from .results import Actor

__all__ = ["IdentityOps"]

ALL_ROLES = frozenset(Role)


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InputError(f"unknown role {value!r} (roles: {known})", field="role") from None


def _names(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(r.value for r in roles)) or "none"


class IdentityOps(EngineBase):
    def operator_roles(self, user: OsUser, owner_uid: int | None) -> frozenset[Role]:
        """The roles OS account ``user`` holds (see the module docstring); ``owner_uid`` is the
        user id owning the data directory (``None``: it does not exist)."""
        operators = self.policy.operators
        if operators is not None:
            return frozenset(operators.get(user.name, frozenset()))
        if owner_uid is None or user.uid != owner_uid:
            return frozenset()
        return frozenset({Role.ADMIN}) if self.policy.identification.enabled else ALL_ROLES

    def operator(self, user: OsUser, role: Role | str | None = None, *, default_role: Role | str | None = None,
                 owner_uid: int | None = None, claimed: str | None = None) -> Actor:
        """The actor for OS account ``user`` acting in ``role`` (a role it holds), else in
        ``default_role`` if held, else in its only role. ``claimed``: a name the caller gave
        for itself; refused unless it is ``user.name``."""
        try:
            held = self.operator_roles(user, owner_uid)
            if not held:
                how = ("the policy's [operators] table does not name it" if self.policy.operators is not None
                       else "until the policy has an [operators] table only the owner of the data directory "
                            "holds roles")
                raise PermissionDeniedError(f"OS user '{user.name}' holds no role in this deployment ({how})",
                                            reason="no_role", user=user.name)
            chosen = self._choose(held, role, default_role, f"OS user '{user.name}'")
            _check_claim(claimed, user.name, user.credential)
        except PermissionDeniedError as exc:
            self._refused_sign_in(user.name, role, user.credential, exc)
            raise
        return Actor(user.name, chosen, credential=user.credential)

    def key_holder(self, token: str, role: Role | str | None = None, *, via: OsUser | None = None,
                   claimed: str | None = None) -> Actor:
        """The actor of API key ``token`` (its one role; ``role``, if given, must be it); ``via``
        is the OS account that presented the key, recorded in the credential; ``claimed`` as
        for :meth:`operator`."""
        key = self.authenticate(token)  # type: ignore[attr-defined] - KeyOps, a sibling mixin
        if key is None:
            raise PermissionDeniedError("the API key given is unknown, malformed or revoked", reason="unauthenticated")
        credential = key.credential if via is None else f"{key.credential} {via.credential}"
        try:
            chosen = self._choose(frozenset({Role(key.role)}), role, None, f"API key {key.key_id}")
            _check_claim(claimed, key.actor, credential)
        except PermissionDeniedError as exc:
            self._refused_sign_in(key.actor, role, credential, exc)
            raise
        return Actor(key.actor, chosen, credential=credential)

    def _refused_sign_in(self, actor: str, role: Role | str | None, credential: str,
                         exc: PermissionDeniedError) -> None:
        """Ledger a refused sign-in (its own transaction): who, the role asked for, how, and why."""
        draft = EntryDraft(actor=actor, role=str(getattr(role, "value", role) or "none"),
                           operation=Operation.SIGN_IN.value, outcome="refused", result=refusal_result(exc),
                           policy_digest=self.policy.digest, credential=credential)
        with self.store.transaction() as tx:
            tx.append_ledger(entry_fields(draft, self.now()))

    @staticmethod
    def _choose(held: frozenset[Role], role: Role | str | None, default_role: Role | str | None, who: str) -> Role:
        if role is not None:
            wanted = _role(role)
            if wanted not in held:
                raise PermissionDeniedError(f"{who} does not hold the role '{wanted.value}' (holds: {_names(held)})",
                                            reason="role_not_held", role=wanted.value)
            return wanted
        if default_role is not None and _role(default_role) in held:
            return _role(default_role)
        if len(held) == 1:
            return next(iter(held))
        raise InputError(f"{who} holds several roles ({_names(held)}): say which one to act in", field="role")


def _check_claim(claimed: str | None, actor: str, credential: str) -> None:
    if claimed is not None and claimed != actor:
        raise PermissionDeniedError(
            f"acting as {claimed!r} is refused: this is '{actor}' ({credential}); to act as someone else, "
            "be them: their own account, or their own API key", reason="impersonation", claimed=claimed)
