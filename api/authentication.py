"""The API's token authentication, alone in its module: DRF imports it while reading its settings,
before any view module may be imported."""

import binascii
from hmac import compare_digest

from django.contrib.auth.models import Group
from django.db.models import Aggregate, CharField, OuterRef, Subquery, Value
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions

from core.compiled import CompiledQuery
from core.roles import remember_roles

# Between group names in one column: a control character no group name may hold.
_SEPARATOR = "\x1f"


class _Joined(Aggregate):
    """Text values joined by a separator: STRING_AGG on PostgreSQL, GROUP_CONCAT on SQLite."""

    function = "STRING_AGG"
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra)


def _role_names():
    """The names of the token user's groups, as one column of the token's own query."""
    return Subquery(
        Group.objects.filter(user=OuterRef("user_id")).order_by().values("user")
        .annotate(names=_Joined("name", Value(_SEPARATOR))).values("names")[:1]
    )


# Every API request reads it: compiled once (core.compiled).
_tokens_with_roles = CompiledQuery(
    lambda key: get_token_model().objects.filter(token_key=key).select_related("user").annotate(_role_names=_role_names()),
    str,
)


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token check (header `Authorization: Token <token>`), where a header that is not UTF-8
    or holds a NUL character is a refused token like any other rather than an error, and the
    user's roles come with the token in one query (every API request checks a capability)."""

    def authenticate_credentials(self, token: bytes):
        msg = "Invalid token."
        try:
            token = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(msg) from None
        if "\x00" in token:
            # No token holds one, and PostgreSQL refuses it in a query's text: a refused token too.
            raise exceptions.AuthenticationFailed(msg)
        # knox's own loop (several tokens may share a key prefix; each digest is compared in
        # constant time), over a query that also reads the user's groups.
        for auth_token in _tokens_with_roles(token[:CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(msg) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user, auth_token = self.validate_user(auth_token)
                names = auth_token._role_names
                remember_roles(user, names.split(_SEPARATOR) if names else ())
                return user, auth_token
        raise exceptions.AuthenticationFailed(msg)

    def _cleanup_token(self, auth_token) -> bool:
        """Whether this token has expired (then it is deleted and refused). knox also reads every
        other token of the user on each request to delete the expired ones: a query per request
        for housekeeping. Expired tokens are refused all the same, so that sweep is left out here."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False
