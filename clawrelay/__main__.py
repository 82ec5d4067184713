from clawrelay.launch import main

raise SystemExit(main())
