"""What the page benches take from Django's test environment, without what would skew them."""

from __future__ import annotations


def test_client_environment() -> None:
    """``setup_test_environment()`` (the test client's host allowed, ``DEBUG`` off, e-mail kept in
    memory) with templates rendered as in production.

    The test environment instruments rendering to send each template and its context to the test
    client, which connects one receiver per request; Django caches the receivers' signatures
    (``_get_func_parameters``, 512 entries), so the last 512 responses' contexts — querysets,
    model instances, rendered strings: 4,000 objects a changelist request — stay alive. Each of
    the cyclic collector's full passes then walks all of them: the invoice admin's p95 went from
    75 ms to 180–230 ms, its slowest requests to 300–550 ms. A production worker has no such
    receiver. The benches read no ``response.context``.
    """
    from django.template import Template
    from django.test.utils import setup_test_environment

    render = Template._render
    setup_test_environment()
    Template._render = render


def web_worker_heap() -> None:
    """Freeze what the process holds, as a web worker does once it has loaded the application
    (``config/wsgi.py``): the cyclic collector's full passes then walk only what requests make.

    Without it, a full pass over the bench process's heap lands in some request every twenty or
    so (up to 170–200 ms in the API's invoice list, against a median of 65 ms); frozen, the passes
    take at most about 80 ms.
    """
    import gc

    gc.collect()
    gc.freeze()
