"""``manage.py create_agent_key SERVER_SERIAL [--name NAME]``: the metering agent's API key of one
server, printed once (docs/hardware-truth.md#sources-and-incidents).

The key is the last line of the output, alone (``… | tail -n 1`` captures it); only its hash is
stored. It reaches only the agent endpoints and that server's cards. An unknown server is an
error (exit status 1).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.inventory.models import Server
from apps.metering import services
from apps.metering.models import AgentAPIKey

NAME_MAX_LENGTH = AgentAPIKey._meta.get_field("name").max_length


class Command(BaseCommand):
    help = "Create the metering agent's API key of one server (agent usage and incidents) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("server", metavar="SERVER_SERIAL", help="The server's serial.")
        parser.add_argument(
            "--name",
            help=f"What the key is for (at most {NAME_MAX_LENGTH} characters); default: '<serial> agent'.",
        )

    def handle(self, *args, server: str, name: str | None, verbosity: int, **options):
        found = Server.objects.filter(serial=server).first()
        if found is None:
            raise CommandError(
                f"Unknown server {server!r}: give a server serial (see the servers in admin or GET /api/v1/servers/)."
            )
        name = (name if name is not None else f"{found.serial} agent"[:NAME_MAX_LENGTH]).strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if len(name) > NAME_MAX_LENGTH:
            raise CommandError(f"--name is limited to {NAME_MAX_LENGTH} characters.")
        api_key, key = services.agent_key_create(server=found, name=name)
        if verbosity >= 1:
            self.stdout.write(
                f"Created agent API key {name!r} (prefix {api_key.prefix}) for server {found.serial}. "
                "Store it now: it is shown only this once."
            )
        self.stdout.write(key)
