"""django-axes for the tests: the lockout check on every real request, none for ``Client.login``.

``django.test.Client.login`` calls ``authenticate(**credentials)`` without a request; axes'
backend raises ``AxesBackendRequestParameterRequired`` then. There is no request to lock out, so
this backend lets that call through to ``ModelBackend`` and checks every other one as axes does.
"""

from axes.backends import AxesStandaloneBackend


class AxesTestClientBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
