from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import primary_role, user_roles
from api.serializers import validated
from core.errors import ApplicationError


class BadCredentials(ApplicationError):
    status = 400
    code = "invalid_credentials"


class TokenCreate(APIView):
    """Exchange a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class TokenIn(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"})

    class TokenOut(serializers.Serializer):
        token = serializers.CharField()
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=TokenIn, responses={200: TokenOut})
    def post(self, request):
        data = validated(self.TokenIn, request.data)
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise BadCredentials("Unknown username or wrong password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "username": user.username, "roles": sorted(user_roles(user))})


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
