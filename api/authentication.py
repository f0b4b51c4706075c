"""The API's token authentication, alone in its module: DRF imports it while reading its settings,
before any view module may be imported."""

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
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
