"""The API's token authentication, alone in its module: DRF imports it while reading its settings,
before any view module may be imported."""

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from django.utils import timezone
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token check (header `Authorization: Token <token>`), where a header that is not UTF-8
    is a refused token like any other rather than an error."""

    def authenticate_credentials(self, token: bytes):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        """Whether this token has expired (then it is deleted and refused). knox also reads every
        other token of the user on each request to delete the expired ones: a query per request
        for housekeeping. Expired tokens are refused all the same, so that sweep is left out here."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False
