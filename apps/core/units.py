"""Physical units of the compute market. Pure: no Django, no ORM.

One P-unit (1 PFLOPS) is 1000 dense FP16 TFLOPS (docs/rating.md#p-units): an 8 × A100 server (312 TFLOPS each)
is 8 × 312 / 1000 = 2.496 P, kept exact.
"""

from __future__ import annotations

from decimal import Decimal

TFLOPS_PER_P = Decimal(1000)
