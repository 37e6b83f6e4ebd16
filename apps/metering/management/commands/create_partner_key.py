"""``manage.py create_partner_key PROVIDER_CODE [--name NAME]``: a partner API key, printed once.

The key is the last line of the output, alone (``… | tail -n 1`` captures it); only its hash is
stored, so it cannot be shown again. An unknown provider is an error (exit status 1).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.metering import services
from apps.metering.models import PartnerAPIKey
from apps.providers.models import Provider

NAME_MAX_LENGTH = PartnerAPIKey._meta.get_field("name").max_length


class Command(BaseCommand):
    help = "Create an API key for a provider's partner system (metering agent, scheduler) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("provider", metavar="PROVIDER_CODE", help="The provider's code.")
        parser.add_argument(
            "--name",
            help=f"What the key is for (at most {NAME_MAX_LENGTH} characters); default: '<code> agent'.",
        )

    def handle(self, *args, provider: str, name: str | None, verbosity: int, **options):
        found = Provider.objects.filter(code=provider).first()
        if found is None:
            raise CommandError(
                f"Unknown provider {provider!r}: give a provider code "
                "(see the providers in admin or GET /api/v1/providers/)."
            )
        name = (name if name is not None else f"{found.code} agent").strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if len(name) > NAME_MAX_LENGTH:
            raise CommandError(f"--name is limited to {NAME_MAX_LENGTH} characters.")
        api_key, key = services.partner_key_create(provider=found, name=name)
        if verbosity >= 1:
            self.stdout.write(
                f"Created API key {name!r} (prefix {api_key.prefix}) for provider {found.code}. "
                "Store it now: it is shown only this once."
            )
        self.stdout.write(key)
