"""API tokens and who-am-I.

Tokens are django-rest-knox's: only a digest is stored, each expires (settings.REST_KNOX), the
caller revokes its own with DELETE, and a password change revokes every token of the user
(`revoke_tokens_on_password_change`). Failed logins count towards django-axes' lockout and the
token endpoint is throttled per client address.
"""

from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from api.authentication import TokenAuthentication
from api.serializers import validated
from core.errors import ApplicationError
from core.roles import primary_role, user_roles


class BadCredentials(ApplicationError):
    status = 400
    code = "invalid_credentials"


def revoke_tokens_on_password_change(sender, instance, created: bool = False, **kwargs) -> None:
    """Connected to the user model's post_save (api.apps). Django's set_password() keeps the new
    raw password in `_password` until the save that stores it has run, in every path that changes
    a password (admin, password-change page, changepassword command): then the old tokens go.
    Browser sessions need nothing of this kind: Django ties each session to the password hash."""
    if not created and getattr(instance, "_password", None) is not None:
        AuthToken.objects.filter(user=instance).delete()


class TokenCreate(APIView):
    """Exchange a username and password for an API token that expires (`expiry`). DELETE revokes the
    token that authenticates the request."""

    authentication_classes: list = []
    throttle_scope = "login"

    class TokenIn(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, style={"input_type": "password"})

    class TokenOut(serializers.Serializer):
        token = serializers.CharField()
        expiry = serializers.DateTimeField(allow_null=True, help_text="When the token stops working")
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    def get_authenticators(self):
        # POST takes a password and nothing else; DELETE needs the token it revokes.
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            return [TokenAuthentication()]
        return super().get_authenticators()

    def get_permissions(self):
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    def get_throttles(self):
        if getattr(self, "request", None) is not None and self.request.method == "POST":
            return [ScopedRateThrottle()]
        return []

    @extend_schema(request=TokenIn, responses={200: TokenOut}, auth=[])
    def post(self, request):
        data = validated(self.TokenIn, request.data)
        # The Django request, not DRF's wrapper: django-axes marks a lockout on the object it is given,
        # and its middleware reads the mark from the Django request.
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise BadCredentials("Unknown username or wrong password.")
        instance, token = AuthToken.objects.create(user=user)
        return Response(
            {"token": token, "expiry": instance.expiry, "username": user.username, "roles": sorted(user_roles(user))}
        )

    @extend_schema(request=None, responses={204: OpenApiResponse(description="The token is revoked")})
    def delete(self, request):
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class Me(APIView):
    """Who am I: username and roles of the caller."""

    permission_classes = [IsAuthenticated]

    class MeOut(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        role = serializers.CharField(help_text="The caller's roles joined by commas, or 'superuser'")

    @extend_schema(responses={200: MeOut})
    def get(self, request):
        return Response(
            {"username": request.user.username, "roles": sorted(user_roles(request.user)), "role": primary_role(request.user)}
        )


urlpatterns = [
    path("auth/token", TokenCreate.as_view(), name="auth-token"),
    path("auth/me", Me.as_view(), name="auth-me"),
]
