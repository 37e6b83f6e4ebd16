"""Chinese number format as finance writes amounts: 186,325.00 (Django's default for zh-hans
groups nothing). Only these two differ; everything else falls back to Django's zh_Hans formats."""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
