from unetkit.cli.main import main

raise SystemExit(main())
