"""Version 1 of the REST API (SPEC §9): serializers, filters and views, routed in ``apps.api.urls``."""
