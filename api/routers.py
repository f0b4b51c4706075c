from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with and without a trailing slash: a POST redirected to add one would
    lose its body. (SimpleRouter turns any truthy trailing_slash argument into a required "/".)"""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
