"""Version 1 of the REST API (docs/api.md#resources): serializers, filters and views, routed in
``apps.api.urls``."""
