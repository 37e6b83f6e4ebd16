"""``PATCH /api/v1/contracts/{id}/lines/{line_pk}/``: change a draft's line (docs/api.md#draft-line-edits)."""

from __future__ import annotations

from .contracts import LineInputSerializer


class LineUpdateSerializer(LineInputSerializer):
    """The line's own fields, any subset (used with ``partial=True``); allocations have their own
    endpoints (``lines/{line_pk}/allocations/``) and tiers are set when the line is added."""

    tiers = None
    allocations = None
