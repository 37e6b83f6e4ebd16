from apps.metering.agent.cli import main

raise SystemExit(main())
