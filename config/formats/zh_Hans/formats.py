"""Chinese number format as finance writes amounts: 186,325.00 (Django's default for zh-hans
groups nothing), and dates and times as the admin shows them; the rest falls back to Django's zh_Hans formats."""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3

# Instants with the billing time zone's name (dates stay Django's 2026年12月1日).
DATETIME_FORMAT = "Y年n月j日 H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
