from clawrelay.cli import main

raise SystemExit(main())
