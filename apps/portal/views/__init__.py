"""Portal views: parse the request, call a selector or a service, render (docs/portal.md)."""
